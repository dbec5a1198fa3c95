"""Gaussian noise clipped to [0, 1]: its mean and variance, for self-supervision on saved images.

An image saved as 8- or 16-bit integers holds ``y = clip(x + n, 0, 1)``: near
black and white its noise is neither zero-mean nor of variance ``sigma^2``.
Recorruption (:mod:`denoise.training.selfsupervised`) then needs the noise's
true variance at each pixel, and its loss compares ``clipped_mean(output)``,
what the model's estimate would look like once noisy and clipped, with the
target, so that the model itself learns the unclipped value.

The moments of ``clip(u, 0, 1)`` for ``u ~ N(x, s^2)`` are closed-form with
``a = -x / s``, ``b = (1 - x) / s`` and the normal ``Phi``/``phi``::

    E     = x (Phi(b) - Phi(a)) + s (phi(a) - phi(b)) + 1 - Phi(b)
    E[.^2] = x^2 P + 2 x s (phi(a) - phi(b)) + s^2 (P + a phi(a) - b phi(b)) + 1 - Phi(b),
             P = Phi(b) - Phi(a)
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from scipy import ndimage, special

__all__ = ["clipped_mean", "clipped_moments", "NUMPY", "local_level", "level_noise_gain", "clipped_noise_variance"]

#: The functions the formulas need, from numpy/scipy; pass ``pytensor.tensor`` for a graph.
NUMPY = SimpleNamespace(erf=special.erf, exp=np.exp)
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


def _pieces(x, s, lib):
    a, b = -x / s, (1 - x) / s
    cdf_a, cdf_b = 0.5 * (1 + lib.erf(a / _SQRT2)), 0.5 * (1 + lib.erf(b / _SQRT2))
    pdf_a, pdf_b = lib.exp(-0.5 * a * a) / _SQRT2PI, lib.exp(-0.5 * b * b) / _SQRT2PI
    return a, b, cdf_a, cdf_b, pdf_a, pdf_b


def clipped_mean(x, s, lib=NUMPY):
    """``E[clip(x + n, 0, 1)]`` for ``n ~ N(0, s^2)``, elementwise (``s > 0``);
    ``lib`` gives ``erf`` and ``exp`` (numpy's, or ``pytensor.tensor``)."""
    _, _, cdf_a, cdf_b, pdf_a, pdf_b = _pieces(x, s, lib)
    return x * (cdf_b - cdf_a) + s * (pdf_a - pdf_b) + (1 - cdf_b)


def clipped_moments(x, s):
    """``(mean, variance)`` of ``clip(x + n, 0, 1)``, numpy arrays."""
    x, s = np.asarray(x, np.float64), np.asarray(s, np.float64)
    a, b, cdf_a, cdf_b, pdf_a, pdf_b = _pieces(x, s, NUMPY)
    inside = cdf_b - cdf_a
    mean = x * inside + s * (pdf_a - pdf_b) + (1 - cdf_b)
    second = x * x * inside + 2 * x * s * (pdf_a - pdf_b) + s * s * (inside + a * pdf_a - b * pdf_b) + (1 - cdf_b)
    return mean, np.maximum(second - mean * mean, 0.0)


def _kernel(width: float) -> np.ndarray:
    r = int(math.ceil(4 * width))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / width) ** 2)
    return k / k.sum()


def level_noise_gain(width: float = 1.5) -> float:
    """``var(y - local_level(y)) / var(y)`` for white noise: the residual also
    carries the neighbourhood mean's own noise."""
    k = _kernel(width)
    w = np.outer(k, k)
    r = len(k) // 2
    w0 = w[r, r]
    w[r, r] = 0
    return float(1 + np.sum(w * w) / (1 - w0) ** 2)


def local_level(planes: np.ndarray, width: float = 1.5) -> np.ndarray:
    """Each value's neighbourhood mean without the value itself: a Gaussian blur of
    ``width`` pixels whose centre weight is taken out, so that a noise variance
    read from it does not depend on that pixel's own noise. (H, W, C) float32."""
    out = np.empty_like(planes, dtype=np.float32)
    w0 = float(_kernel(width)[int(math.ceil(4 * width))] ** 2)
    for c in range(planes.shape[2]):
        p = planes[:, :, c].astype(np.float32)
        out[:, :, c] = (ndimage.gaussian_filter(p, width, mode="reflect", truncate=4.0) - w0 * p) / (1 - w0)
    return out


def clipped_noise_variance(planes: np.ndarray, sigma: float) -> np.ndarray:
    """The variance of clipped Gaussian noise of level ``sigma`` at each value of
    noisy, clipped intensity planes in [0, 1]: the clean value is read from
    :func:`local_level` (which estimates the clipped mean, so it is inverted
    through :func:`clipped_mean`), and the variance is the clipped noise's there."""
    grid = np.linspace(0.0, 1.0, 1025)
    mean, var = clipped_moments(grid, max(sigma, 1e-6))
    level = local_level(planes)
    clean = np.interp(level, mean, grid)  # the mean rises with the clean value; ends held
    return np.interp(clean, grid, var).astype(np.float32)
