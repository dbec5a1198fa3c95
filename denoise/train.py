"""Training: patch-pair sampling, SGD/Adam as compiled PyTensor updates,
validation, checkpoints and resume.

The whole training step is one compiled PyTensor function::

    loss = mean((model.output(noisy, sigma) - clean) ** 2)
    step = pytensor.function([noisy, sigma, clean], loss, updates=adam(params, grad(loss, params)))

Everything random draws from one ``numpy.random.Generator`` seeded by
``seed``, whose state is checkpointed, so a seeded run gives the same
weights whether or not it was interrupted and resumed (step budgets; a
``minutes`` budget stops wherever the clock says).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
from tqdm.auto import tqdm

from .backends import compile_mode
from .memory import keep_freed_memory
from .model import Architecture, Autoencoder
from .noise import Noise, parse
from .patches import DIHEDRAL, dihedral

__all__ = ["TrainConfig", "PatchSampler", "train", "psnr_from_mse"]


@dataclass
class TrainConfig:
    """How to train. A budget is ``steps`` (total, counting resumed steps),
    ``epochs`` (of ``epoch_steps`` steps each) or ``minutes`` (this call);
    the first reached stops training."""

    noise: str = "gaussian:25"
    steps: int | None = None
    epochs: int | None = None
    minutes: float | None = None
    epoch_steps: int = 500
    batch_size: int = 512
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    lr_decay: str = "cosine"
    augment: bool = True
    seed: int = 0
    val_patches: int = 2048
    backend: str = "numba"
    progress: bool = True
    history: list = field(default_factory=list)

    def __post_init__(self):
        if self.steps is None and self.epochs is None and self.minutes is None:
            raise ValueError("give a training budget: steps, epochs or minutes")
        for name in ("steps", "epochs", "epoch_steps", "batch_size", "val_patches"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, np.integer)) or v < 1):
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes must be positive; got {self.minutes!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd'; got {self.optimizer!r}")
        if self.lr_decay not in ("cosine", "none"):
            raise ValueError(f"lr_decay must be 'cosine' or 'none'; got {self.lr_decay!r}")
        parse(self.noise)
        compile_mode(self.backend)

    @property
    def total_steps(self) -> int | None:
        options = [s for s in (self.steps, self.epochs and self.epochs * self.epoch_steps) if s]
        return min(options) if options else None


def psnr_from_mse(mse: float) -> float:
    return float("inf") if mse <= 0 else 10.0 * math.log10(1.0 / mse)


# ------------------------------------------------------------------------
# sampling


class PatchSampler:
    """Random (noisy input, clean target, sigma) patch rows from images.

    Parameters
    ----------
    clean : list of float32 arrays (H, W, C) in [0, 1]
    arch : Architecture
        Fixes patch, context and channels. One-channel models draw each
        patch from one random channel of its image.
    noise : Noise
        Synthetic noise added to clean patches (ignored with ``noisy``).
    noisy : list of arrays, optional
        Real noisy counterparts of ``clean``, same shapes; sigma per image
        is then the standard deviation of their difference.

    The sampler keeps its own copy of the images (of both sets with
    ``noisy``), laid out for gathering (see ``__init__``).
    """

    def __init__(self, clean, arch: Architecture, noise: Noise, noisy=None, augment: bool = True):
        self.arch, self.noise, self.augment = arch, noise, augment
        clean = [np.asarray(c if c.ndim == 3 else c[:, :, None], np.float32) for c in clean]
        if noisy is not None:
            noisy = [np.asarray(n, np.float32).reshape(c.shape) for n, c in zip(noisy, clean)]
        p = arch.in_patch
        usable = [i for i, c in enumerate(clean) if c.shape[0] >= p and c.shape[1] >= p]
        if not usable:
            raise ValueError(f"no training image is at least {p}x{p} pixels (the model's input patch)")
        if arch.channels == 3 and any(clean[i].shape[2] != 3 for i in usable):
            raise ValueError("a 3-channel model needs RGB training images")
        self.usable = usable
        self._shapes = np.array([clean[i].shape for i in usable], np.intp)
        # One kernel call gathers a whole batch (see _gather) from one flat buffer of every usable
        # image, in which each row of a patch is a run of adjacent values: planes (c, h, w) for
        # one-channel models, which take each patch from one channel, pixels (h, w, c) for
        # three-channel ones. Where each value of a patch lies from the patch's first value, under
        # each of the 8 flips and turns (just the identity without augmentation), is a (transforms,
        # values per patch) table per image width.
        self._buffer, self._base = self._pack(clean)
        self._noisy_buffer = self._pack(noisy)[0] if noisy is not None else None
        yx = np.stack(np.meshgrid(np.arange(p), np.arange(p), indexing="ij"), axis=-1)[None]
        self.transforms = len(DIHEDRAL) if augment else 1
        moves = np.stack([dihedral(yx, t)[0] for t in range(self.transforms)])
        widths, self._table = np.unique(self._shapes[:, 1], return_inverse=True)
        c = arch.channels
        tables = [(moves[..., 0] * wd + moves[..., 1])[..., None] * c + np.arange(c) for wd in widths]
        self._tables = np.stack(tables).reshape(len(widths), self.transforms, -1).astype(np.intp)
        # with real pairs, each image's sigma is the standard deviation of noisy - clean
        self._sigmas = None
        if noisy is not None:
            self._sigmas = np.array([float(np.std(noisy[i] - clean[i])) for i in usable], np.float32)
        area = (self._shapes[:, 0] * self._shapes[:, 1]).astype(np.float64)
        self.prob = area / area.sum()

    def sample(self, n: int, rng: np.random.Generator):
        """``(noisy_rows, clean_rows, sigma)``: float32 (n, in_pixels), (n, out_size), (n,).

        Rows come grouped by image (a batch's order carries no information:
        it makes one gradient step), which keeps the reads of one image
        together. Each patch is gathered already flipped or turned, by
        transformed offsets, in one kernel call for the batch."""
        a = self.arch
        p, k, q = a.in_patch, a.context, a.patch
        c = a.channels
        which = np.sort(rng.choice(len(self.usable), size=n, p=self.prob))
        u = rng.random((n, 3))  # position y, x and channel of each patch, scaled to its image below
        t = rng.integers(0, self.transforms, n)  # flip / turn of each patch (an element of DIHEDRAL)
        h, wd, nc = self._shapes[which].T
        y = (u[:, 0] * (h - p + 1)).astype(np.intp)
        x = (u[:, 1] * (wd - p + 1)).astype(np.intp)
        plane = (u[:, 2] * nc).astype(np.intp) if c == 1 else 0  # one random channel per patch
        first = self._base[which] + ((plane * h + y) * wd + x) * c
        table = self._table[which]
        clean = np.empty((n, p, p, c), np.float32)
        _gather(self._buffer, first, self._tables, table, t, clean.reshape(n, -1))
        if self._noisy_buffer is not None:
            noisy = np.empty_like(clean)
            _gather(self._noisy_buffer, first, self._tables, table, t, noisy.reshape(n, -1))
            sigma = self._sigmas[which]
        else:
            levels = self.noise.draw_levels(n, rng)
            noisy = self.noise.add(clean, rng, levels)
            sigma = np.zeros(n, np.float32)
            if self.noise.kind in ("gaussian", "speckle"):
                sigma[:] = levels / 255.0
        target = clean[:, k : k + q, k : k + q, :].reshape(n, -1)
        return noisy.reshape(n, -1), np.ascontiguousarray(target), sigma

    def _pack(self, images):
        """``(buffer, base)``: the usable images in one flat float32 buffer
        (see ``__init__``) and where each begins in it."""
        parts = [images[i] for i in self.usable]
        if self.arch.channels == 1:
            parts = [np.moveaxis(a, 2, 0) for a in parts]
        sizes = [a.size for a in parts]
        base = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        buffer = np.empty(sum(sizes), np.float32)
        for b, a in zip(base.tolist(), parts):
            buffer[b : b + a.size].reshape(a.shape)[...] = a
        return buffer, base


@numba.njit(nogil=True, cache=True)
def _gather(src, first, tables, table, transform, out):
    """``out[j] = src[first[j] + tables[table[j], transform[j]]]`` for every patch ``j``.

    Numba does not check bounds: the sampler only passes positions whose
    whole window lies in its image. numpy's fancy indexing, image by image,
    gathered the same values 2.2-2.4x slower here (one core; 512 16x16
    patches or 1024 of them). One thread on purpose: a parallel loop made the
    training loop slower (8.9 -> 14.4 ms a step for ``fast``), its threads
    and the BLAS's contending for the same two cores."""
    for j in range(out.shape[0]):
        offsets = tables[table[j], transform[j]]
        start = first[j]
        for v in range(offsets.shape[0]):
            out[j, v] = src[start + offsets[v]]


