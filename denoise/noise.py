"""Noise models and their spec strings (noise-level estimation: :mod:`denoise.estimate`).

A spec string names a noise model and its level, in 8-bit units where the
model has a level in pixel values::

    gaussian:25        additive Gaussian, sigma = 25/255
    gaussian:5-50      blind: sigma drawn uniformly in [5, 50]/255 per patch
    poisson:30         Poisson (shot) noise, peak = 30 photons at white
    saltpepper:0.05    5% of pixels set to 0 or 1
    speckle:25         multiplicative Gaussian, x * (1 + n), std 25/255
    camera:20-80       a camera's processed noise at a level drawn in [20, 80] per image
                       (0-150: shot and read noise on a mosaic, demosaicked, tone-mapped,
                       JPEG; see :mod:`denoise.camera`)

Images are float arrays in [0, 1] units. Every draw takes a
``numpy.random.Generator``, so runs are reproducible from a seed.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from dataclasses import dataclass

import numpy as np

__all__ = ["Noise", "parse", "parse_mixture", "mixture_spec", "standard_normal"]

FORMS = (
    "gaussian:SIGMA, gaussian:LOW-HIGH (sigma in 8-bit levels, e.g. gaussian:25), "
    "poisson:PEAK (e.g. poisson:30), saltpepper:AMOUNT (fraction 0-1, e.g. saltpepper:0.05), "
    "speckle:SIGMA (8-bit levels, e.g. speckle:25), camera:LEVEL or camera:LOW-HIGH (0-150, e.g. camera:20-80)"
)
_KINDS = ("gaussian", "poisson", "saltpepper", "speckle", "camera")
#: The highest camera noise level (100: the top of the calibrated range; above it, extrapolated).
CAMERA_MAX = 150
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_SPEC = re.compile(rf"^\s*([a-z_-]+)\s*:\s*{_NUMBER}(?:\s*-\s*{_NUMBER})?\s*$")


@dataclass(frozen=True)
class Noise:
    """A noise model. ``low``/``high`` are the level's range in the spec's
    units (equal for a fixed level)."""

    kind: str
    low: float
    high: float

    @property
    def spec(self) -> str:
        level = f"{self.low:g}" if self.low == self.high else f"{self.low:g}-{self.high:g}"
        return f"{self.kind}:{level}"

    @property
    def is_range(self) -> bool:
        return self.low != self.high

    @property
    def sigma(self) -> float | None:
        """Gaussian sigma in [0, 1] units for a fixed-level Gaussian model, else None."""
        if self.kind == "gaussian" and not self.is_range:
            return self.low / 255.0
        return None

    def draw_levels(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` levels in the spec's units, uniform over the range."""
        if not self.is_range:
            return np.full(n, self.low, np.float64)
        return rng.uniform(self.low, self.high, n)

    def add_pair(self, clean: np.ndarray, rng: np.random.Generator, level: float) -> tuple[np.ndarray, np.ndarray]:
        """``(noisy, target)`` for one whole image at ``level``: :meth:`add`'s noisy copy and
        what a denoiser should make of it, ``clean`` itself but for camera noise, whose
        target is the picture as the camera stores it (:func:`denoise.camera.camera_pair`)."""
        if self.kind == "camera":
            from .camera import camera_pair

            return camera_pair(np.asarray(clean, np.float32), rng, float(level))
        return self.add(clean, rng, level), np.asarray(clean, np.float32)

    def add(self, clean: np.ndarray, rng: np.random.Generator, levels=None) -> np.ndarray:
        """Return a noisy float32 copy of ``clean`` (values in [0, 1]).

        ``levels`` (spec units) may be one number or one per row of ``clean``
        (axis 0), as for a batch of patches; by default one level is drawn.
        Gaussian and speckle results are not clipped.
        """
        x = np.asarray(clean, dtype=np.float32)
        if levels is None:
            levels = self.draw_levels(1, rng)[0]
        if self.kind == "camera":  # of a whole image: the noise has spatial structure
            from .camera import add_camera_noise

            if np.ndim(levels) != 0:
                raise ValueError("camera noise is made for one whole image at a time, not for a batch of patches")
            return add_camera_noise(x, rng, float(levels))
        lv = np.asarray(levels, np.float64)
        if lv.ndim == 1:
            lv = lv.reshape((-1,) + (1,) * (x.ndim - 1))
        if self.kind == "gaussian":
            n = standard_normal(rng, x.shape)
            n *= (lv / 255.0).astype(np.float32)  # in float32 throughout: no float64 temporary of the batch
            return x + n
        if self.kind == "speckle":
            n = standard_normal(rng, x.shape) * (lv / 255.0)
            return (x * (1 + n)).astype(np.float32)
        if self.kind == "poisson":
            return (rng.poisson(np.clip(x, 0, None) * lv) / lv).astype(np.float32)
        # salt and pepper
        u = rng.random(x.shape, dtype=np.float32)
        out = x.copy()
        out[u < lv / 2] = 0.0
        out[(u >= lv / 2) & (u < lv)] = 1.0
        return out


