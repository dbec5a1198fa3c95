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
split into two independent halves by binomial thinning.
Noise correlated across pixels (demosaicked, JPEG-compressed) breaks the
independence: the model then learns to keep the correlated part.

Saved images are clipped to [0, 1], which breaks the Gaussian assumption near
black and white; :func:`image_noise` says which clipping is modelled
(:mod:`denoise.training.clipping`) and which is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..imaging import OPPONENT, as_hwc, split_alpha, to_float, to_opponent
from ..inputs import footprint_rows
from ..model import Architecture, Autoencoder
from ..noise import parse, standard_normal
from ..pipeline import image_sigma
from .clipping import clipped_noise_variance, level_noise_gain, local_level
from .sampler import PatchSampler

__all__ = ["SelfNoise", "RecorruptionSampler", "ALPHA", "model_planes", "holdout_strips", "recorruption_samplers",
           "poisson_variance", "clipped", "image_noise", "ImageNoise", "thin", "LOW_COUNT", "fitted_peak"]

#: The recorruption's strength: inputs carry sqrt(1 + ALPHA^2) times the images' noise, targets 1/ALPHA times.
ALPHA = 0.5
#: Poisson counts around a pixel below which a Gaussian recorruption misleads (opponent planes only).
LOW_COUNT = 10.0
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
    """R2R batches ``(input rows, sigma, target rows)`` from noisy images (thinned
    halves instead for the images given a Poisson peak), and each row's
    ``spread`` where some image's noise is clipped (``clipped_targets``).

    Parameters
    ----------
    images : list of float32 (H, W, C) arrays, the noisy images as the model sees them
    arch : Architecture
    sigmas : per image, its noise level in [0, 1] units (what the model is told, before recorruption)
    variances : per image, an (H, W, C) map of its noise variance (0 where it gets no recorruption),
        or None for ``sigma**2`` everywhere
    alpha : the recorruption's strength
    spreads : per image, the level of the Gaussian noise that was clipped to [0, 1] in its
        values (the training step compares the targets with the output so noisy and clipped:
        :func:`denoise.training.step.as_targets`), 0 for an image whose clipping is not modelled
    peaks : per image, the Poisson peak (photons at white) of an image whose patches are split
        by binomial thinning instead of recorrupted (:func:`thin`), 0 for the others
    """

    def __init__(self, images, arch: Architecture, sigmas, variances=None, alpha: float = ALPHA, augment: bool = True,
                 spreads=None, peaks=None):
        self.arch, self.alpha = arch, float(alpha)
        # a model that reads beyond its input patch gets whole footprints, recorrupted whole
        self.base = PatchSampler(images, arch, parse("gaussian:0"), variances, augment,
                                 footprints=arch.extent > arch.in_patch)
        self.sigmas = np.asarray([sigmas[i] for i in self.base.usable], np.float32)
        self.has_map = variances is not None
        self.spreads = None if spreads is None else np.asarray([spreads[i] for i in self.base.usable], np.float32)
        self.clipped_targets = self.spreads is not None and bool(np.any(self.spreads > 0))
        self.peaks = None if peaks is None else np.asarray([peaks[i] for i in self.base.usable], np.float32)

    def sample(self, n: int, rng: np.random.Generator):
        a, k, q = self.alpha, self.base.origin, self.arch.patch
        y, which, var = self.base.draw(n, rng)
        sigma = self.sigmas[which]
        std = np.sqrt(np.maximum(var, 0)) if self.has_map else sigma[:, None, None, None]
        z = standard_normal(rng, y.shape) * std
        noisy = y + np.float32(a) * z
        target = (y - z / np.float32(a))[:, k : k + q, k : k + q, :]
        if self.peaks is not None and np.any(self.peaks[which] > 0):
            rows = np.flatnonzero(self.peaks[which] > 0)
            noisy[rows], whole = thin(y[rows], self.peaks[which][rows], 1 / (1 + a * a), rng)
            target[rows] = whole[:, k : k + q, k : k + q, :]
        level = (sigma * np.float32(math.sqrt(1 + a * a))).astype(np.float32)
        rows = footprint_rows(self.arch, noisy) if self.base.footprints else noisy.reshape(n, -1)
        batch = rows, level, np.ascontiguousarray(target.reshape(n, -1))
        return (*batch, self.spreads[which]) if self.clipped_targets else batch


