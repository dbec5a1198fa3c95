"""Denoise one image array: normalise, pad, batch patches through the model, stitch.

Memory stays bounded: patches are extracted, denoised and added back one band
of patch-grid rows at a time, so beyond the image buffers only one batch of
patches is alive at once.
"""

from __future__ import annotations

import numpy as np

from . import patches as P
from . import inputs
from .estimate import estimate_sigma
from .imaging import (
    as_hwc,
    from_float,
    from_opponent,
    split_alpha,
    to_float,
    to_opponent,
)
from .model import Autoencoder
from .noise import parse_mixture
from .stages import stage

__all__ = ["denoise_image", "denoise_planes", "ensemble_reconstruct", "resolve_sigma", "image_sigma", "ENSEMBLES", "STRENGTHS",
           "check_ensemble", "check_strength", "check_stride", "camera_gain"]

DEFAULT_BATCH = 4096

#: Allowed ``ensemble`` sizes: the first 1, 2, 4 or 8 elements of
#: :data:`denoise.patches.DIHEDRAL`, each a group of rotations/reflections.
ENSEMBLES = (1, 2, 4, 8)

def _estimate(hwc: np.ndarray) -> float:
    """Noise sigma of an (H, W, C) image of any supported dtype, in [0, 1] units
    (integer images are never converted to float whole; see
    :func:`denoise.noise.estimate_sigma`); 0 for images under 2 pixels a side."""
    if min(hwc.shape[:2]) < 2:
        return 0.0
    return estimate_sigma(hwc)


def resolve_sigma(model: Autoencoder, image: np.ndarray, sigma: float | None, camera: bool = False) -> float | None:
    """The sigma :func:`denoise_image` will use for ``image``: ``sigma`` as
    given, or for noise-conditioned models with ``sigma=None`` the estimate
    from the whole image (times the model's camera gain with ``camera``).
    Tiles of one image must share it."""
    gain = camera_gain(model) if camera else 1.0
    if sigma is not None or not model.arch.noise_input:
        return sigma
    return image_sigma(image) * gain


def camera_gain(model: Autoencoder) -> float:
    """How many times the blind estimate a camera photo's noise is, as ``model`` learnt it
    (``--condition std`` on camera noise); ValueError for a model that was not trained so."""
    gain = model.meta.get("camera_gain")
    if not gain:
        raise ValueError("this model was not trained on camera noise given its level (denoise train --noise ...+camera:... "
                         "--condition std), so it cannot be told that photos carry camera noise; leave camera off")
    return float(gain)


def image_sigma(image: np.ndarray) -> float:
    """The noise level :func:`denoise_image` estimates for ``image`` (alpha
    left out), in [0, 1] units."""
    return _estimate(as_hwc(split_alpha(np.asarray(image))[0]))


#: The range of ``strength``: the noise level given to the model, as a multiple of the estimated or given one.
STRENGTHS = (0.1, 10.0)


def check_strength(strength) -> float:
    """``strength`` as a float; ValueError unless it is a number in :data:`STRENGTHS`."""
    low, high = STRENGTHS
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.integer, np.floating)) or not (
        low <= strength <= high
    ):
        raise ValueError(f"strength must be a number from {low:g} to {high:g} (1: as estimated); got {strength!r}")
    return float(strength)


def check_ensemble(ensemble) -> None:
    """Raise ValueError unless ``ensemble`` is one of :data:`ENSEMBLES`."""
    if not (isinstance(ensemble, (int, np.integer)) and ensemble in ENSEMBLES):
        raise ValueError(f"ensemble must be one of {ENSEMBLES}; got {ensemble!r}")


def check_stride(model: Autoencoder, stride) -> int:
    """``stride``, or the model's default stride if None; ValueError unless it
    is an integer from 1 to the model's patch size."""
    stride = model.stride if stride is None else stride
    P.check_grid(model.arch.patch, stride)
    return int(stride)


