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
import os
import time
from concurrent.futures import CancelledError
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from ..imagefile import encode_image, image_pixels, image_work, read_image
from ..pipeline import resolve_sigma
from ..remote import is_url, read_bytes, write_bytes
from .manifest import signature
from .plan import Job
from .tasks import TaskFailed, check_inside, denoise_bytes, denoise_files, denoise_tile, input_changed, reason
from .tiling import tile_boxes

__all__ = ["Runner", "largest_first", "IN_FLIGHT_PER_WORKER", "ENDGAME_FILES", "ENDGAME_TILE_PIXELS", "RESUBMITS",
           "BATCH_FILES", "BATCH_BYTES"]

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
#: Files that workers read themselves go as one task while together they hold at most
#: BATCH_BYTES and number at most BATCH_FILES, so that Dask's cost per task stays a small
#: share of a folder of small images (``scripts/bench_folder.py --section bucket``).
BATCH_FILES = 16
BATCH_BYTES = 2_000_000


def largest_first(jobs: list[Job], *, by_size: bool = False) -> tuple[list[Job], dict]:
    """``(jobs, work)``: the jobs ordered by the work in each file, largest first
    (files whose size cannot be read last, work -1), so that the run does not end
    with one big image on one worker while the others wait: longest-processing-
    time-first scheduling. The work is the pixel planes in a file (from its
    header), or with ``by_size`` its bytes, which a listing gives without reading
    anything (URL inputs: the client reads no input)."""
    work = {}
    for job in jobs:
        try:
            work[job] = _file_size(job) if by_size else image_work(job.src)
        except Exception:
            work[job] = -1
    return sorted(jobs, key=work.__getitem__, reverse=True), work  # stable: equal work keeps the given order


def _file_size(job: Job) -> int:
    return job.size if job.size is not None else os.stat(job.src).st_size


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


@dataclass(eq=False)
class _Batch:
    """Files that workers read and write themselves, sent as one task (:func:`denoise_files`)."""

    images: list
    failed: bool = False


