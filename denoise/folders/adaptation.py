"""``denoise run --adapt``: fine-tune the model on a sample of the folder, once, in a worker.

The sample is a few files spread over the (sorted) listing, each cut to a
centre crop of at most :data:`CROP_PIXELS`, so that adaptation costs the same
for a folder of any size. One worker adapts (:func:`adapt_task`, with every
core of its machine when the cluster is our own, whose other workers wait
meanwhile) and returns the adapted model's file bytes; the client writes them
into the output folder as :data:`ADAPTED` and every worker then loads them
like any model. The file records what it was adapted from (the base model's
hash, the settings and the sample's files with their signatures): a rerun
with the same ones reuses it, so its outputs resume; anything else adapts
again, and the outputs, keyed to the new model's hash, are redone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sys

import numpy as np

from .. import remote
from ..imagefile import read_image
from ..modelfile import load_model, model_bytes
from .manifest import signature
from .plan import Job

__all__ = ["ADAPTED", "SAMPLE_FILES", "CROP_PIXELS", "sample", "adaptation_key", "reuse", "adapt_task", "adapted_model", "describe"]

log = logging.getLogger("denoise")

#: The adapted model's file name in the output folder.
ADAPTED = "denoise-adapted.npz"
#: At most this many files, spread over the listing, each cut to a centre crop of at most CROP_PIXELS.
SAMPLE_FILES = 16
CROP_PIXELS = 1_000_000


def sample(jobs: list[Job]) -> list[Job]:
    """Up to :data:`SAMPLE_FILES` jobs spread evenly over ``jobs`` sorted by name."""
    ordered = sorted(jobs, key=lambda j: j.name)
    if len(ordered) <= SAMPLE_FILES:
        return ordered
    picks = np.linspace(0, len(ordered) - 1, SAMPLE_FILES).round().astype(int)
    return [ordered[i] for i in sorted(set(picks.tolist()))]


def adaptation_key(base_sha: str, seconds: float, sigma, files: list[Job]) -> str:
    """What an adapted model is a function of, hashed: base model, budget, noise level and sample."""
    doc = {"base": base_sha, "seconds": float(seconds), "sigma": sigma,
           "sample": [[j.name, signature(j)] for j in files], "crop": CROP_PIXELS}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def reuse(path, key: str, options=None):
    """``(model, bytes)`` of the adapted model at ``path`` if it was made with ``key``, else None."""
    try:
        data = remote.read_bytes(path, options)
        model = load_model(str(path), data=data)
    except (OSError, ValueError):
        return None
    return (model, data) if model.meta.get("adaptation", {}).get("key") == key else None


def _centre_crop(image: np.ndarray, pixels: int) -> np.ndarray:
    h, w = image.shape[:2]
    if h * w <= pixels:
        return image
    scale = (pixels / (h * w)) ** 0.5
    ch, cw = max(1, int(h * scale)), max(1, int(w * scale))
    y, x = (h - ch) // 2, (w - cw) // 2
    return image[y : y + ch, x : x + cw]


def adapt_task(model_data: bytes, items: list, seconds: float, sigma, key: str, options=None,
               threads: int | None = None) -> bytes:
    """Task: adapt the model to ``items`` (``(name, source)`` pairs: a file's bytes, or
    its path or URL for the worker to read) and return the adapted model file's
    bytes. ``threads``: BLAS threads for the fine-tuning (None: as the worker has them)."""
    from threadpoolctl import threadpool_limits

    from ..adapt import adapt

    model = load_model("adapting", data=model_data)
    images = []
    for name, source in items:
        try:
            data = source if isinstance(source, bytes) else remote.read_bytes(source, options)
            images.append(_centre_crop(read_image(name, data)[0], CROP_PIXELS))
        except (OSError, ValueError):  # the run reports this file's failure itself
            continue
    if not images:
        raise ValueError("cannot adapt: none of the sampled files could be read")
    with threadpool_limits(limits=threads) if threads else contextlib.nullcontext():
        tuned = adapt(model, images, seconds, sigma=sigma)
    tuned.meta["adaptation"].update(key=key, sample=[name for name, _ in items])
    return model_bytes(tuned)


def adapted_model(get_client, jobs: list[Job], output, base_data: bytes, base_sha: str, seconds: float, sigma,
                  options=None, *, worker_io: bool, threads: int | None, show: bool):
    """``(model, file bytes, report)``: the model adapted to a sample of ``jobs``,
    reused from ``output`` when made with the same base, settings and sample, else
    adapted anew by one worker of ``get_client()`` and written to ``output``."""
    files = sample(jobs)
    key = adaptation_key(base_sha, seconds, sigma, files)
    path = remote.join(output, ADAPTED)
    found = reuse(path, key, options)
    if found is not None:
        model, data = found
        if show:
            print(f"reusing the model adapted to these files: {path}", file=sys.stderr)
    else:
        if show:
            print(f"adapting the model to {len(files)} file(s) for {seconds:g} s", file=sys.stderr)
        client = get_client()
        items = [(j.name, str(j.src) if worker_io else remote.read_bytes(j.src, options)) for j in files]
        data = client.submit(adapt_task, base_data, items, seconds, sigma, key, options, threads, pure=False).result()
        model = load_model(str(path), data=data)
        remote.write_bytes(path, data, options)
    report = model.meta["adaptation"]
    if not report["used"]:
        log.warning("%s", describe(report, path))
    return model, data, report


def describe(report: dict, path) -> str:
    """One line on an adaptation, for the command's summary."""
    if report.get("reason"):
        return f"did not adapt: {report['reason']}; the model was used as it was"
    how = (f"{report['steps']} steps in {report['seconds']:g} s on {report['images']} file(s); self-supervised "
           f"validation loss {report['loss_before']:.6g} -> {report['loss_after']:.6g}")
    if report["used"]:
        return f"adapted the model ({how}): {path}"
    return f"adaptation did not help ({how}): the model was used as it was"
