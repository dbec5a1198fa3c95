"""The output folder's record of finished outputs, for resuming."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..storage import TEMPORARY_SUFFIX
from .plan import Job

__all__ = ["MANIFEST", "Manifest", "signature", "remove_stale_temporaries"]

MANIFEST = ".denoise-manifest.jsonl"


def signature(path: Path) -> list:
    """What identifies an input's content for resuming: its size and modification time."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


@dataclass
class Manifest:
    """Append-only record of finished outputs (JSON lines; the last entry per output wins)."""

    path: Path
    entries: dict = field(default_factory=dict)

    @classmethod
    def load(cls, outdir: Path) -> "Manifest":
        m = cls(outdir / MANIFEST)
        if m.path.exists():
            for line in m.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    e = json.loads(line)
                    m.entries[e["output"]] = e
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut short by a crash
        return m

    def done(self, job: Job, key: str) -> bool:
        e = self.entries.get(str(job.dst))
        return bool(
            e and e.get("key") == key and job.dst.is_file() and e.get("source") == signature(job.src)
            and e.get("bytes") == job.dst.stat().st_size
        )

    def record(self, job: Job, key: str, source: list) -> None:
        """Record ``job``'s output as made with ``key`` from the input whose
        :func:`signature` was ``source`` when it was read."""
        e = {"output": str(job.dst), "key": key, "source": source, "bytes": job.dst.stat().st_size}
        self.entries[e["output"]] = e
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(e) + "\n")
            f.flush()
            os.fsync(f.fileno())


def remove_stale_temporaries(output: Path) -> None:
    """Delete temporary files a killed run left in ``output`` (``.NAME.XXXX.part``, never a final name)."""
    for p in output.rglob(f".*{TEMPORARY_SUFFIX}"):
        if p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
