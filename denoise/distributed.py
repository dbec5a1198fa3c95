"""Folders on Dask: one task per image (per tile for huge images), results
streamed back with ``as_completed``, resume from a manifest, a report.

The client owns the file system: it reads input bytes, and writes every
output atomically, so workers need no access to the folders (any Dask
cluster works) and an input can never be written to. Workers decode,
denoise and encode. The model travels once per worker as its file bytes
(``Client.scatter(..., broadcast=True)``) and is loaded and compiled once per
worker process (a per-process cache keyed by the file's hash), never
pickled as a compiled function.

Dask reruns the tasks of a worker that dies. A task that had finished there
before its result was fetched can instead come back cancelled ("already
forgotten"), and the scattered model with it, which cancels the tasks that
need it ("lost dependencies"); such a task is submitted again, up to
:data:`RESUBMITS` times, with the model scattered again if it was lost.

Files are submitted largest first (:func:`largest_first`), and with two
workers or more a run's last files (:data:`ENDGAME_FILES`) are split into
tiles among them. At most a few
tasks per worker (whole images or tiles) are in flight at a time, so
neither the scheduler nor the workers ever hold more than a handful of
images or tiles, however large the folder or the image.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import logging
import math
import os
import sys
import time
import traceback
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import io
from .files import Job, is_within, plan
from .memory import MALLOC_SETTINGS
from .pipeline import check_ensemble, check_stride, denoise_image, resolve_sigma

__all__ = ["Settings", "denoise_folder", "connect", "tiles", "largest_first"]

log = logging.getLogger("denoise")

MANIFEST = ".denoise-manifest.jsonl"
IN_FLIGHT_PER_WORKER = 2
#: A run's last files split into tiles among the workers (see :meth:`_Runner._tile_pixels`):
#: at most ENDGAME_FILES of them, as the client decodes and encodes each split file in turn
#: (on a large cluster, splitting every one of its last files would hold up the end), and
#: tiles of at least ENDGAME_TILE_PIXELS. With the ``fast`` model on 2 workers, one cluster,
#: split against whole, alternating (photos of 2 MP, half gray): 1 photo 0.738x the time
#: (12 pairs), 2 photos 0.823x (8), 8 photos 0.993x (8).
ENDGAME_FILES = 2
ENDGAME_TILE_PIXELS = 500_000
#: Times a task whose result was lost with its worker, and which Dask then forgot, is submitted again.
RESUBMITS = 3


@dataclass(frozen=True)
class Settings:
    """Everything besides the input that decides an output's pixels and bytes."""

    sigma: float | None = None
    stride: int | None = None
    fmt: str = "keep"
    jpeg_quality: int = 95
    tile_pixels: int = 4_000_000
    ensemble: int = 1

    def key(self, model_sha: str) -> str:
        d = {"model": model_sha, "sigma": self.sigma, "stride": self.stride, "fmt": self.fmt, "q": self.jpeg_quality}
        if self.ensemble != 1:  # keys of runs made before ensembles existed stay valid
            d["ensemble"] = self.ensemble
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------
# worker side

_MODELS: dict[str, object] = {}


def _model(sha: str, data: bytes):
    """The model for ``sha``, loaded and compiled once per worker process."""
    m = _MODELS.get(sha)
    if m is None:
        m = _MODELS[sha] = io.load_model(f"model-{sha[:12]}.npz", data=data)
    return m


class TaskFailed(Exception):
    """A task's own error, reported by the worker as (reason, traceback) rather than raised there."""

    def __init__(self, reason: str, details: str):
        super().__init__(reason)
        self.reason, self.details = reason, details


def _guarded(fn):
    """Run ``fn`` on a worker; an error comes back as a value, so workers do not log expected bad-file errors."""

    @functools.wraps(fn)
    def task(*args):
        try:
            return True, fn(*args)
        except Exception as exc:
            return False, (_reason(exc), traceback.format_exc())

    return task


@_guarded
def _denoise_bytes(sha: str, model_data: bytes, name: str, data: bytes, suffix: str, settings: Settings) -> tuple[bytes, dict]:
    """Task: decode, denoise, encode one whole image."""
    image, info = io.read_image(name, data)
    out = denoise_image(_model(sha, model_data), image, settings.sigma, stride=settings.stride, ensemble=settings.ensemble)
    encoded = io.encode_image(out, suffix, info, jpeg_quality=settings.jpeg_quality)
    meta = {"megapixels": image.shape[0] * image.shape[1] / 1e6}
    if info.get("converted"):
        meta["note"] = info["converted"]
    return encoded, meta


