"""Camera noise: what a photo's noise looks like after a camera has processed it.

White Gaussian noise is a poor model of a real photo's: a sensor's noise is
Poisson-Gaussian in linear light on a colour mosaic, and the camera then
demosaics (which correlates it across pixels and colours), applies white
balance and a tone curve (which makes its level depend on brightness and
colour), sharpens, and compresses to JPEG (which removes its finest part).
:func:`add_camera_noise` runs a clean sRGB image through that chain, after
Brooks et al., "Unprocessing images for learned raw denoising" (CVPR 2019),
and Guo et al., "Toward convolutional blind denoising of real photographs"
(CBDNet, CVPR 2019). Every parameter is drawn per image from wide ranges, so
that a model trained on it does not learn one camera:

- shot and read noise (variance ``shot * x + read`` in linear raw units):
  ``shot`` log-uniform over [1e-4, 1.2e-2] as ``level`` goes 0 to 100
  (Brooks et al.'s range, from the calibrated Darmstadt noise dataset's
  cameras), ``log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26)`` (their fit);
- white balance: red gain U[1.9, 2.4], blue gain U[1.5, 1.9] (Brooks et al.);
- tone curve: sRGB, with the linear values raised to an exponent U[0.8, 1.25]
  before the noise and back after it (a family of curves, as CBDNet's
  camera response functions);
- Bayer mosaic RGGB at a random phase, demosaicked bilinearly;
- sharpening with probability 1/2: unsharp mask, radius 1, amount U[0, 0.6];
- JPEG with probability 3/4 at quality U[60, 98] (CBDNet: 60-100), with
  4:2:0 chroma subsampling below 90; else 8-bit rounding.

The noise goes through the mosaic, the demosaicking, the tone curve and the
sharpening; the picture only through the tone curve and back (exactly). The
training target (:func:`camera_pair`) is the clean picture as the camera would
store it without noise: the same 8-bit rounding and the same JPEG. A model
trained on it removes the noise, not the compression of the picture, so a
clean photo, itself a JPEG, comes back as it was rather than smoothed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

__all__ = ["CameraParams", "draw_params", "add_camera_noise", "camera_pair", "srgb_to_linear", "linear_to_srgb", "mosaic",
           "demosaic"]

_SHOT = (1e-4, 1.2e-2)
_READ_FIT = (2.18, 1.20, 0.26)  # log(read) = a log(shot) + b + N(0, c)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class CameraParams:
    """One simulated camera and exposure."""

    shot: float
    read: float
    red_gain: float
    blue_gain: float
    tone: float  # exponent applied to linear values around the noise
    phase: tuple[int, int]  # where the mosaic's red pixel lies in each 2x2 cell
    sharpen: float  # unsharp-mask amount, 0 for none
    jpeg_quality: int | None  # None: 8-bit rounding, no JPEG


def draw_params(rng: np.random.Generator, level: float) -> CameraParams:
    """A random camera at noise ``level`` (0 to 100: the shot noise's place on its log range)."""
    lo, hi = np.log(_SHOT[0]), np.log(_SHOT[1])
    log_shot = lo + (hi - lo) * float(level) / 100.0
    a, b, c = _READ_FIT
    log_read = a * log_shot + b + c * rng.standard_normal()
    return CameraParams(
        shot=float(np.exp(log_shot)),
        read=float(np.exp(log_read)),
        red_gain=float(rng.uniform(1.9, 2.4)),
        blue_gain=float(rng.uniform(1.5, 1.9)),
        tone=float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))),
        phase=(int(rng.integers(2)), int(rng.integers(2))),
        sharpen=float(rng.uniform(0, 0.6)) if rng.random() < 0.5 else 0.0,
        jpeg_quality=int(rng.integers(60, 99)) if rng.random() < 0.75 else None,
    )


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The sRGB transfer function's inverse (IEC 61966-2-1), for values in [0, 1]."""
    x = np.clip(x, 0, 1)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(y: np.ndarray) -> np.ndarray:
    """The sRGB transfer function, for linear values in [0, 1]."""
    y = np.clip(y, 0, 1)
    return np.where(y <= 0.0031308, 12.92 * y, 1.055 * y ** (1 / 2.4) - 0.055).astype(np.float32)


