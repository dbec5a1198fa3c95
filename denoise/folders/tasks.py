"""The worker side: tasks that decode, denoise and encode, and the per-process model cache.

A task's own error (a bad file) comes back as a value, ``(False, (reason,
traceback))``, so workers do not log expected failures; :class:`TaskFailed`
carries it on the client.
"""

from __future__ import annotations

import collections
import functools
import traceback

import numpy as np

from ..imagefile import encode_image, read_image
from ..modelfile import load_model
from ..pipeline import denoise_image
from ..stages import stage
from .settings import Settings

__all__ = ["MODEL_CACHE_SIZE", "TaskFailed", "denoise_bytes", "denoise_tile", "reason"]


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


def reason(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