def thin(patches: np.ndarray, peaks: np.ndarray, keep: float, rng: np.random.Generator):
    """``(input, target)``: Poisson patches (values ``counts / peak``) split by
    binomial thinning, each count into ``kept ~ Binomial(count, keep)`` and the
    rest. The two parts are independent Poisson counts of the same scene, so
    each, rescaled, is an unbiased noisy copy of it, whatever the count level:
    the loss of one against the other ranks models as their true error would
    (unlike a Gaussian recorruption, which very low counts fool). The input
    carries ``1 / keep`` times the image's noise variance, as recorruption's
    does at ``keep = 1 / (1 + alpha^2)``."""
    pk = peaks.astype(np.float64)[:, None, None, None]
    counts = np.rint(np.maximum(patches, 0) * pk)
    kept = rng.binomial(counts.astype(np.int64), keep)
    return ((kept / (keep * pk)).astype(np.float32),
            ((counts - kept) / ((1 - keep) * pk)).astype(np.float32))


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
    """``(train sampler, validation sampler, sigmas, unmodelled)`` for ``images``
    (arrays of any supported dtype): held-back strips (:func:`holdout_strips`)
    for validation; each image's noise level in [0, 1] units, as
    :func:`denoise.denoise_image` would take or estimate it; and the share of
    the pixels clipped in a way the objective does not model (:func:`image_noise`)."""
    if not images:
        raise ValueError("no images to learn from")
    planes, sigmas, how = [], [], []
    for im in images:
        x = model_planes(model, im)
        if noise.kind == "gaussian" and noise.level is not None:
            s = noise.level / 255.0
        else:
            s = image_sigma(im)
        planes.append(x)
        sigmas.append(float(s))
        how.append(image_noise(model, im, x, s, noise))
    p = model.arch.extent
    if not any(x.shape[0] >= p and x.shape[1] >= p for x in planes):
        raise ValueError(f"no image is at least {p}x{p} pixels (what the model's input reads)")
    train, val = holdout_strips(planes, p)
    train_maps, val_maps = holdout_strips([h.variance for h in how], p)
    spreads, peaks = [h.spread for h in how], [h.peak for h in how]
    share = sum(int(h.unmodelled.sum()) for h in how) / max(sum(h.unmodelled.size for h in how), 1)
    return (RecorruptionSampler(train, model.arch, sigmas, train_maps, alpha, augment, spreads, peaks),
            RecorruptionSampler(val, model.arch, sigmas, val_maps, alpha, False, spreads, peaks), sigmas, share)


class ImageNoise(NamedTuple):
    """How one noisy image is turned into training pairs (:func:`image_noise`)."""

    variance: np.ndarray  #: (H, W, C) noise variance of each value, for recorruption (0: none)
    spread: float  #: the level of the clipped Gaussian noise its targets carry (0: clipping not modelled)
    peak: float  #: the Poisson peak its patches are thinned at (0: recorrupted instead)
    unmodelled: np.ndarray  #: (H, W) pixels clipped in a way the objective does not model


