"""The training loop: draw a batch, step, and at each epoch's end validate and checkpoint.

Everything random draws from one ``numpy.random.Generator`` seeded by
``cfg.seed``, whose state is checkpointed, so a seeded run gives the same
weights whether or not it was interrupted and resumed (step budgets; a
``minutes`` budget stops wherever the clock says).

The learning-rate schedule runs over the whole budget: ``steps`` counts the
steps of earlier calls, and a ``minutes`` budget, which counts this call's
time, extends the training time of earlier calls, so that a resumed run
continues its schedule instead of starting it again.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
from tqdm.auto import tqdm

from ..metrics import psnr_from_mse
from ..model import Architecture, Autoencoder
from ..noise import mixture_spec, parse_mixture
from .checkpoint import Checkpoint
from .clipping import clipped_mean
from .config import TrainConfig
from .crops import camera_gain
from .sampler import make_sampler
from .step import compile_step

__all__ = ["train", "fit", "Validation", "learning_rate"]


class Validation:
    """A fixed set of validation patches, drawn once, and a model's PSNR on them.
    A sampler with ``clipped_targets`` also gives each row's spread, and the
    outputs are compared as the training step compares them (:func:`denoise.training.step.as_targets`)."""

    def __init__(self, sampler, n: int, seed: int):
        drawn = sampler.sample(n, np.random.default_rng([seed, 1]))
        self.noisy, self.sigma, self.clean = drawn[:3]
        self.spread = drawn[3] if len(drawn) > 3 else None

    def loss(self, model: Autoencoder, batch: int = 4096) -> float:
        """The mean squared error of ``model``'s outputs against the targets."""
        err = 0.0
        for i in range(0, len(self.noisy), batch):
            out = model.reconstruct(self.noisy[i : i + batch], self.sigma[i : i + batch]).astype(np.float64)
            if self.spread is not None:
                s = self.spread[i : i + batch, None].astype(np.float64)
                out = np.where(s > 0, clipped_mean(out, np.maximum(s, 1e-6)), out)
            err += float(np.sum((out - self.clean[i : i + batch]) ** 2))
        return err / self.clean.size

    def psnr(self, model: Autoencoder, batch: int = 4096) -> float:
        return psnr_from_mse(self.loss(model, batch))


