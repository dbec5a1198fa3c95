"""Noise-level estimation: how much Gaussian noise an image carries.

The estimate feeds noise-conditioned models when the user gives no level.
"""

from __future__ import annotations

import numpy as np

__all__ = ["estimate_sigma"]

#: The median of |N(0, 1)|.
_MAD = 0.6744897501960817


def estimate_sigma(image: np.ndarray) -> float:
    """Estimate the standard deviation of additive Gaussian noise.

    The robust median-absolute-deviation estimator of Donoho and Johnstone
    on the finest diagonal Haar wavelet band, averaged over channels.
    ``image`` is (H, W) or (H, W, C): uint8 or uint16 (read as value / 255
    or value / 65535, as :func:`denoise.denoise_image` reads them) or float
    in [0, 1] units. The result is in [0, 1] units.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noisy = 0.5 + 0.1 * rng.standard_normal((256, 256))
    >>> round(estimate_sigma(noisy), 2)
    0.1
    """
    x = np.asarray(image)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"need an (H, W) or (H, W, C) image of at least 2x2 pixels; got shape {np.shape(image)}")
    if x.dtype in (np.uint8, np.uint16):
        top = np.iinfo(x.dtype).max
        return float(np.mean([_median_abs_haar(x[:, :, k], top) / (2 * top) for k in range(x.shape[2])]) / _MAD)
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    sig = []
    for k in range(x.shape[2]):  # one channel at a time: float64 copies of a quarter plane, never of the image
        ch = x[:, :, k]
        a, b = ch[0:h:2, 0:w:2].astype(np.float64), ch[0:h:2, 1:w:2]
        c, d = ch[1:h:2, 0:w:2], ch[1:h:2, 1:w:2]
        hh = (a - b - c + d) / 2.0  # orthonormal Haar diagonal detail
        hh = np.abs(hh[np.isfinite(hh)])
        if hh.size:
            sig.append(np.median(hh) / _MAD)
    if not sig:
        raise ValueError("cannot estimate noise: the image has no finite pixels")
    return float(np.mean(sig))


def _median_abs_haar(channel: np.ndarray, top: int) -> float:
    """The median of ``|a - b - c + d|`` over the 2x2 blocks of an integer
    channel, exactly: the sums are integers in [0, 2*top], so a histogram
    replaces the sort, and the image is never converted to float."""
    h, w = channel.shape[0] // 2 * 2, channel.shape[1] // 2 * 2
    s = channel[0:h:2, 0:w:2].astype(np.int32) - channel[0:h:2, 1:w:2] - channel[1:h:2, 0:w:2] + channel[1:h:2, 1:w:2]
    counts = np.cumsum(np.bincount(np.abs(s).ravel(), minlength=2 * top + 1))
    n = counts[-1]
    low, high = np.searchsorted(counts, [(n - 1) // 2, n // 2], side="right")
    return (low + high) / 2