def image_noise(model: Autoencoder, image: np.ndarray, planes: np.ndarray, sigma: float,
                noise: SelfNoise) -> ImageNoise:
    """How one noisy image (``planes``: :func:`model_planes`; ``sigma``: its
    level) is turned into training pairs.

    - Gaussian noise on intensities (gray, or RGB for a 3-channel model):
      recorruption. In a clipped image, at the variance of the clipped noise
      at the clean level read around each pixel
      (:func:`denoise.training.clipping.clipped_noise_variance`), with
      ``sigma`` as the spread; nothing is left unmodelled.
    - Poisson noise on intensities: binomial thinning (:func:`thin`), at the
      given peak or one fitted to the image. Clipping at white is not modelled.
    - Opponent planes (RGB for a one-channel model): recorruption at
      ``sigma^2`` (Gaussian) or at ``x / peak`` read around each pixel
      (Poisson). Clipping in RGB is not modelled, nor are Poisson counts too
      low for a Gaussian recorruption (under ``LOW_COUNT`` around a pixel).

    Unmodelled clipped pixels get no recorruption: see :func:`clipped`."""
    opponent = model.arch.channels == 1 and planes.shape[2] == 3
    if noise.kind == "poisson":
        peak = noise.level or fitted_peak(planes, opponent)
        level = local_level(planes)
        unmodelled = clipped(image, black=False)
        if not opponent:
            return ImageNoise(np.zeros(planes.shape, np.float32), 0.0, float(peak), unmodelled)
        var = poisson_variance(level, opponent, peak)
        unmodelled |= level[:, :, 0] / math.sqrt(3) * peak < LOW_COUNT  # luma is sum/sqrt(3)
    else:
        unmodelled = clipped(image)
        if not opponent and _is_clipped(image, unmodelled):
            return ImageNoise(clipped_noise_variance(planes, sigma), float(sigma), 0.0, np.zeros_like(unmodelled))
        var = np.full(planes.shape, sigma * sigma, np.float32)
    var[unmodelled] = 0
    return ImageNoise(var, 0.0, 0.0, unmodelled)


def _is_clipped(image: np.ndarray, at_bounds: np.ndarray) -> bool:
    """Whether ``image`` looks clipped to [0, 1]: some pixel at a bound, and (a
    float image) none beyond them."""
    a = np.asarray(image)
    return bool(at_bounds.any()) and (a.dtype.kind in "ui" or bool(np.nanmin(a) >= 0 and np.nanmax(a) <= 1))


def clipped(image: np.ndarray, black: bool = True) -> np.ndarray:
    """(H, W) True where any channel sits exactly at black or white (0 or 1 in [0, 1] units);
    with ``black=False`` at white only (a Poisson count of 0 is a sample, not a clip).

    Where the objective does not model the clipping (:func:`noise_variance`),
    the noisy value is known rather than noisy there, so the recorruption
    ``z`` could be read off the input and the target's ``-z / alpha`` predicted
    from it: the model would learn to amplify noise. These pixels get no
    recorruption (input and target are the value itself)."""
    colour, _ = split_alpha(np.asarray(image))
    x = as_hwc(colour)
    top = np.iinfo(x.dtype).max if x.dtype.kind in "ui" else 1.0
    at = (x == top) | (x == 0) if black else x == top  # a float beyond [0, 1] is noise that was not clipped
    return np.any(at, axis=2)


def fitted_peak(planes: np.ndarray, opponent: bool, block: int = 8) -> float:
    """The Poisson peak of noisy planes, from the noise-level function
    ``var = x / peak``: per block of ``block`` pixels, the residual's power
    against the local level (:func:`denoise.training.clipping.local_level`),
    and the median over blocks, which edges and texture (blocks of high
    residual) do not move. Luma for opponent planes (its variance is
    ``luma / (sqrt(3) peak)``)."""
    p = planes[:, :, :1]
    level = local_level(p)[:, :, 0]
    power = (p[:, :, 0] - level) ** 2 / level_noise_gain()
    if opponent:
        level = level / math.sqrt(3)
    h, w = (planes.shape[0] // block) * block, (planes.shape[1] // block) * block
    if h == 0 or w == 0:
        raise ValueError(f"an image of {planes.shape[0]}x{planes.shape[1]} pixels is too small to fit its Poisson peak")
    sums = lambda a: a[:h, :w].reshape(h // block, block, w // block, block).sum(axis=(1, 3)).ravel()
    lv, pw = sums(np.maximum(level, 0)), sums(power)
    ok = (lv > 0) & (pw > 0)
    if not ok.any():
        raise ValueError("the image has no noise to fit a Poisson peak to; give it as poisson:PEAK")
    return float(1.0 / np.median(pw[ok] / lv[ok]))