@_guarded
def _denoise_tile(sha: str, model_data: bytes, tile: np.ndarray, core: tuple, sigma, settings: Settings) -> np.ndarray:
    """Task: denoise one tile (with its margin) and return its core."""
    out = denoise_image(_model(sha, model_data), tile, sigma, stride=settings.stride, ensemble=settings.ensemble)
    (y0, y1), (x0, x1) = core
    return out[y0:y1, x0:x1]


# --------------------------------------------------------------------------
# tiling


def tiles(shape: tuple[int, int], tile_pixels: int, stride: int, reach: int):
    """Split an (H, W) image into tiles for separate denoising.

    Each tile is ``(outer, core)``: ``outer`` = ((y0, y1), (x0, x1)) is the
    region to denoise, ``core`` the part of its result to keep, in the
    tile's coordinates. Cores partition the image. ``outer`` extends each
    core by at least ``reach`` pixels (the model's patch size plus context,
    minus one) where the image allows, and starts on a multiple of
    ``stride``, so it sees the same global patch grid and produces the same
    core pixels as denoising the whole image.
    """
    h, w = shape
    side = max(stride, int(math.sqrt(tile_pixels)) // stride * stride)
    out = []
    for cy in range(0, h, side):
        for cx in range(0, w, side):
            cy1, cx1 = min(cy + side, h), min(cx + side, w)
            oy0 = max(0, (cy - reach) // stride * stride)
            ox0 = max(0, (cx - reach) // stride * stride)
            oy1, ox1 = min(h, cy1 + reach), min(w, cx1 + reach)
            out.append((((oy0, oy1), (ox0, ox1)), ((cy - oy0, cy1 - oy0), (cx - ox0, cx1 - ox0))))
    return out


# --------------------------------------------------------------------------
# client side


#: glibc malloc settings (:data:`denoise.memory.MALLOC_SETTINGS`) for the workers of
#: our LocalCluster, set before each starts. Dask's nanny starts
#: workers with MALLOC_TRIM_THRESHOLD_=65536, which also pins glibc's mmap threshold
#: at 128 KiB: every array larger than that is freshly mapped memory, page-faulted in
#: on each use, and a denoising batch allocates megabytes. One 2 MP plane with the
#: ``fast`` model, one thread, took a median 1.55x as long so (about 700 against 450 ms,
#: 6 alternating runs each); with these two settings it took as long as with glibc's
#: defaults, and a folder of 8 photos of 2 MP on 2 workers took 0.74x the time of
#: Dask's default (5 alternating pairs). Workers keep up to 256 MiB of freed heap
#: instead of returning it at once. As in Dask, a MALLOC_* variable already in the
#: environment wins over these.
WORKER_MALLOC = {f"distributed.nanny.pre-spawn-environ.{name}": value for name, value in MALLOC_SETTINGS.items()}

#: Dask configuration of our LocalCluster's workers: :data:`WORKER_MALLOC`, and no
#: statistical profiler. By default each Dask worker samples its task's call stack every
#: 10 ms for the dashboard's profile page, in Python, taking the GIL from the task. On a
#: folder of 8 photos of 2 MP with the ``fast`` model, 2 workers, one cluster with the
#: profiler stopped and started between runs (8 alternating runs each, two such runs):
#: 0.888x and 0.926x the time with it off, and 1.4 and 0.8 s less CPU in the workers per
#: run (of 10-12 s); 1 worker: 0.966x. A cluster given by address keeps its own configuration.
WORKER_CONFIG = {**WORKER_MALLOC, "distributed.worker.profile.enabled": False}


def connect(scheduler: str | None = None, workers: int | None = None):
    """A Dask client: to ``scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``) if
    given, else to a new LocalCluster of ``workers`` single-threaded worker
    processes (default: one per core). Returns ``(client, cluster_or_None)``."""
    import dask
    from distributed import Client, LocalCluster

    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        try:
            return Client(address, timeout="5s"), None
        except (OSError, TimeoutError) as e:
            raise ConnectionError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    n = workers or os.cpu_count() or 1
    if n < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    quiet = logging.CRITICAL if not log.isEnabledFor(logging.DEBUG) else logging.WARNING
    with dask.config.set(WORKER_CONFIG):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=quiet)
    return Client(cluster), cluster


def _signature(path: Path) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


@dataclass
class _Manifest:
    """Append-only record of finished outputs (JSON lines; the last entry per output wins)."""

    path: Path
    entries: dict = field(default_factory=dict)

    @classmethod
    def load(cls, outdir: Path) -> "_Manifest":
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
            e and e.get("key") == key and job.dst.is_file() and e.get("source") == _signature(job.src)
            and e.get("bytes") == job.dst.stat().st_size
        )

    def record(self, job: Job, key: str) -> None:
        e = {"output": str(job.dst), "key": key, "source": _signature(job.src), "bytes": job.dst.stat().st_size}
        self.entries[e["output"]] = e
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(e) + "\n")
            f.flush()
            os.fsync(f.fileno())


