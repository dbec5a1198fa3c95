"""Image quality: PSNR and SSIM, on arrays in [0, 1] units (or any ``data_range``)."""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter

__all__ = ["psnr", "psnr_from_mse", "ssim"]


def _pair(reference, test):
    a = np.asarray(reference, np.float64)
    b = np.asarray(test, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return a, b


def psnr(reference, test, *, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range**2 / MSE)``.

    Examples
    --------
    >>> round(psnr(np.zeros(4), np.full(4, 0.1)), 6)
    20.0
    """
    a, b = _pair(reference, test)
    return psnr_from_mse(float(np.mean((a - b) ** 2)), data_range=data_range)


def psnr_from_mse(mse: float, *, data_range: float = 1.0) -> float:
    """PSNR in dB of a mean squared error (infinite for 0).

    >>> psnr_from_mse(0.01)
    20.0
    """
    return float("inf") if mse <= 0 else 10.0 * math.log10(data_range**2 / mse)


def ssim(reference, test, *, data_range: float = 1.0, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang et al. 2004) with a Gaussian window
    (sigma 1.5, truncated at 3.5 sigma, as scikit-image's ``gaussian_weights=True``),
    averaged over channels for (H, W, C) images."""
    a, b = _pair(reference, test)
    if a.ndim == 3:
        return float(np.mean([ssim(a[..., c], b[..., c], data_range=data_range, sigma=sigma) for c in range(a.shape[2])]))
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    f = lambda x: gaussian_filter(x, sigma, truncate=3.5)  # noqa: E731
    n = (2 * int(3.5 * sigma + 0.5) + 1) ** 2
    cov = n / (n - 1)  # sample covariance, as scikit-image
    mu_a, mu_b = f(a), f(b)
    va = cov * (f(a * a) - mu_a**2)
    vb = cov * (f(b * b) - mu_b**2)
    vab = cov * (f(a * b) - mu_a * mu_b)
    s = ((2 * mu_a * mu_b + c1) * (2 * vab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
    pad = (int(3.5 * sigma + 0.5) * 2 + 1) // 2
    return float(s[pad:-pad, pad:-pad].mean()) if min(s.shape) > 2 * pad else float(s.mean())
