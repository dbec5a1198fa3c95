"""Learning from the user's own noisy images: noisy-only training and adaptation.

Both train self-supervised, on recorrupted patches of the noisy images
(:mod:`denoise.training.selfsupervised`), and validate on held-back strips of
the same images. :func:`adapt` fine-tunes a trained model within a time
budget and keeps the result only if its validation loss went down;
:func:`train_noisy` trains (or trains further) with a step or time budget,
resumable like :func:`denoise.train`.
"""

from __future__ import annotations

import copy
import logging
import math
import time

import numpy as np

from .model import Architecture, Autoencoder
from .training.config import TrainConfig
from .training.loop import Validation, fit
from .training.selfsupervised import ALPHA, SelfNoise, recorruption_samplers

__all__ = ["adapt", "train_noisy", "ADAPT_LR", "ADAPT_BATCH", "VALIDATION_PATCHES", "CLIPPED_LIMIT"]

log = logging.getLogger(__name__)

#: Fine-tuning's learning rate (Adam, cosine decay over the time budget) and batch size.
ADAPT_LR = 1e-4
ADAPT_BATCH = 256
#: Validation patches drawn from the held-back strips: the targets are noisy, so many.
VALIDATION_PATCHES = 8192
#: Adaptation is not tried when more of the images' pixels than this are clipped in a way the
#: objective does not model (:func:`denoise.training.selfsupervised.image_noise`: RGB at black
#: or white under a one-channel model, Poisson at white): there the validation loss, computed on
#: the same kind of targets, still goes down while the results get worse (scripts/bench_adapt.py).
CLIPPED_LIMIT = 0.05


def _noise(sigma, noise) -> SelfNoise:
    if sigma is not None and noise is not None:
        raise ValueError("give the noise as sigma or as noise, not both")
    if sigma is not None:
        if not (np.isfinite(sigma) and 0 < sigma <= 1):
            raise ValueError(f"sigma is the noise level in [0, 1] units (25/255 for 8-bit level 25); got {sigma!r}")
        return SelfNoise("gaussian", float(sigma) * 255)
    return noise if isinstance(noise, SelfNoise) else SelfNoise.parse(noise)


def _provenance(noise: SelfNoise, sigmas, alpha: float) -> dict:
    return {"objective": "recorrupted-to-recorrupted", "alpha": alpha, "noise": noise.spec,
            "levels": [round(min(sigmas) * 255, 3), round(max(sigmas) * 255, 3)]}


def adapt(model: Autoencoder, images, seconds: float = 60.0, *, sigma: float | None = None, noise=None,
          seed: int = 0, lr: float = ADAPT_LR, batch_size: int = ADAPT_BATCH, progress: bool = False) -> Autoencoder:
    """Fine-tune ``model`` on the noisy ``images`` themselves, within ``seconds``.

    Parameters
    ----------
    model : Autoencoder
        A trained model; it is not changed.
    images : list of arrays
        The noisy images (any dtype :func:`denoise.denoise_image` takes).
    seconds : float
        The whole budget: compiling the training step, the validations and
        the training itself.
    sigma : float, optional
        Their Gaussian noise level in [0, 1] units, when known.
    noise : str, optional
        Instead of ``sigma``: ``"unknown"`` (the default: Gaussian, estimated
        per image), ``"poisson"`` or ``"poisson:PEAK"``; see
        :class:`denoise.training.selfsupervised.SelfNoise`.

    Returns
    -------
    Autoencoder
        A new model, whose ``meta["adaptation"]`` says what was done: the
        self-supervised validation loss ``before`` and ``after``, steps,
        seconds, and ``used``. When the loss did not go down, it holds the
        original weights and ``used`` is False (and a warning says so).
    """
    start = time.monotonic()
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds must be a positive number; got {seconds!r}")
    noise = _noise(sigma, noise)
    images = list(images)
    tuned = Autoencoder(model.arch, weights=model.get_weights(), backend=model.backend, meta=copy.deepcopy(model.meta))
    train_s, val_s, sigmas, share = recorruption_samplers(tuned, images, noise)
    if share > CLIPPED_LIMIT:
        why = (f"{100 * share:.0f}% of the pixels are clipped at black or white in a way the self-supervised "
               "objective does not model, and its validation cannot see the harm it would do")
        log.warning("not adapting: %s; keeping the model's own weights", why)
        tuned.meta["adaptation"] = {**_provenance(noise, sigmas, ALPHA), "used": False, "reason": why, "steps": 0,
                                    "seconds": round(time.monotonic() - start, 2), "images": len(images),
                                    "loss_before": None, "loss_after": None, "clipped": round(share, 4)}
        return tuned
    validation = Validation(val_s, VALIDATION_PATCHES, seed)
    t = time.monotonic()
    before = validation.loss(tuned)
    reserve = 2 * (time.monotonic() - t) + 0.5  # the final validations and the choice
    # a time budget: the learning rate's cosine runs over it; one validation, at the end
    cfg = TrainConfig(minutes=seconds / 60, epoch_steps=10**9, batch_size=batch_size, lr=lr, seed=seed, backend=model.backend,
                      progress=progress)
    fit(tuned, train_s, validation, cfg, deadline=start + seconds - reserve)
    after = validation.loss(tuned)
    used = after < before
    report = {**_provenance(noise, sigmas, ALPHA), "loss_before": before, "loss_after": after,
              "steps": int(tuned.meta.get("steps", 0)), "seconds": round(time.monotonic() - start, 2),
              "images": len(sigmas), "used": used}
    tuned.meta.pop("history", None)
    tuned.meta.pop("steps", None)
    if not used:
        log.warning("adaptation did not lower the self-supervised validation loss (%.6g -> %.6g): "
                    "keeping the model's own weights", before, after)
        tuned.set_weights(model.get_weights())
    tuned.meta["adaptation"] = report
    return tuned


def train_noisy(arch: Architecture | Autoencoder, images, cfg: TrainConfig, *, noise=None, checkpoint=None,
                meta: dict | None = None) -> Autoencoder:
    """Train a model on noisy images alone (no clean targets), self-supervised.

    ``arch`` is a new model's architecture or a model to train further (for
    example a shipped one); ``noise`` as for :func:`adapt`; ``cfg``,
    ``checkpoint`` and ``meta`` as for :func:`denoise.train` (``cfg.noise`` is
    not used). Returns the model, ``meta["history"]`` listing the
    self-supervised validation PSNR (against the noisy targets, so only
    comparable within one run)."""
    noise = _noise(None, noise)
    images = list(images)
    model = arch if isinstance(arch, Autoencoder) else Autoencoder(arch, seed=cfg.seed, backend=cfg.backend)
    train_s, val_s, sigmas, share = recorruption_samplers(model, images, noise, augment=cfg.augment)
    if share > CLIPPED_LIMIT:
        log.warning("%.0f%% of the pixels are clipped at black or white in a way the self-supervised objective "
                    "does not model: it may learn to keep the noise there", 100 * share)
    levels = [s * 255 * math.sqrt(1 + ALPHA**2) for s in sigmas]
    model.meta.update(meta or {})
    model.meta.update(self_supervised=_provenance(noise, sigmas, ALPHA), stride=model.stride,
                      noise=f"gaussian:{min(levels):.4g}-{max(levels):.4g}" if max(levels) > min(levels)
                      else f"gaussian:{levels[0]:.4g}")
    return fit(model, train_s, Validation(val_s, cfg.val_patches, cfg.seed), cfg, checkpoint=checkpoint)