def largest_first(jobs: list[Job]) -> list[Job]:
    """``jobs`` ordered by the work in each file, largest first (files whose header
    cannot be read last), so that the run does not end with one big image on one
    worker while the others wait: longest-processing-time-first scheduling."""

    def work(job):
        try:
            return io.image_work(job.src)
        except Exception:
            return -1

    return sorted(jobs, key=work, reverse=True)  # stable: equal work keeps the given order


def _remove_stale_temporaries(output: Path) -> None:
    """Delete temporary files a killed run left in ``output`` (``.NAME.XXXX.part``, never a final name)."""
    for p in output.rglob(".*.part"):
        if p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(eq=False)
class _Image:
    """One input file in flight: its parts (one task, or one per tile) and, for tiles, the output being assembled."""

    job: Job
    t0: float
    parts: int = 1
    out: np.ndarray | None = None
    info: dict | None = None
    failed: bool = False


class _Runner:
    """Submits images as tasks, at most ``limit`` in flight, and collects what comes back."""

    def __init__(self, client, local, model_data, sha, settings, key, manifest, entries, bar):
        from distributed import as_completed

        self.client, self.local, self.sha, self.settings = client, local, sha, settings
        self.outdir = manifest.path.parent
        self.key, self.manifest, self.entries, self.bar = key, manifest, entries, bar
        self.n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        self.limit = IN_FLIGHT_PER_WORKER * self.n_workers
        self.model_data = model_data
        self.model_ref = client.scatter(model_data, broadcast=True, hash=False)
        self.ac = as_completed()
        self.live: dict = {}  # future -> (_Image, core box or None)
        self.tiles: collections.deque = collections.deque()  # tiles waiting for a place in flight
        self.mpix = 0.0

    def workers(self) -> set:
        return set(self.client.scheduler_info().get("workers", {}))

    def run(self, jobs) -> list[str]:
        """Process ``jobs``; returns the workers lost meanwhile (Dask re-ran their tasks elsewhere)."""
        start = self.workers()
        pending = collections.deque(jobs)
        self._fill(pending)
        for fut in self.ac:
            img, box, task, tries = self.live.pop(fut)
            if not img.failed:
                if fut.status == "error":  # lost beyond Dask's retries, or not runnable there
                    self._fail(img, fut.exception())
                else:
                    try:
                        ok, value = fut.result()
                    except CancelledError as exc:
                        # it finished on a worker that died before the result was fetched, and Dask forgot
                        # the task instead of rerunning it ("already forgotten"); or it needed the scattered
                        # model, forgotten the same way ("lost dependencies": _task scatters it again)
                        if tries < RESUBMITS:
                            self._add(img, box, *task, tries=tries + 1)
                        else:
                            self._fail(img, exc)
                    else:
                        if ok:
                            self._collect(img, box, value)
                        else:
                            self._fail(img, TaskFailed(*value))
            fut.release()
            self._fill(pending)
        return sorted(start - self.workers())

    def _fill(self, pending):
        """Submit tiles of the image being split, then further files, until ``limit`` tasks are in flight."""
        while len(self.live) < self.limit:
            if self.tiles:
                img, args, box = self.tiles.popleft()
                if not img.failed:
                    self._add(img, box, _denoise_tile, *args)
                continue
            if not pending:
                return
            img = _Image(pending.popleft(), time.perf_counter())
            try:
                self._submit(img, last=len(pending) < min(self.n_workers, ENDGAME_FILES))
            except Exception as exc:  # unreadable input, bad header: recorded, never fatal
                self._fail(img, exc)

    def _task(self, fn, *args):
        import dask

        # A tile or file travels inside its task, so Dask can rerun the task elsewhere if its worker
        # dies; Dask's warning about large graphs does not apply, as the in-flight limit bounds them.
        with dask.config.set({"distributed.admin.large-graph-warning-threshold": "2GiB"}):
            if self.model_ref.status != "finished":  # forgotten with a dead worker, as its tasks can be
                self.model_ref = self.client.scatter(self.model_data, broadcast=True, hash=False)
            return self.client.submit(fn, self.sha, self.model_ref, *args, pure=False)

    def _tile_pixels(self, pixels: int, last: bool) -> int:
        """The tile size for a file of ``pixels``: the settings' own, or for one of the
        run's last files (fewer left to submit after it than there are workers, and
        than :data:`ENDGAME_FILES`) a share of the file per worker, down to
        :data:`ENDGAME_TILE_PIXELS`, so that the run does not end with one worker on a
        whole file while the others wait. Tiled output equals untiled output; the
        client decodes and encodes such files."""
        parts = min(self.n_workers, pixels // ENDGAME_TILE_PIXELS) if last else 1
        return min(self.settings.tile_pixels, -(-pixels // parts)) if parts > 1 else self.settings.tile_pixels

    def _submit(self, img: _Image, last: bool = False):
        s = self.settings
        pixels = io.image_pixels(img.job.src)
        tile_pixels = self._tile_pixels(pixels, last)
        if pixels <= tile_pixels:
            self._add(img, None, _denoise_bytes, img.job.name, img.job.src.read_bytes(), img.job.dst.suffix, s)
            return
        image, img.info = io.read_image(img.job.src)
        sigma = resolve_sigma(self.local, image, s.sigma)
        a = self.local.arch
        parts = tiles(image.shape[:2], tile_pixels, s.stride or self.local.stride, a.patch + a.context - 1)
        img.parts, img.out = len(parts), np.empty_like(image)
        for ((y0, y1), (x0, x1)), core in parts:  # queued, submitted by _fill as others finish
            box = (y0 + core[0][0], y0 + core[0][1], x0 + core[1][0], x0 + core[1][1])
            self.tiles.append((img, (image[y0:y1, x0:x1], core, sigma, s), box))

    def _add(self, img, box, fn, *args, tries: int = 0):
        """Submit ``fn(*args)`` for ``img`` (its tile ``box``, or None for the whole file)."""
        fut = self._task(fn, *args)
        self.live[fut] = (img, box, (fn, *args), tries)
        self.ac.add(fut)

    def _collect(self, img: _Image, box, result):
        if box is None:
            encoded, meta = result
            img.info = {"converted": meta["note"]} if meta.get("note") else {}
            return self._finish(img, encoded, meta["megapixels"])
        y0, y1, x0, x1 = box
        img.out[y0:y1, x0:x1] = result
        img.parts -= 1
        if img.parts == 0:
            try:
                encoded = io.encode_image(img.out, img.job.dst.suffix, img.info, jpeg_quality=self.settings.jpeg_quality)
            except Exception as exc:
                return self._fail(img, exc)
            self._finish(img, encoded, img.out.shape[0] * img.out.shape[1] / 1e6)
            img.out = None

    def _finish(self, img: _Image, encoded: bytes, megapixels: float):
        job = img.job
        try:
            job.dst.parent.mkdir(parents=True, exist_ok=True)
            if not is_within(job.dst.parent, self.outdir) or job.dst.is_symlink():
                raise ValueError(f"output {job.dst} would land outside the output folder (a symbolic link?)")
            io.atomic_write(job.dst, encoded)
            self.manifest.record(job, self.key)
        except Exception as exc:
            return self._fail(img, exc)
        e = {"file": job.name, "status": "done", "output": str(job.dst),
             "seconds": round(time.perf_counter() - img.t0, 3), "megapixels": round(megapixels, 4)}
        if img.info and img.info.get("converted"):
            e["note"] = img.info["converted"]
        self.entries.append(e)
        self.mpix += megapixels
        self.bar.update(1)
        self.bar.set_postfix(Mpix=f"{self.mpix:.1f}")

    def _fail(self, img: _Image, exc: BaseException):
        img.failed, img.out = True, None
        if isinstance(exc, TaskFailed):
            log.debug("failed: %s\n%s", img.job.src, exc.details)
            reason = exc.reason
        else:
            log.debug("failed: %s", img.job.src, exc_info=(type(exc), exc, exc.__traceback__))
            reason = _reason(exc)
        self.entries.append({"file": img.job.name, "status": "failed", "reason": reason})
        self.bar.update(1)


def denoise_folder(
    inputs,
    output,
    *,
    model="default",
    sigma: float | None = None,
    stride: int | None = None,
    ensemble: int = 1,
    recursive: bool = False,
    fmt: str = "keep",
    jpeg_quality: int = 95,
    tile_megapixels: float = 4.0,
    overwrite: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    progress: bool | None = None,
    report=None,
) -> list[dict]:
    """Denoise image files and folders into ``output`` on Dask.

    Parameters
    ----------
    inputs : list of paths
        Image files and folders (with ``recursive``, sub-folders too,
        mirrored in ``output``). ``output`` itself is never read as input.
    output : path
        Output folder, created if needed. Finished outputs are recorded in
        its ``.denoise-manifest.jsonl``; a rerun skips them unless the
        model, settings or input changed, or ``overwrite``.
    model : str or path
        Shipped model name or model file.
    sigma, stride, ensemble : optional
        As for :func:`denoise.denoise_image` (sigma in [0, 1] units).
    fmt : {"keep", "png", "tiff", "jpeg", "webp"}
    tile_megapixels : float
        Images larger than this are split into tiles, processed as separate
        tasks and stitched back (same pixels as untiled).
    workers, scheduler, client :
        A LocalCluster of ``workers`` processes by default; ``scheduler``
        (or ``$DASK_SCHEDULER_ADDRESS``) connects to an existing cluster;
        ``client`` uses an existing :class:`distributed.Client`.
    progress : bool, optional
        A tqdm bar (default: when standard error is a terminal).
    report : path, optional
        Write the report as JSON.

    Returns
    -------
    list of dict
        One entry per input file, in input order: ``file``, ``status``
        (done / skipped / failed), ``reason``, ``seconds``, ``megapixels``, ``output``.
    """
    from tqdm.auto import tqdm

    if not tile_megapixels > 0:
        raise ValueError(f"tile size must be positive; got {tile_megapixels} megapixels")
    t_start = time.perf_counter()
    output = Path(output)
    model_file = io.model_path(model)
    model_data = model_file.read_bytes()
    sha = hashlib.sha256(model_data).hexdigest()
    local = io.load_model(model_file, data=model_data)  # refuses a bad file here, before any worker sees it
    if stride is not None:
        check_stride(local, stride)  # as denoise_image would, but before any cluster starts
    check_ensemble(ensemble)  # here too, so a bad value fails before any cluster starts
    settings = Settings(sigma, stride, fmt, jpeg_quality, int(tile_megapixels * 1e6), ensemble)
    key = settings.key(sha)
    jobs, problems = plan(inputs, output, recursive=recursive, fmt=fmt)
    if not jobs and not problems:
        raise ValueError(f"no image files in {', '.join(map(str, inputs))} (looked for {', '.join(io.IMAGE_SUFFIXES)})")
    output.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(output)
    manifest = _Manifest.load(output)
    entries = [{"file": f, "status": "failed", "reason": why} for f, why in problems]
    todo = []
    for job in jobs:
        if not overwrite and manifest.done(job, key):
            entries.append({"file": job.name, "status": "skipped", "output": str(job.dst),
                            "reason": "already done with this model and settings"})
        else:
            todo.append(job)

    todo = largest_first(todo)
    own, lost = None, []
    show = progress if progress is not None else sys.stderr.isatty()
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), disable=not show, unit="file", dynamic_ncols=True)
    try:
        if todo:
            if client is None:
                client, own = connect(scheduler, workers)
            lost = _Runner(client, local, model_data, sha, settings, key, manifest, entries, bar).run(todo)
            if lost:
                log.warning("%d worker(s) were lost during the run; Dask re-ran their tasks on the others", len(lost))
    finally:
        bar.close()
        if own is not None:
            client.close()
            own.close()
    order = {str(j.src): i for i, j in enumerate(jobs)}
    entries.sort(key=lambda e: order.get(e["file"], -1))
    if report is not None:
        summary = {s: sum(e["status"] == s for e in entries) for s in ("done", "skipped", "failed")}
        doc = {"summary": summary, "seconds": round(time.perf_counter() - t_start, 3), "model": str(model),
               "model_sha256": sha, "workers_lost": lost, "files": entries}
        if lost:
            doc["note"] = f"{len(lost)} worker(s) were lost during the run; Dask re-ran their tasks on the others"
        io.atomic_write(report, json.dumps(doc, indent=1).encode())
    return entries
