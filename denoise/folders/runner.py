"""The client's scheduling loop: submit files (or tiles) as tasks, a few per
worker in flight, collect what comes back, write outputs, record them.

Dask reruns the tasks of a worker that dies. A task that had finished there
before its result was fetched can instead come back cancelled ("already
forgotten"), and the scattered model with it, which cancels the tasks that
need it ("lost dependencies"); such a task is submitted again, up to
:data:`RESUBMITS` times, with the model scattered again if it was lost.

Files are submitted largest first (:func:`largest_first`), and with two
workers or more a run's last files (:data:`ENDGAME_FILES`) are split into
tiles among them. At most :data:`IN_FLIGHT_PER_WORKER` tasks per worker
(whole images or tiles) are in flight at a time, so neither the scheduler
nor the workers ever hold more than a handful of images or tiles, however
large the folder or the image.
"""

from __future__ import annotations

import collections
import logging
import time
from concurrent.futures import CancelledError
from dataclasses import dataclass

import numpy as np

from ..imagefile import encode_image, image_pixels, image_work, read_image
from ..pipeline import resolve_sigma
from ..storage import atomic_write
from .manifest import signature
from .plan import Job, is_within
from .tasks import TaskFailed, denoise_bytes, denoise_tile, reason
from .tiling import tiles

__all__ = ["Runner", "largest_first", "IN_FLIGHT_PER_WORKER", "ENDGAME_FILES", "ENDGAME_TILE_PIXELS", "RESUBMITS"]

log = logging.getLogger("denoise")

IN_FLIGHT_PER_WORKER = 2
#: A run's last files are split into tiles among the workers (see :meth:`Runner._tile_pixels`),
#: so that it does not end with one worker on a whole file while the others wait: at most
#: ENDGAME_FILES of them, as the client decodes and encodes each split file in turn, and in
#: tiles of at least ENDGAME_TILE_PIXELS (``scripts/bench_folder.py --section endgame``).
ENDGAME_FILES = 2
ENDGAME_TILE_PIXELS = 500_000
#: Times a task whose result was lost with its worker, and which Dask then forgot, is submitted again.
RESUBMITS = 3


def largest_first(jobs: list[Job]) -> tuple[list[Job], dict]:
    """``(jobs, work)``: the jobs ordered by the work in each file (pixel planes, from
    its header), largest first (files whose header cannot be read last, work -1),
    so that the run does not end with one big image on one worker while the
    others wait: longest-processing-time-first scheduling."""
    work = {}
    for job in jobs:
        try:
            work[job] = image_work(job.src)
        except Exception:
            work[job] = -1
    return sorted(jobs, key=work.__getitem__, reverse=True), work  # stable: equal work keeps the given order


@dataclass(eq=False)
class _Image:
    """One input file in flight: its parts (one task, or one per tile) and, for tiles, the output being assembled."""

    job: Job
    t0: float
    parts: int = 1
    out: np.ndarray | None = None
    info: dict | None = None
    failed: bool = False
    source: list | None = None  # the input's signature, taken before it was read


class Runner:
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
                    self._add(img, box, denoise_tile, *args)
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
        img.source = signature(img.job.src)  # before reading: a change while in flight shows at the next run
        pixels = image_pixels(img.job.src)
        tile_pixels = self._tile_pixels(pixels, last)
        if pixels <= tile_pixels:
            self._add(img, None, denoise_bytes, img.job.name, img.job.src.read_bytes(), img.job.dst.suffix, s)
            return
        image, img.info = read_image(img.job.src)
        sigma = resolve_sigma(self.local, image, s.sigma)
        arch = self.local.arch
        parts = tiles(image.shape[:2], tile_pixels, s.stride or self.local.stride, arch.patch + arch.context - 1)
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
                encoded = encode_image(img.out, img.job.dst.suffix, img.info, jpeg_quality=self.settings.jpeg_quality)
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
            atomic_write(job.dst, encoded)
            self.manifest.record(job, self.key, img.source)
        except Exception as exc:
            return self._fail(img, exc)
        e = {"file": job.name, "status": "done", "output": str(job.dst),
             "seconds": round(time.perf_counter() - img.t0, 3), "megapixels": round(megapixels, 4)}
        if img.info and img.info.get("converted"):
            e["note"] = img.info["converted"]
        if _changed(job.src, img.source):
            e["note"] = "the input changed while it was being denoised; the next run redoes it"
        self.entries.append(e)
        self.bar.file_done(job)

    def _fail(self, img: _Image, exc: BaseException):
        img.failed, img.out = True, None
        if isinstance(exc, TaskFailed):
            log.debug("failed: %s\n%s", img.job.src, exc.details)
            why = exc.reason
        else:
            log.debug("failed: %s", img.job.src, exc_info=(type(exc), exc, exc.__traceback__))
            why = reason(exc)
        self.entries.append({"file": img.job.name, "status": "failed", "reason": why})
        self.bar.file_done(img.job)


def _changed(path, source: list) -> bool:
    """Whether the file at ``path`` is no longer the one whose signature was ``source``."""
    try:
        return signature(path) != source
    except OSError:
        return True
