"""The worker side: tasks that decode, denoise and encode, and the per-process model cache.

A task's own error (a bad file) comes back as a value, ``(False, (reason,
traceback))``, so workers do not log expected failures; :class:`TaskFailed`
carries it on the client. :func:`denoise_files` reads and writes the files
itself and returns one small record per file.
"""

from __future__ import annotations

import collections
import functools
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePosixPath

import numpy as np

from .. import remote
from ..imagefile import encode_image, image_pixels, read_image
from ..modelfile import load_model
from ..pipeline import denoise_image
from ..stages import stage
from .manifest import signature
from .plan import is_within
from .settings import Settings
from .tiling import denoise_in_tiles

__all__ = ["MODEL_CACHE_SIZE", "IO_THREADS", "TaskFailed", "denoise_bytes", "denoise_tile", "denoise_files", "reason"]


#: Compiled models a worker process keeps, most recently used first: a run
#: uses one, and a long-lived cluster serving several runs does not grow without bound.
MODEL_CACHE_SIZE = 2
_models: collections.OrderedDict = collections.OrderedDict()


def _model(sha: str, data: bytes):
    """The model for ``sha``, loaded and compiled once per worker process
    (while among the :data:`MODEL_CACHE_SIZE` most recently used)."""
    m = _models.get(sha)
    if m is None:
        m = _models[sha] = load_model(f"model-{sha[:12]}.npz", data=data)
        while len(_models) > MODEL_CACHE_SIZE:
            _models.popitem(last=False)
    _models.move_to_end(sha)
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
            return False, (reason(exc), traceback.format_exc())

    return task


@_guarded
def denoise_bytes(sha: str, model_data: bytes, name: str, data: bytes, suffix: str, settings: Settings) -> tuple[bytes, dict]:
    """Task: decode, denoise, encode one whole image."""
    with stage("decode"):
        image, info = read_image(name, data)
    with stage("denoise"):
        out = denoise_image(_model(sha, model_data), image, settings.sigma, **settings.options())
    with stage("encode"):
        encoded = encode_image(out, suffix, info, jpeg_quality=settings.jpeg_quality)
    meta = {"megapixels": image.shape[0] * image.shape[1] / 1e6}
    if info.get("converted"):
        meta["note"] = info["converted"]
    return encoded, meta


@_guarded
def denoise_tile(sha: str, model_data: bytes, tile: np.ndarray, core: tuple, sigma, settings: Settings) -> np.ndarray:
    """Task: denoise one tile (with its margin) and return its core."""
    with stage("denoise"):
        out = denoise_image(_model(sha, model_data), tile, sigma, **settings.options())
    (y0, y1), (x0, x1) = core
    return out[y0:y1, x0:x1]


def denoise_files(sha: str, model_data: bytes, items: list, settings: Settings, options: dict | None) -> list[dict]:
    """Task: read, denoise, encode and write each of ``items``, ``(src, dst, outdir,
    source)`` (locations as :mod:`denoise.remote` takes them; ``source`` the input's
    signature from its listing, or None to take a local file's here, before
    reading it). Images larger than the settings' tile size are denoised tile by
    tile. One record per item: ``ok``, and ``reason``/``details`` or ``source``,
    ``written`` (:func:`denoise.remote.write_bytes`), ``megapixels``, ``seconds``,
    ``note``, ``changed`` (the local input changed while being denoised).

    On object stores each read and write is a request of its own, whose latency
    would otherwise add up file by file: :data:`IO_THREADS` threads read the
    batch's inputs ahead and write each output while the next file is denoised."""
    model = _model(sha, model_data)
    done = []
    with ThreadPoolExecutor(min(IO_THREADS, len(items)) or 1, thread_name_prefix="denoise-io") as io:
        reads = [io.submit(_read, src, source, options) for src, _, _, source in items]
        for i, (src, dst, outdir, _) in enumerate(items):
            t0 = time.perf_counter()
            try:
                with stage("read"):
                    source, data = reads[i].result()
                reads[i] = None  # its bytes are not kept for the rest of the batch
                encoded, rec = _denoise_data(model, src, dst, data, settings)
                del data
                if not remote.is_url(dst):
                    check_inside(dst, outdir)
                rec["source"] = list(source)
                done.append((t0, rec, src, io.submit(remote.write_bytes, dst, encoded, options)))
            except Exception as exc:
                done.append((t0, _failure(exc), src, None))
        records = []
        for t0, rec, src, write in done:
            if write is not None:
                try:
                    with stage("write"):
                        rec["written"] = write.result()
                    rec["changed"] = not remote.is_url(src) and input_changed(src, rec["source"])
                except Exception as exc:
                    rec = _failure(exc)
            rec["seconds"] = time.perf_counter() - t0
            records.append(rec)
    return records


#: Threads per task that read and write the files of a batch (:func:`denoise_files`).
IO_THREADS = 8


def _read(src, source, options) -> tuple:
    """``(signature, bytes)`` of an input, the signature taken before reading
    (a change while in flight shows at the next run)."""
    if source is None:
        source = signature(src)
    return source, remote.read_bytes(src, options)


def _failure(exc: BaseException) -> dict:
    return {"ok": False, "reason": reason(exc), "details": traceback.format_exc()}


def _denoise_data(model, src, dst, data: bytes, settings: Settings) -> tuple[bytes, dict]:
    """The encoded output for input file bytes ``data``, and the start of its record."""
    with stage("decode"):
        image, info = read_image(str(src), data)
    with stage("denoise"):
        if image_pixels(str(src), data) > settings.tile_pixels:
            out = denoise_in_tiles(model, image, settings.tile_pixels, settings.sigma, settings.options())
        else:
            out = denoise_image(model, image, settings.sigma, **settings.options())
    with stage("encode"):
        encoded = encode_image(out, PurePosixPath(str(dst)).suffix, info, jpeg_quality=settings.jpeg_quality)
    rec = {"ok": True, "megapixels": image.shape[0] * image.shape[1] / 1e6}
    if info.get("converted"):
        rec["note"] = info["converted"]
    return encoded, rec


def check_inside(dst, outdir) -> None:
    """Make a local output's folder; refuse an output that would land outside ``outdir`` (a symbolic link)."""
    dst = remote.local_path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not is_within(dst.parent, remote.local_path(outdir)) or dst.is_symlink():
        raise ValueError(f"output {dst} would land outside the output folder (a symbolic link?)")


def input_changed(path, source: list) -> bool:
    """Whether the local file at ``path`` is no longer the one whose signature was ``source``."""
    try:
        return signature(path) != list(source)
    except OSError:
        return True


def reason(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
