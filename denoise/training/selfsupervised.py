"""Training from noisy images alone: recorrupted-to-recorrupted (R2R) patches.

Pang et al., "Recorrupted-to-Recorrupted: Unsupervised Deep Learning for
Image Denoising" (CVPR 2021): from a noisy patch ``y = x + n`` whose noise
has variance ``v``, draw ``z ~ N(0, v)`` and train the model to map
``y + alpha z`` to ``y - z / alpha``. For Gaussian ``n`` the two sides' noises
are independent, so the expected loss is the supervised loss at noise level
``sigma sqrt(1 + alpha^2)`` plus a constant: minimising one minimises the
other, and the loss on held-back patches ranks models as their true error
would. The model is told that level, and denoises the images themselves at
their own level ``sigma``.

What it assumes: noise independent from pixel to pixel, with a variance we
know. :class:`SelfNoise` says which: Gaussian of a given level, Gaussian of
the level estimated from each image (``unknown``), or Poisson (shot) noise,
whose variance ``x / peak`` is taken from the noisy values themselves. Noise
correlated across pixels (demosaicked, JPEG-compressed) breaks the
independence: the model then learns to keep the correlated part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..imaging import OPPONENT, as_hwc, split_alpha, to_float, to_opponent
from ..model import Architecture, Autoencoder
from ..noise import parse, standard_normal
from ..pipeline import image_sigma
from .sampler import PatchSampler

__all__ = ["SelfNoise", "RecorruptionSampler", "ALPHA", "model_planes", "holdout_strips", "recorruption_samplers",
           "poisson_variance", "clipped"]

#: The recorruption's strength: inputs carry sqrt(1 + ALPHA^2) times the images' noise, targets 1/ALPHA times.
ALPHA = 0.5
_FORMS = "gaussian:SIGMA (8-bit levels), poisson, poisson:PEAK, or unknown"


@dataclass(frozen=True)
class SelfNoise:
    """The noise the noisy images carry, as far as self-supervision needs it.

    ``kind`` is ``"gaussian"`` (``level``: sigma in 8-bit units, or None:
    estimated per image, the spec ``unknown``) or ``"poisson"`` (``level``:
    the peak, photons at white, or None: fitted per image from the estimated
    noise level and the mean brightness)."""

    kind: str
    level: float | None = None

    @classmethod
    def parse(cls, spec: str | None) -> "SelfNoise":
        """``gaussian:25``, ``poisson``, ``poisson:30`` or ``unknown`` (None too)."""
        text = (spec or "unknown").strip().lower()
        if text in ("unknown", "auto"):
            return cls("gaussian")
        if text == "poisson":
            return cls("poisson")
        try:
            noise = parse(text)
        except ValueError:
            noise = None
        if noise is None or noise.kind not in ("gaussian", "poisson") or noise.is_range:
            raise ValueError(f"self-supervised training takes the noise as {_FORMS}; got {spec!r}")
        return cls(noise.kind, float(noise.low))

    @property
    def spec(self) -> str:
        if self.level is None:
            return "unknown" if self.kind == "gaussian" else "poisson"
        return f"{self.kind}:{self.level:g}"


def model_planes(model: Autoencoder, image: np.ndarray) -> np.ndarray:
    """``image`` as the model sees it: float32 (H, W, C) in [0, 1] units, alpha
    dropped, colour as opponent planes for one-channel models (as
    :func:`denoise.denoise_image` does)."""
    colour, _ = split_alpha(np.asarray(image))
    x = as_hwc(to_float(colour))
    if model.arch.channels == 3 and x.shape[2] != 3:
        raise ValueError(f"a 3-channel model learns from RGB images; got {x.shape[2]} channel(s)")
    if model.arch.channels == 1 and x.shape[2] == 3:
        x = to_opponent(x)
    return np.ascontiguousarray(x, np.float32)


def holdout_strips(images: list, rows: int) -> tuple[list, list]:
    """``(train, validation)`` parts of each image: the bottom eighth of its rows
    (at least ``rows``, the model's input patch) held back, where the image is
    tall enough for both parts to hold a patch; otherwise the whole image in both."""
    train, val = [], []
    for im in images:
        h = im.shape[0]
        cut = h - max(rows, h // 8)
        if cut >= rows and im.shape[1] >= rows:
            train.append(im[:cut])
            val.append(im[cut:])
        else:
            train.append(im)
            val.append(im)
    return train, val


class RecorruptionSampler:
    """R2R batches ``(input rows, sigma, target rows)`` from noisy images.

    Parameters
    ----------
    images : list of float32 (H, W, C) arrays, the noisy images as the model sees them
    arch : Architecture
    sigmas : per image, its noise level in [0, 1] units (what the model is told, before recorruption)
    variances : per image, an (H, W, C) map of its noise variance (0 where it gets no recorruption),
        or None for ``sigma**2`` everywhere
    alpha : the recorruption's strength
    """

    def __init__(self, images, arch: Architecture, sigmas, variances=None, alpha: float = ALPHA, augment: bool = True):
        self.arch, self.alpha = arch, float(alpha)
        self.base = PatchSampler(images, arch, parse("gaussian:0"), variances, augment)
        self.sigmas = np.asarray([sigmas[i] for i in self.base.usable], np.float32)
        self.has_map = variances is not None

    def sample(self, n: int, rng: np.random.Generator):
        a, k, q = self.alpha, self.arch.context, self.arch.patch
        y, which, var = self.base.draw(n, rng)
        sigma = self.sigmas[which]
        std = np.sqrt(np.maximum(var, 0)) if self.has_map else sigma[:, None, None, None]
        z = standard_normal(rng, y.shape) * std
        noisy = y + np.float32(a) * z
        target = (y - z / np.float32(a))[:, k : k + q, k : k + q, :]
        level = (sigma * np.float32(math.sqrt(1 + a * a))).astype(np.float32)
        return noisy.reshape(n, -1), level, np.ascontiguousarray(target.reshape(n, -1))


def poisson_variance(planes: np.ndarray, rgb_opponent: bool, peak: float) -> np.ndarray:
    """Poisson noise's variance ``x / peak`` per value, read from the noisy values;
    through the opponent transform when the planes are opponent colour."""
    if not rgb_opponent:
        return np.maximum(planes, 0) / np.float32(peak)
    h, w = planes.shape[:2]
    rgb = (np.moveaxis(planes, 2, 0).reshape(3, -1).T @ OPPONENT).reshape(h, w, 3)  # back to RGB values
    var_rgb = np.maximum(rgb, 0) / np.float32(peak)
    return (var_rgb.reshape(-1, 3) @ (OPPONENT**2).T).reshape(h, w, 3).astype(np.float32)


def recorruption_samplers(model: Autoencoder, images: list, noise: SelfNoise, *, alpha: float = ALPHA,
                          augment: bool = True):
    """``(train sampler, validation sampler, sigmas)`` for ``images`` (arrays of any
    supported dtype): held-back strips (:func:`holdout_strips`) for validation,
    and each image's noise level in [0, 1] units, as :func:`denoise.denoise_image`
    would take or estimate it."""
    if not images:
        raise ValueError("no images to learn from")
    planes, sigmas, maps = [], [], []
    for im in images:
        x = model_planes(model, im)
        if noise.kind == "gaussian" and noise.level is not None:
            s = noise.level / 255.0
        else:
            s = image_sigma(im)
        opponent = model.arch.channels == 1 and x.shape[2] == 3
        if noise.kind == "poisson":
            peak = noise.level or _fitted_peak(x, s, opponent)
            var = poisson_variance(x, opponent, peak)
        else:
            var = np.full(x.shape, s * s, np.float32)
        var[clipped(im, black=noise.kind != "poisson")] = 0  # see clipped()
        planes.append(x)
        maps.append(var)
        sigmas.append(float(s))
    p = model.arch.in_patch
    if not any(x.shape[0] >= p and x.shape[1] >= p for x in planes):
        raise ValueError(f"no image is at least {p}x{p} pixels (the model's input patch)")
    train, val = holdout_strips(planes, p)
    train_maps, val_maps = holdout_strips(maps, p)
    return (RecorruptionSampler(train, model.arch, sigmas, train_maps, alpha, augment),
            RecorruptionSampler(val, model.arch, sigmas, val_maps, alpha, augment=False), sigmas)


def clipped(image: np.ndarray, black: bool = True) -> np.ndarray:
    """(H, W) True where any channel sits exactly at black or white (0 or 1 in [0, 1] units);
    with ``black=False`` at white only (a Poisson count of 0 is a sample, not a clip).

    There the noisy value is known rather than noisy, so the recorruption
    ``z`` could be read off the input and the target's ``-z / alpha`` predicted
    from it: the model would learn to amplify noise. These pixels get no
    recorruption (input and target are the value itself)."""
    colour, _ = split_alpha(np.asarray(image))
    x = as_hwc(colour)
    top = np.iinfo(x.dtype).max if x.dtype.kind in "ui" else 1.0
    at = (x == top) | (x == 0) if black else x == top  # a float beyond [0, 1] is noise that was not clipped
    return np.any(at, axis=2)


def _fitted_peak(planes: np.ndarray, sigma: float, opponent: bool) -> float:
    """The Poisson peak that gives an image of this mean brightness the estimated
    noise level: ``sigma^2 = mean(x) / peak``."""
    mean = float(np.mean(planes[:, :, 0]) / math.sqrt(3)) if opponent else float(np.mean(planes))  # luma is sum/sqrt(3)
    return max(mean, 1e-3) / max(sigma, 1e-4) ** 2
