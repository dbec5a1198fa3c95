"""Training patches cut from whole noisy crops, each given the blind estimate of its crop as its noise level.

Camera noise has spatial structure (it is demosaicked, sharpened and
JPEG-compressed with the picture), so it cannot be drawn patch by patch as
white noise is: each crop of a training image is run through
:func:`denoise.camera.camera_pair` whole (the target: the clean crop as the
camera would store it, JPEG included), and patches are cut from a
pool of such crops, a few of which are replaced by fresh ones at every draw.
Other noise goes through the same crops when a model is to be conditioned on
the estimate rather than on the true level (``TrainConfig.condition``), so
that it learns what an estimate means over the whole training mixture.
One-channel models see the opponent planes of colour crops, as they do when
denoising (:mod:`denoise.imaging`), and each patch's noise level is what the
blind estimate reads on its crop, as it will read it on a whole image.
"""

from __future__ import annotations

import numpy as np

from ..estimate import estimate_sigma
from ..imaging import to_opponent
from ..inputs import footprint_rows
from ..model import Architecture
from ..noise import Noise
from ..patches import DIHEDRAL, dihedral

__all__ = ["NoisyCrops", "camera_gain"]


class NoisyCrops:
    """(noisy, sigma, clean) patch rows with ``noise`` at its levels, sigma the estimate of each crop.

    ``level``: each patch's noise level, ``estimate`` (the blind estimate of its crop) or
    ``std`` (the standard deviation of its crop's noise, noisy less target, over all channels).
    ``pool`` crops of ``crop`` pixels a side (less where every image is smaller) are kept; each :meth:`sample`
    replaces ``refresh`` of them, chosen at random."""

    def __init__(self, clean, arch: Architecture, noise: Noise, *, augment: bool = True,
                 crop: int = 96, pool: int = 128, refresh: int = 4, level: str = "estimate"):
        if arch.channels != 1:
            raise ValueError("training on noisy crops is written for one-channel models (they denoise opponent planes)")
        if level not in ("estimate", "std"):
            raise ValueError(f"level must be 'estimate' or 'std'; got {level!r}")
        self.arch, self.noise, self.refresh, self.level = arch, noise, refresh, level
        self.images = [np.asarray(c if c.ndim == 3 else c[:, :, None], np.float32) for c in clean]
        # crops of ``crop`` px, or as large as the largest image allows where all are smaller
        self.crop = max(arch.extent, min(crop, max(min(im.shape[:2]) for im in self.images)))
        self.images = [im for im in self.images if min(im.shape[:2]) >= self.crop]
        if not self.images:
            raise ValueError(f"no training image is at least {self.crop}x{self.crop} pixels (the model's input patch)")
        area = np.array([im.shape[0] * im.shape[1] for im in self.images], np.float64)
        self.prob = area / area.sum()
        self.transforms = len(DIHEDRAL) if augment else 1
        s = self.crop
        self.noisy = np.zeros((pool, 3, s, s), np.float32)
        self.clean = np.zeros_like(self.noisy)
        self.planes = np.zeros(pool, np.intp)
        self.sigma = np.zeros(pool, np.float32)
        self.estimate = np.zeros(pool, np.float32)  # the blind estimate of each crop, whatever ``level`` is
        self._filled = False

    def _fill(self, slots, rng: np.random.Generator) -> None:
        """Synthesise fresh crops into ``slots``."""
        s = self.crop
        for slot in slots:
            im = self.images[rng.choice(len(self.images), p=self.prob)]
            y = rng.integers(0, im.shape[0] - s + 1)
            x = rng.integers(0, im.shape[1] - s + 1)
            noisy, clean = self.noise.add_pair(im[y : y + s, x : x + s], rng, float(self.noise.draw_levels(1, rng)[0]))
            self.estimate[slot] = estimate_sigma(noisy)
            self.sigma[slot] = self.estimate[slot] if self.level == "estimate" else np.std(noisy - clean)
            if clean.shape[2] == 3:
                clean, noisy = to_opponent(clean), to_opponent(noisy)
            planes = clean.shape[2]
            self.planes[slot] = planes
            self.clean[slot, :planes] = np.moveaxis(clean, 2, 0)
            self.noisy[slot, :planes] = np.moveaxis(noisy, 2, 0)

    def sample(self, n: int, rng: np.random.Generator):
        """``(noisy_rows, sigma, clean_rows)``, as :meth:`PatchSampler.sample`."""
        if not self._filled:  # the first draw fills the whole pool
            self._fill(range(len(self.planes)), rng)
            self._filled = True
        else:
            self._fill(rng.choice(len(self.planes), size=self.refresh, replace=False), rng)
        arch = self.arch
        p, k, q = arch.extent, arch.reach, arch.patch  # each patch's footprint: what its input row is made from
        slot = rng.integers(0, len(self.planes), n)
        plane = (rng.random(n) * self.planes[slot]).astype(np.intp)
        y = rng.integers(0, self.crop - p + 1, n)
        x = rng.integers(0, self.crop - p + 1, n)
        t = rng.integers(0, self.transforms, n)
        rows = (y[:, None] + np.arange(p))[:, :, None]
        cols = (x[:, None] + np.arange(p))[:, None, :]
        noisy = self.noisy[slot[:, None, None], plane[:, None, None], rows, cols][..., None]
        clean = self.clean[slot[:, None, None], plane[:, None, None], rows, cols][..., None]
        for tt in range(1, self.transforms):  # flips and turns, as the white-noise sampler's
            sel = t == tt
            if sel.any():
                noisy[sel] = dihedral(noisy[sel], tt)
                clean[sel] = dihedral(clean[sel], tt)
        target = clean[:, k : k + q, k : k + q, :].reshape(n, -1)
        return footprint_rows(arch, noisy), self.sigma[slot].copy(), np.ascontiguousarray(target)


def camera_gain(clean, arch: Architecture, noise: Noise, rng: np.random.Generator, crops: int = 256) -> float:
    """How many times the blind estimate the standard deviation of camera ``noise`` is, as the
    median of that ratio over ``crops`` fresh noisy crops of the images: what a run on camera
    photos multiplies the estimate by for a model given the std in training (``level="std"``)."""
    pool = NoisyCrops(clean, arch, noise, augment=False, pool=crops, level="std")
    pool._fill(range(crops), rng)
    seen = pool.estimate > 0
    if not seen.any():
        raise ValueError("the blind estimate reads no noise on any camera-noise crop")
    return float(np.median(pool.sigma[seen] / pool.estimate[seen]))