# ------------------------------------------------------------------------
# optimisers as PyTensor updates


def _optimizer(params, grads, cfg: TrainConfig, lr):
    """(updates, state shared variables) for Adam or SGD with momentum."""
    state, updates = [], []
    if cfg.optimizer == "sgd":
        for p, g in zip(params, grads):
            v = pytensor.shared(np.zeros_like(p.get_value()), name=f"state.sgd.v.{p.name}")
            v_new = np.float32(cfg.momentum) * v - lr * g
            updates += [(v, v_new), (p, p + v_new)]
            state.append(v)
        return updates, state
    b1, b2, eps = np.float32(0.9), np.float32(0.999), np.float32(1e-8)
    t = pytensor.shared(np.float32(0), name="state.adam.t")
    t_new = t + 1
    corr = pt.sqrt(1 - b2**t_new) / (1 - b1**t_new)
    updates.append((t, t_new))
    state.append(t)
    for p, g in zip(params, grads):
        m = pytensor.shared(np.zeros_like(p.get_value()), name=f"state.adam.m.{p.name}")
        v = pytensor.shared(np.zeros_like(p.get_value()), name=f"state.adam.v.{p.name}")
        m_new = b1 * m + (1 - b1) * g
        v_new = b2 * v + (1 - b2) * g * g
        updates += [(m, m_new), (v, v_new), (p, p - lr * corr * m_new / (pt.sqrt(v_new) + eps))]
        state += [m, v]
    return updates, state


