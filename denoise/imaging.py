"""Image arrays at the package's edges: dtypes, channel layout, alpha, colour planes.

Images come in as (H, W) or (H, W, C) arrays of uint8, uint16 or float in
[0, 1] units, with C in 1..4 (a last channel of 2 or 4 is alpha). The
computational core works on float32 (H, W, C) arrays; these helpers convert
between the two and back, losslessly where the dtype allows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_hwc", "split_alpha", "to_float", "from_float", "OPPONENT", "to_opponent", "from_opponent"]

#: Orthonormal opponent colour transform (luma, red-blue, green-magenta).
#: Being orthonormal, it keeps i.i.d. Gaussian noise i.i.d. with the same
#: sigma while decorrelating the colour planes, so a one-channel model
#: denoises these three planes better than R, G and B (the model card's
#: colour rows).
OPPONENT = (
    np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], np.float64)
    / np.sqrt([[3.0], [2.0], [6.0]])
).astype(np.float32)


def as_hwc(image: np.ndarray) -> np.ndarray:
    """View an (H, W) or (H, W, C) array as (H, W, C)."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image[:, :, None]
    if image.ndim == 3:
        return image
    raise ValueError(f"expected an image of shape (H, W) or (H, W, C); got shape {image.shape}")


def split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(colour, alpha) of an (H, W), (H, W, 1|2|3|4) image; alpha is None if absent."""
    if image.ndim == 2:
        return image, None
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ValueError(
            f"expected an image of shape (H, W) or (H, W, C) with C in 1..4; got shape {image.shape}; "
            "use channel-last (H, W, C) arrays"
        )
    c = image.shape[2]
    if c in (2, 4):
        return image[:, :, : c - 1], image[:, :, c - 1 :]
    return image, None


def to_float(image: np.ndarray) -> np.ndarray:
    """float32 in [0, 1] units: uint8 / 255, uint16 / 65535, floats as they are."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535)
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32)
    raise ValueError(f"unsupported image dtype {image.dtype}; use uint8, uint16 or float in [0, 1] units")


def from_float(x: np.ndarray, dtype) -> np.ndarray:
    """Back to ``dtype``: integers are rounded and clipped, floats are not clipped."""
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        top = np.iinfo(dtype).max
        y = x * np.float32(top)  # one temporary, rounded and clipped in place
        np.rint(y, out=y)
        np.clip(y, 0, top, out=y)
        return y.astype(dtype)
    return x.astype(dtype)


def to_opponent(rgb: np.ndarray) -> np.ndarray:
    """Float32 (H, W, 3) RGB as opponent planes, planar in memory: a (H, W, 3) view of a (3, H, W) array."""
    h, w = rgb.shape[:2]
    return np.moveaxis((OPPONENT @ rgb.reshape(-1, 3).T).reshape(3, h, w), 0, 2)


def from_opponent(planes: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_opponent`: (H, W, 3) opponent planes (any layout) to interleaved RGB."""
    h, w = planes.shape[:2]
    return (np.moveaxis(planes, 2, 0).reshape(3, -1).T @ OPPONENT).reshape(h, w, 3)