def ensemble_reconstruct(model: Autoencoder, rows: np.ndarray, sigma, ensemble: int = 1) -> np.ndarray:
    """``model.reconstruct(rows, sigma)``, averaged over ``ensemble`` rotations
    and reflections of every patch (each output turned back before averaging).

    The patches stay on their grid, so tiled and untiled images still agree;
    with the whole group (8) the result is exactly equivariant to rotating
    or flipping an image whose patch grid is symmetric."""
    if ensemble == 1:
        return model.reconstruct(rows, sigma)
    arch = model.arch
    n = rows.shape[0]
    total = np.zeros((n, arch.patch, arch.patch, arch.channels), np.float32)
    for t in range(ensemble):
        out = model.reconstruct(inputs.turn_rows(arch, rows, t), sigma).reshape(n, arch.patch, arch.patch, arch.channels)
        total += P.dihedral(out, t, inverse=True)
    total /= np.float32(ensemble)
    return total.reshape(n, -1)


def denoise_planes(
    model: Autoencoder,
    x: np.ndarray,
    sigma: float,
    *,
    stride: int,
    window: str = "flat",
    batch_size: int = DEFAULT_BATCH,
    ensemble: int = 1,
) -> np.ndarray:
    """Denoise a float32 (H, W, C) array in [0, 1] units with ``model``.

    One-channel models denoise each of the C planes in turn; three-channel
    models take C == 3. ``sigma`` is passed to noise-conditioned models.
    ``ensemble``: see :func:`ensemble_reconstruct`. Returns float32 (H, W, C).
    """
    arch = model.arch
    c = x.shape[2]
    if arch.channels == 1 and c > 1:
        # plane by plane, each made contiguous, so that each patch row is adjacent values; the
        # result is planar, seen as (H, W, C)
        out = np.empty((c, *x.shape[:2]), np.float32)
        for k in range(c):
            plane = np.ascontiguousarray(x[:, :, k : k + 1])
            out[k] = denoise_planes(
                model, plane, sigma, stride=stride, window=window, batch_size=batch_size, ensemble=ensemble
            )[:, :, 0]
        return np.moveaxis(out, 0, 2)
    if arch.channels != c:
        raise ValueError(f"a {arch.channels}-channel model cannot denoise a {c}-channel image")
    g = P.grid(x.shape, arch.patch, stride)
    with stage("pad"):
        padded = P.pad(x, g, arch.reach)
        means = inputs.prepare(arch, padded)
    acc = P.accumulator(x.shape, g)
    win = P.window(arch.patch, window)
    rows_per_band = max(1, batch_size // g.count[1])
    for r0 in range(0, g.count[0], rows_per_band):
        band = slice(r0, min(r0 + rows_per_band, g.count[0]))
        with stage("extract"):
            rows = inputs.input_rows(arch, padded, means, g, band)
        with stage("forward", work=len(rows) * ensemble):
            denoised = ensemble_reconstruct(model, rows, sigma, ensemble)
        with stage("overlap-add"):
            P.overlap_add(acc, denoised, g, r0, win)
    with stage("crop"):
        return P.crop(acc, x.shape, g, window)


def denoise_image(
    model: Autoencoder,
    image: np.ndarray,
    sigma: float | None = None,
    *,
    stride: int | None = None,
    window: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    ensemble: int = 1,
    strength: float = 1.0,
    camera: bool = False,
) -> np.ndarray:
    """Denoise an image with a trained model.

    Parameters
    ----------
    model : Autoencoder
        From :func:`denoise.load_model` or :func:`denoise.train`.
    image : ndarray, shape (H, W) or (H, W, C), C in 1..4
        uint8, uint16, or float in [0, 1] units (noisy floats may stray
        outside [0, 1]; they are not clipped). A last channel of an
        (H, W, 2) or (H, W, 4) image is alpha and comes back untouched.
    sigma : float, optional
        Noise standard deviation in the image's [0, 1] units (25/255 for
        "sigma 25"). ``None``: estimated from the image for models that take
        the noise level as input; the training level for other models.
    stride : int, optional
        Patch grid step, 1 to the patch size (default: the model's). Smaller
        is slower and slightly better.
    window : {"flat", "gaussian"}, optional
        Stitching weights (default: the model's).
    batch_size : int
        Patches per forward call; bounds memory.
    ensemble : {1, 2, 4, 8}
        Average the model's output over this many rotations and reflections
        of every patch: that many times the time, for a small gain (see
        the model card).
    strength : float
        The noise level given to the model, as a multiple of ``sigma`` (or of
        the estimate): below 1 keeps more detail and more noise, above 1
        smooths more. 0.1 to 10; 1 by default.
    camera : bool
        The image carries camera noise (demosaicked, JPEG-compressed), whose
        level the blind estimate reads only in part: the estimate is
        multiplied by the model's ``camera_gain`` (models trained with
        ``--condition std`` on camera noise; ValueError for others).

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Examples
    --------
    >>> import denoise
    >>> model = denoise.load_model("default")
    >>> rng = np.random.default_rng(0)
    >>> noisy = np.clip(0.5 + 0.1 * rng.standard_normal((32, 32)), 0, 1)
    >>> denoise.denoise_image(model, noisy, sigma=0.1).shape
    (32, 32)
    """
    image = np.asarray(image)
    colour, alpha = split_alpha(image)
    if colour.shape[0] < 1 or colour.shape[1] < 1:
        raise ValueError(f"image has no pixels: shape {image.shape}")
    x = to_float(colour)
    # integer images are always finite; alpha comes back untouched, so it is checked too
    if image.dtype.kind == "f" and not (np.all(np.isfinite(x)) and (alpha is None or np.all(np.isfinite(alpha)))):
        raise ValueError("image contains NaN or Inf; replace them (e.g. numpy.nan_to_num) before denoising")
    stride = check_stride(model, stride)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive; got {batch_size}")
    check_ensemble(ensemble)
    window = window or model.meta.get("window", "flat")
    hwc = as_hwc(x)
    if sigma is not None and not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a non-negative number in [0, 1] units (25/255 for 8-bit level 25); got {sigma!r}")
    if sigma is not None and sigma > 1:
        raise ValueError(f"sigma is in the image's [0, 1] units; got {sigma!r}: did you mean {sigma:g}/255?")
    strength = check_strength(strength)
    if camera:
        camera_gain(model)  # refuses a model that knows nothing of camera noise, whatever its noise input
    gain = 1.0
    if model.arch.noise_input:
        with stage("estimate"):
            sigma = resolve_sigma(model, colour, sigma, camera)  # from the image as given: integers take the exact histogram path
        sigma = sigma * strength
    else:
        trained = _fixed_sigma(model.meta.get("noise"))
        level = sigma if sigma is not None and sigma > 0 else trained
        if level and trained and level * strength != trained:
            gain = trained / (level * strength)  # a fixed-level model: scale the noise to the level it knows
        sigma = trained or 0.0
    scaled = hwc * np.float32(gain) if gain != 1.0 else hwc  # no copy of the image when there is nothing to scale
    how = dict(stride=stride, window=window, batch_size=batch_size, ensemble=ensemble)
    gray_in_colour = model.arch.channels == 3 and hwc.shape[2] == 1  # a gray image through a colour model
    if gray_in_colour:
        scaled = np.repeat(scaled, 3, axis=2)
    if scaled.shape[2] == 3 and (model.arch.channels == 1 or model.arch.colour == "opponent"):
        with stage("colour transform"):
            out = from_opponent(denoise_planes(model, to_opponent(scaled), sigma, **how))
    else:
        out = denoise_planes(model, scaled, sigma, **how)
    if gray_in_colour:
        out = out.mean(axis=2, keepdims=True)
    if gain != 1.0:
        out /= gain
    result = from_float(out.reshape(colour.shape), image.dtype)
    if alpha is not None:
        result = np.concatenate([result, alpha], axis=2)
    return result


def _fixed_sigma(spec) -> float | None:
    """The Gaussian sigma a model was trained for, when it was trained for one level alone."""
    if not spec:
        return None
    noises = parse_mixture(spec)
    return noises[0].sigma if len(noises) == 1 else None