class Runner:
    """Submits images as tasks, at most ``limit`` in flight, and collects what comes back.

    With ``worker_io`` the workers read inputs and write outputs themselves
    (:func:`denoise_files`, small files batched, :data:`BATCH_FILES` and
    :data:`BATCH_BYTES`), and the client keeps only the listing, scheduling,
    manifest and report; otherwise the client reads and writes every file and
    ships the bytes (a cluster that cannot see the files). Either way the
    client splits a run's last local files among the workers as tiles.
    """

    def __init__(self, client, local, model_data, sha, settings, key, manifest, entries, bar, *,
                 options=None, worker_io=False):
        from distributed import as_completed

        self.client, self.local, self.sha, self.settings = client, local, sha, settings
        self.outdir, self.options, self.worker_io = manifest.folder, options, worker_io
        self.key, self.manifest, self.entries, self.bar = key, manifest, entries, bar
        self.n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        self.limit = IN_FLIGHT_PER_WORKER * self.n_workers
        self.model_data = model_data
        self.model_ref = client.scatter(model_data, broadcast=True, hash=False)
        self.ac = as_completed()
        self.live: dict = {}  # future -> (_Image or _Batch, core box or None, task, tries)
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
                        result = fut.result()
                    except CancelledError as exc:
                        # it finished on a worker that died before the result was fetched, and Dask forgot
                        # the task instead of rerunning it ("already forgotten"); or it needed the scattered
                        # model, forgotten the same way ("lost dependencies": _task scatters it again)
                        if tries < RESUBMITS:
                            self._add(img, box, *task, tries=tries + 1)
                        else:
                            self._fail(img, exc)
                    else:
                        if isinstance(img, _Batch):
                            self._collect_batch(img, result)
                        elif result[0]:
                            self._collect(img, box, result[1])
                        else:
                            self._fail(img, TaskFailed(*result[1]))
            fut.release()
            self._fill(pending)
        self.manifest.flush()
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
            last = len(pending) <= min(self.n_workers, ENDGAME_FILES)
            if self.worker_io and not (last and not is_url(pending[0].src)):
                self._submit_batch(pending)
                continue
            img = _Image(pending.popleft(), time.perf_counter())
            try:
                self._submit(img, last=len(pending) < min(self.n_workers, ENDGAME_FILES))
            except Exception as exc:  # unreadable input, bad header: recorded, never fatal
                self._fail(img, exc)

    def _submit_batch(self, pending):
        """Send the next files as one :func:`denoise_files` task: up to :data:`BATCH_FILES`
        small files, together under :data:`BATCH_BYTES`, or one larger file."""
        batch, size = [], 0
        while pending and len(batch) < BATCH_FILES:
            try:
                n = _file_size(pending[0])
            except OSError:
                n = 0  # its task reports why it cannot be read
            if batch and size + n > BATCH_BYTES:
                break
            batch.append(_Image(pending.popleft(), time.perf_counter()))
            size += n
        items = [(img.job.src, img.job.dst, self.outdir, img.job.source) for img in batch]
        self._add(_Batch(batch), None, denoise_files, items, self.settings, self.options)

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
        img.source = signature(img.job)  # before reading: a change while in flight shows at the next run
        data = read_bytes(img.job.src, self.options)
        pixels = image_pixels(img.job.name, data)
        if pixels <= self._tile_pixels(pixels, last):
            self._add(img, None, denoise_bytes, img.job.name, data, PurePosixPath(str(img.job.dst)).suffix, s)
            return
        image, img.info = read_image(img.job.name, data)
        sigma = resolve_sigma(self.local, image, s.sigma, s.camera)
        parts = tile_boxes(image.shape[:2], self._tile_pixels(pixels, last), self.local, s.stride)
        img.parts, img.out = len(parts), np.empty_like(image)
        for outer, core, box in parts:  # queued, submitted by _fill as others finish
            core = ((core[0].start, core[0].stop), (core[1].start, core[1].stop))
            self.tiles.append((img, (image[outer], core, sigma, s), box))

    def _add(self, img, box, fn, *args, tries: int = 0):
        """Submit ``fn(*args)`` for ``img`` (its tile ``box``, or None for the whole file; or a batch)."""
        fut = self._task(fn, *args)
        self.live[fut] = (img, box, (fn, *args), tries)
        self.ac.add(fut)

    def _collect_batch(self, batch: _Batch, records: list):
        for img, rec in zip(batch.images, records):
            if not rec["ok"]:
                self._fail(img, TaskFailed(rec["reason"], rec["details"]))
                continue
            img.source = rec["source"]
            try:
                self.manifest.record(img.job, self.key, img.source, rec["written"])
            except Exception as exc:
                self._fail(img, exc)
                continue
            self._done(img, rec["megapixels"], rec.get("note"), rec["changed"])

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
                encoded = encode_image(img.out, PurePosixPath(str(img.job.dst)).suffix, img.info,
                                       jpeg_quality=self.settings.jpeg_quality)
            except Exception as exc:
                return self._fail(img, exc)
            self._finish(img, encoded, img.out.shape[0] * img.out.shape[1] / 1e6)
            img.out = None

    def _finish(self, img: _Image, encoded: bytes, megapixels: float):
        """Write an output the client holds, and record it."""
        job = img.job
        try:
            if not is_url(job.dst):
                check_inside(job.dst, self.outdir)
            written = write_bytes(job.dst, encoded, self.options)
            self.manifest.record(job, self.key, img.source, written)
        except Exception as exc:
            return self._fail(img, exc)
        self._done(img, megapixels, (img.info or {}).get("converted"),
                   not is_url(job.src) and input_changed(job.src, img.source))

    def _done(self, img: _Image, megapixels: float, note: str | None, changed: bool):
        job = img.job
        e = {"file": job.name, "status": "done", "output": str(job.dst),
             "seconds": round(time.perf_counter() - img.t0, 3), "megapixels": round(megapixels, 4)}
        if note:
            e["note"] = note
        if changed:
            e["note"] = "the input changed while it was being denoised; the next run redoes it"
        self.entries.append(e)
        self.bar.file_done(job)

    def _fail(self, img, exc: BaseException):
        if isinstance(img, _Batch):
            img.failed = True
            for one in img.images:
                self._fail(one, exc)
            return
        img.failed, img.out = True, None
        if isinstance(exc, TaskFailed):
            log.debug("failed: %s\n%s", img.job.src, exc.details)
            why = exc.reason
        else:
            log.debug("failed: %s", img.job.src, exc_info=(type(exc), exc, exc.__traceback__))
            why = reason(exc)
        self.entries.append({"file": img.job.name, "status": "failed", "reason": why})
        self.bar.file_done(img.job)