@functools.cache
def _normal_quantiles(levels: int = 1 << 16) -> np.ndarray:
    """What :func:`standard_normal` draws from: N(0, 1) at the midpoints of
    ``levels`` equal-probability bins, as float32, scaled to unit variance
    (the midpoints' tails stop at +-4.32). Made on first use, not at import:
    denoising never draws noise."""
    inv_cdf = statistics.NormalDist().inv_cdf
    half = np.array([inv_cdf((i + 0.5) / levels) for i in range(levels // 2, levels)])
    z = np.concatenate([-half[::-1], half])
    out = (z / np.sqrt(np.mean(z * z))).astype(np.float32)
    out.flags.writeable = False  # shared by every call
    return out


def standard_normal(rng: np.random.Generator, shape) -> np.ndarray:
    """Float32 N(0, 1) draws: 65536 equal-probability quantiles of N(0, 1)
    at uniform 16-bit indices, four from each 64-bit draw of ``rng``'s bit
    generator.

    Training draws a fresh noise value for every input pixel of every
    patch, so the draw is made cheap: a table lookup instead of numpy's own
    ``standard_normal`` (what it saves: ``scripts/bench_speed.py --section
    kernels``). The levels stand for the continuous distribution: symmetric,
    of variance 1, with no value beyond |z| = 4.32 (which N(0, 1) passes with
    probability 1.5e-5).
    """
    size = math.prod(shape)
    indices = rng.bit_generator.random_raw((size + 3) // 4).view(np.uint16)[:size]
    return _normal_quantiles()[indices].reshape(shape)


def parse(spec: str | Noise) -> Noise:
    """Parse a noise spec string such as ``"gaussian:25"`` or ``"gaussian:5-50"``.

    Raises
    ------
    ValueError
        naming the bad spec and listing the valid forms.

    Examples
    --------
    >>> parse("gaussian:5-50").is_range
    True
    """
    if isinstance(spec, Noise):
        return spec
    m = _SPEC.match(str(spec).lower())
    if not m:
        raise ValueError(f"bad noise spec {spec!r}; valid forms: {FORMS}")
    kind, low = m.group(1), float(m.group(2))
    high = float(m.group(3)) if m.group(3) is not None else low
    if kind in ("salt-pepper", "salt_pepper", "sp", "s&p"):
        kind = "saltpepper"
    if kind not in _KINDS:
        raise ValueError(f"unknown noise model {kind!r} in {spec!r}; valid forms: {FORMS}")
    if high < low:
        raise ValueError(f"noise range {spec!r} has its high end below its low end; valid forms: {FORMS}")
    if kind == "camera" and high > CAMERA_MAX:
        raise ValueError(f"camera noise levels run from 0 to {CAMERA_MAX}; got {spec!r}")
    if kind == "saltpepper" and high > 1:
        raise ValueError(f"salt-and-pepper amount must be a fraction in [0, 1]; got {spec!r}")
    if kind == "poisson" and low <= 0:
        raise ValueError(f"poisson peak must be positive; got {spec!r}")
    return Noise(kind, low, high)


def parse_mixture(spec: str | Noise) -> list[Noise]:
    """The noise models of a training mixture, ``"+"``-separated: each batch is
    shared equally among them (``"gaussian:0-55+camera:0-100"``). A single spec
    is a mixture of one.

    >>> [n.kind for n in parse_mixture("gaussian:0-55+camera:0-100")]
    ['gaussian', 'camera']
    """
    if isinstance(spec, Noise):
        return [spec]
    parts = str(spec).split("+")
    if any(not p.strip() for p in parts):
        raise ValueError(f"bad noise mixture {spec!r}: join noise specs with '+', e.g. gaussian:0-55+camera:0-100")
    return [parse(p) for p in parts]


def mixture_spec(noises: list[Noise]) -> str:
    """The canonical spec string of a mixture."""
    return "+".join(n.spec for n in noises)