def compile_step(model: Autoencoder, cfg: TrainConfig):
    """``(step, lr, state)``: the compiled training step ``step(noisy, sigma,
    clean) -> loss`` that updates the weights, its learning-rate shared
    variable and the optimiser's state variables."""
    rows, sigma = model.inputs()
    target = pt.matrix("clean", dtype="float32")
    loss = pt.mean(pt.sqr(model.output(rows, sigma) - target))
    grads = pt.grad(loss, model.params)
    lr = pytensor.shared(np.float32(cfg.lr), name="lr")
    updates, state = _optimizer(model.params, grads, cfg, lr)
    step = pytensor.function(
        [rows, sigma, target], loss, updates=updates, mode=compile_mode(cfg.backend), on_unused_input="ignore"
    )
    return step, lr, state


# ------------------------------------------------------------------------
# the loop


def _mse(model: Autoencoder, noisy, clean, sigma, batch=4096) -> float:
    err = 0.0
    for i in range(0, len(noisy), batch):
        out = model.reconstruct(noisy[i : i + batch], sigma[i : i + batch])
        err += float(np.sum((out.astype(np.float64) - clean[i : i + batch]) ** 2))
    return err / clean.size


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

    Notes
    -----
    Sets glibc's malloc, for the rest of the process, to keep freed memory
    for reuse (:func:`denoise.memory.keep_freed_memory`; not where the
    process started with ``MALLOC_TRIM_THRESHOLD_`` or
    ``MALLOC_MMAP_THRESHOLD_`` in its environment).
    Each step allocates and frees its arrays; with glibc's own settings they
    went back to the kernel and were page-faulted in again: the training
    loop (patch sampler included) of the ``default`` model at its batch of
    1024 took 1.33x as long (median of 6 alternating pairs; 1.5x for
    ``fast`` at 1024, no difference at its 512).
    """
    from . import io  # model files; only touched when checkpointing

    keep_freed_memory()

    noise = parse(cfg.noise)
    rng = np.random.default_rng(cfg.seed)
    model = arch if isinstance(arch, Autoencoder) else Autoencoder(arch, seed=cfg.seed, backend=cfg.backend)
    model.backend = cfg.backend
    a = model.arch
    model.meta.update(meta or {})
    model.meta.update(noise=noise.spec, stride=model.meta.get("stride", max(1, a.patch // 2)))
    sampler = PatchSampler(clean, a, noise, noisy, cfg.augment)
    val = PatchSampler(val_clean or clean, a, noise, val_noisy if val_clean else noisy, augment=False)
    val_rows = val.sample(cfg.val_patches, np.random.default_rng([cfg.seed, 1]))
    step_fn, lr, state = compile_step(model, cfg)

    done, history = 0, []
    if checkpoint is not None and _exists(checkpoint):
        meta_ck, weights, st = io.read_model_file(checkpoint)
        if "state.step" in st:
            model.set_weights(weights)
            for v in state:
                v.set_value(st[v.name].astype(np.float32))
            done = int(st["state.step"])
            rng.bit_generator.state = json.loads(str(st["state.rng"][()]))
            history = list(meta_ck.get("history", []))

    total = cfg.total_steps
    deadline = time.monotonic() + cfg.minutes * 60 if cfg.minutes else None
    t_start = time.monotonic()
    bar = tqdm(total=total, initial=done, disable=not cfg.progress, unit="step", dynamic_ncols=True,
               mininterval=0.1 if sys.stderr.isatty() else 30)
    def val_psnr():
        return psnr_from_mse(_mse(model, *val_rows[:2], val_rows[2]))

    if not history:
        history.append([done, None, round(val_psnr(), 3)])
    losses, pending = [], None

    def settle():
        """Read the loss of the step in flight, if any, into ``losses``."""
        nonlocal pending
        if pending is not None:
            losses.append(float(pending))
            pending = None

    def save():
        model.meta["history"] = history
        if checkpoint is not None:
            extra = {v.name: v.get_value() for v in state}
            extra["state.step"] = np.array(done)
            extra["state.rng"] = np.array(json.dumps(rng.bit_generator.state))
            io.save_model(model, checkpoint, extra=extra)

    def end_epoch():
        """Record the mean loss since the last record and the validation PSNR (returned), then save."""
        settle()
        vpsnr = val_psnr()
        history.append([done, round(float(np.mean(losses)), 7), round(vpsnr, 3)])
        losses.clear()
        save()
        return vpsnr

    try:
        while (total is None or done < total) and (deadline is None or time.monotonic() < deadline):
            if cfg.lr_decay == "cosine":
                if total:
                    frac = done / total
                else:
                    frac = (time.monotonic() - t_start) / (deadline - t_start)
                lr.set_value(np.float32(cfg.lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))))
            x, y, s = sampler.sample(cfg.batch_size, rng)
            loss = step_fn(x, s, y)
            # One step in flight: the JAX backend returns before its step is done, so the next batch
            # is drawn meanwhile; reading the previous step's loss bounds the queue to that one step.
            # Numba and C steps are done when they return.
            settle()
            pending = loss
            done += 1
            bar.update(1)
            if done % cfg.epoch_steps == 0:
                vpsnr = end_epoch()
                bar.set_postfix(loss=f"{history[-1][1]:.2e}", val_psnr=f"{vpsnr:.2f}")
    finally:
        bar.close()
    settle()
    if losses:
        end_epoch()
    model.meta["history"] = history
    model.meta["steps"] = done
    return model


def _exists(path) -> bool:
    from pathlib import Path

    return Path(path).is_file()
