"""The output folder's record of finished outputs, for resuming.

In a local folder it is one append-only file of JSON lines,
``.denoise-manifest.jsonl``, flushed to disk at every record. Objects cannot be
appended to, so under a URL prefix it is a set of objects,
``.denoise-manifest/<time>-<random>.jsonl``, each holding the records of a few
seconds of the run (:data:`FLUSH_SECONDS`): a killed client loses at most
those, whose outputs the next run redoes, and two runs at once each write
their own objects. In both, the last record per output wins, and a record
counts only while the output still has the size (and tag) it recorded.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import remote
from ..storage import TEMPORARY_SUFFIX
from .plan import Job

__all__ = ["MANIFEST", "MANIFEST_PREFIX", "FLUSH_SECONDS", "Manifest", "signature", "remove_stale_temporaries"]

MANIFEST = ".denoise-manifest.jsonl"
MANIFEST_PREFIX = ".denoise-manifest"
#: Under a URL prefix, records are written as one object at most this often (and at the end).
FLUSH_SECONDS = 5.0


def signature(job_or_path) -> list:
    """What identifies an input's content for resuming: a local file's size and
    modification time, or a URL input's size and tag from its listing."""
    if isinstance(job_or_path, Job):
        if job_or_path.source is not None:
            return list(job_or_path.source)
        job_or_path = job_or_path.src
    st = Path(job_or_path).stat()
    return [st.st_size, st.st_mtime_ns]


@dataclass
class Manifest:
    """Records of finished outputs (the last entry per output wins)."""

    folder: Path | str
    options: dict | None = None
    entries: dict = field(default_factory=dict)
    outputs: dict | None = None  # under a URL prefix: output URL -> its listing info
    pending: list = field(default_factory=list)
    flushed: float = field(default_factory=time.monotonic)

    @property
    def path(self) -> Path:
        """The local manifest file (local folders only)."""
        return Path(self.folder) / MANIFEST

    @classmethod
    def load(cls, outdir, options: dict | None = None) -> "Manifest":
        m = cls(outdir, options)
        if remote.is_url(outdir):
            fs, root = remote.filesystem(outdir, options)
            listing = fs.find(root, detail=True) if fs.exists(root) else {}
            m.outputs = {fs.unstrip_protocol(p): info for p, info in listing.items()}
            prefix = f"{root.rstrip('/')}/{MANIFEST_PREFIX}/"
            parts = sorted(p for p in listing if p.startswith(prefix) and p.endswith(".jsonl"))
            texts = [blob.decode("utf-8", "replace") for blob in fs.cat(parts).values()] if parts else []
        else:
            texts = [m.path.read_text(encoding="utf-8", errors="replace")] if m.path.exists() else []
        for text in texts:
            for line in text.splitlines():
                try:
                    e = json.loads(line)
                    m.entries[e["output"]] = e
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut short by a crash
        return m

    def done(self, job: Job, key: str) -> bool:
        e = self.entries.get(str(job.dst))
        if not e or e.get("key") != key:
            return False
        try:
            if e.get("source") != signature(job):
                return False
        except OSError:
            return False
        if self.outputs is None:
            return job.dst.is_file() and e.get("bytes") == job.dst.stat().st_size
        info = self.outputs.get(str(job.dst))
        return bool(info) and info.get("size") == e.get("bytes") and (
            "etag" not in e or remote.object_tag(info).get("etag") == e["etag"])

    def record(self, job: Job, key: str, source: list, written: dict) -> None:
        """Record ``job``'s output, ``written`` (its ``bytes`` and, for an object,
        ``etag``), as made with ``key`` from the input whose :func:`signature` was
        ``source`` when it was read."""
        e = {"output": str(job.dst), "key": key, "source": list(source), **written}
        self.entries[e["output"]] = e
        if self.outputs is None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(e) + "\n")
                f.flush()
                os.fsync(f.fileno())
            return
        self.pending.append(e)
        if time.monotonic() - self.flushed >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the records not yet written as one object (URL prefixes; local records are written at once)."""
        self.flushed = time.monotonic()
        if not self.pending:
            return
        name = f"{time.time_ns():020d}-{secrets.token_hex(4)}.jsonl"
        text = "".join(json.dumps(e) + "\n" for e in self.pending)
        remote.write_bytes(remote.join(self.folder, MANIFEST_PREFIX, name), text.encode(), self.options)
        self.pending = []


def remove_stale_temporaries(output) -> None:
    """Delete temporary files a killed run left in a local ``output`` (``.NAME.XXXX.part``,
    never a final name). Objects are written whole, leaving none."""
    if remote.is_url(output):
        return
    for p in Path(output).rglob(f".*{TEMPORARY_SUFFIX}"):
        if p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