def _masks(shape: tuple[int, int], phase: tuple[int, int]) -> np.ndarray:
    """(3, H, W) booleans: where the mosaic holds red, green and blue."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    py, px = phase
    red = ((yy % 2) == py) & ((xx % 2) == px)
    blue = ((yy % 2) != py) & ((xx % 2) != px)
    return np.stack([red, ~(red | blue), blue])


def mosaic(rgb: np.ndarray, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """An (H, W, 3) image as the (H, W) Bayer mosaic a sensor records (red at ``phase`` of each 2x2 cell)."""
    m = _masks(rgb.shape[:2], phase)
    return np.einsum("chw,hwc->hw", m.astype(rgb.dtype), rgb)


_KERNELS = {
    "rb": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4,
    "g": np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4,
}


def demosaic(raw: np.ndarray, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Bilinear demosaicking of an (H, W) Bayer mosaic to (H, W, 3)."""
    m = _masks(raw.shape, phase)
    planes = [ndimage.convolve(raw * m[c], _KERNELS["g" if c == 1 else "rb"], mode="mirror") for c in range(3)]
    return np.stack(planes, axis=2).astype(np.float32)


def add_camera_noise(clean: np.ndarray, rng: np.random.Generator, level: float,
                     params: CameraParams | None = None) -> np.ndarray:
    """A noisy float32 copy of a clean float image in [0, 1], (H, W) gray or
    (H, W, 3) sRGB, as a camera at noise ``level`` (0 to 100) would have
    recorded it; see the module's docstring. ``params`` fixes the camera
    (default: drawn from ``rng``)."""
    return camera_pair(clean, rng, level, params)[0]


def camera_pair(clean: np.ndarray, rng: np.random.Generator, level: float,
                params: CameraParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy, target)``: :func:`add_camera_noise`'s image, and ``clean`` stored as that
    camera stores its pictures (8-bit, and the same JPEG) but without the noise."""
    x = np.asarray(clean, np.float32)
    gray = x.ndim == 2 or x.shape[2] == 1
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] not in (1, 3)):
        raise ValueError(f"camera noise takes an (H, W) or (H, W, 1|3) image; got shape {x.shape}")
    rgb = np.repeat(x.reshape(x.shape[0], x.shape[1], 1), 3, axis=2) if gray else x
    p = params or draw_params(rng, level)
    gains = np.array([p.red_gain, 1.0, p.blue_gain], np.float32)
    linear = srgb_to_linear(rgb) ** np.float32(p.tone) / gains  # what the sensor saw, before white balance
    raw = mosaic(linear, p.phase)
    std = np.sqrt(np.maximum(raw, 0) * np.float32(p.shot) + np.float32(p.read))
    # the noise is demosaicked, the picture is not: its detail stays the target's
    noise = demosaic(std * rng.standard_normal(raw.shape, dtype=np.float32), p.phase)
    noisy = linear_to_srgb(np.maximum((linear + noise) * gains, 0) ** np.float32(1 / p.tone))
    residual = noisy - rgb
    if p.sharpen:  # the camera's sharpening, of the noise as of everything else
        residual += np.float32(p.sharpen) * (residual - ndimage.gaussian_filter(residual, (1, 1, 0)))
    out = np.clip(rgb + residual, 0, 1)
    if gray:
        out = out @ _LUMA
    picture = np.clip(x, 0, 1).reshape(out.shape)
    return _store(out, p.jpeg_quality).reshape(x.shape), _store(picture, p.jpeg_quality).reshape(x.shape)


def _store(x: np.ndarray, quality: int | None) -> np.ndarray:
    """What the camera writes: 8-bit values, through JPEG at ``quality`` unless None."""
    u8 = np.rint(x * 255).astype(np.uint8)
    if quality is not None:
        buf = io.BytesIO()
        Image.fromarray(u8).save(buf, format="JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
        u8 = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    return u8.astype(np.float32) / np.float32(255)