def learning_rate(cfg: TrainConfig, progress: float) -> np.float32:
    """The learning rate at ``progress`` (0 to 1) through the budget: constant, or a cosine decay to 0."""
    if cfg.lr_decay != "cosine":
        return np.float32(cfg.lr)
    return np.float32(cfg.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


class _Losses:
    """Losses since the last record, read one step late: the JAX backend returns
    before its step is done, so the next batch is drawn meanwhile; reading the
    previous step's loss bounds the queue to that one step. Numba and C steps
    are done when they return."""

    def __init__(self):
        self.values, self.pending = [], None

    def push(self, loss) -> None:
        self.settle()
        self.pending = loss

    def settle(self) -> None:
        if self.pending is not None:
            self.values.append(float(self.pending))
            self.pending = None

    def take_mean(self) -> float:
        self.settle()
        mean = float(np.mean(self.values))
        self.values.clear()
        return mean


def train(
    arch: Architecture | Autoencoder,
    clean,
    cfg: TrainConfig,
    *,
    noisy=None,
    val_clean=None,
    val_noisy=None,
    checkpoint=None,
    meta: dict | None = None,
) -> Autoencoder:
    """Train a denoising autoencoder on patches of ``clean`` images.

    Parameters
    ----------
    arch : Architecture or Autoencoder
        A new model's architecture (initialised from ``cfg.seed``) or a model to
        train further.
    clean : list of float32 arrays (H, W[, C]) in [0, 1]
    cfg : TrainConfig
    noisy : list of arrays, optional
        Paired real noisy images (same shapes as ``clean``) instead of synthetic noise.
    val_clean, val_noisy : lists of arrays, optional
        Held-back images for validation PSNR after each epoch (default: the
        training images).
    checkpoint : path, optional
        Model file written after every epoch with the optimiser and random
        state; if it exists with state, training resumes from it.
    meta : dict, optional
        Extra metadata for the model file (e.g. provenance).

    Returns
    -------
    Autoencoder
        With ``meta["history"]`` listing (step, train loss, validation PSNR) per epoch.
    """
    noises = parse_mixture(cfg.noise)
    model = arch if isinstance(arch, Autoencoder) else Autoencoder(arch, seed=cfg.seed, backend=cfg.backend)
    model.meta.update(meta or {})
    model.meta.update(noise=mixture_spec(noises), stride=model.stride)
    if cfg.condition != "true":  # what the noise level it takes means (the model card says it)
        model.meta["condition"] = cfg.condition
    camera = [n for n in noises if n.kind == "camera"]
    if cfg.condition == "std" and camera and noisy is None:  # what a run on camera photos scales the estimate by
        gain = camera_gain(clean, model.arch, camera[0], np.random.default_rng([cfg.seed, 1]))
        model.meta["camera_gain"] = round(gain, 4)
    sampler = make_sampler(clean, model.arch, noises, noisy, cfg.augment, cfg.condition)
    val_sampler = make_sampler(val_clean or clean, model.arch, noises, val_noisy if val_clean else noisy, augment=False,
                               condition=cfg.condition)
    return fit(model, sampler, Validation(val_sampler, cfg.val_patches, cfg.seed), cfg, checkpoint=checkpoint)


def fit(model: Autoencoder, sampler, validation: Validation, cfg: TrainConfig, *, checkpoint=None,
        deadline: float | None = None) -> Autoencoder:
    """Train ``model`` in place on batches from ``sampler`` (anything with
    ``sample(n, rng) -> (noisy rows, sigma, target rows)``, and a fourth,
    spread, where it says ``clipped_targets``), validating on
    ``validation`` after each epoch; :func:`train` for the other parameters.
    ``deadline`` (a ``time.monotonic()`` value) also stops it, whatever the
    budget says, and ends the learning-rate schedule there."""
    rng = np.random.default_rng(cfg.seed)
    model.backend = cfg.backend
    step, lr, state = compile_step(model, cfg, clipped_targets=getattr(sampler, "clipped_targets", False))
    ckpt = Checkpoint(checkpoint, state)
    done, seconds_before, history = ckpt.restore(model, rng)
    if not history:
        history.append([done, None, round(validation.psnr(model), 3)])

    total = cfg.total_steps
    t_start = time.monotonic()
    if cfg.minutes:
        deadline = min(deadline or math.inf, t_start + cfg.minutes * 60)
    span = deadline - t_start if deadline else None  # this call's time, for the schedule
    losses = _Losses()

    def seconds() -> float:
        """Training time of this call and of the ones it resumes."""
        return seconds_before + time.monotonic() - t_start

    def end_epoch() -> float:
        """Record the mean loss since the last record and the validation PSNR (returned), then save."""
        loss = losses.take_mean()
        vpsnr = validation.psnr(model)
        history.append([done, round(loss, 7), round(vpsnr, 3)])
        model.meta["history"] = history
        ckpt.save(model, rng, done, seconds())
        return vpsnr

    bar = tqdm(total=total, initial=done, disable=not cfg.progress, unit="step", dynamic_ncols=True,
               mininterval=0.1 if sys.stderr.isatty() else 30)
    try:
        while (total is None or done < total) and (deadline is None or time.monotonic() < deadline):
            progress = done / total if total else seconds() / (seconds_before + span)
            lr.set_value(learning_rate(cfg, progress))
            losses.push(step(*sampler.sample(cfg.batch_size, rng)))
            done += 1
            bar.update(1)
            if done % cfg.epoch_steps == 0:
                vpsnr = end_epoch()
                bar.set_postfix(loss=f"{history[-1][1]:.2e}", val_psnr=f"{vpsnr:.2f}")
    finally:
        bar.close()
    losses.settle()
    if losses.values:
        end_epoch()
    model.meta["history"] = history
    model.meta["steps"] = done
    return model
