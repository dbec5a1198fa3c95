"""Random training patches: noisy input rows, their noise level and clean targets."""

from __future__ import annotations

import numba
import numpy as np

from ..model import Architecture
from ..noise import Noise
from ..patches import DIHEDRAL, dihedral
from ..imaging import to_opponent
from ..inputs import footprint_rows
from ..surround import block_noise, box_means
from .crops import NoisyCrops

__all__ = ["PatchSampler", "MixedSampler", "make_sampler", "CONDITIONS"]

#: What a noise-conditioned model is given as its noise level in training. ``true``: white noise the
#: level it was made at, camera noise (which has no single level) the blind estimate of its crop.
#: ``estimate``: every noise the blind estimate of a crop of the noisy image (:class:`NoisyCrops`), as
#: denoising without a given sigma reads it. ``std``: white noise its level, camera noise the standard
#: deviation of its noise over the crop, which the blind estimate reads only in part (run time scales the
#: estimate back, with the ratio the training crops measured).
CONDITIONS = ("true", "estimate", "std")


class PatchSampler:
    """Random (noisy input, clean target, sigma) patch rows from images.

    Parameters
    ----------
    clean : list of float32 arrays (H, W, C) in [0, 1]
    arch : Architecture
        Fixes patch, context and channels. One-channel models draw each
        patch from one random channel of its image.
    noise : Noise
        Synthetic noise added to clean patches (ignored with ``noisy``).
    noisy : list of arrays, optional
        Real noisy counterparts of ``clean``, same shapes; sigma per image
        is then the standard deviation of their difference.
    augment : bool
        Flip and turn each patch at random.
    footprints : bool, optional
        Draw each patch's whole footprint, make it noisy and build the input
        row from it as denoising does (:func:`denoise.inputs.footprint_rows`).
        By default for models with neighbours, and for a surround under noise
        other than white Gaussian; otherwise a surround's block means take their
        noise in closed form (:func:`denoise.surround.block_noise`), a sixteenth
        of the pixels to draw.

    The sampler keeps its own copy of the images (of both sets with
    ``noisy``), laid out for gathering (see ``__init__``).
    """

    def __init__(self, clean, arch: Architecture, noise: Noise, noisy=None, augment: bool = True,
                 footprints: bool | None = None):
        self.arch, self.noise, self.augment = arch, noise, augment
        clean = [np.asarray(c if c.ndim == 3 else c[:, :, None], np.float32) for c in clean]
        if noisy is not None:
            noisy = [np.asarray(n, np.float32).reshape(c.shape) for n, c in zip(noisy, clean)]
        p, e = arch.in_patch, arch.extent
        usable = [i for i, c in enumerate(clean) if c.shape[0] >= e and c.shape[1] >= e]
        if not usable:
            raise ValueError(f"no training image is at least {e}x{e} pixels (the model's input patch and surround)")
        if footprints is None:  # the closed form holds for white Gaussian noise and for real pairs
            footprints = arch.neighbours > 0 or (bool(arch.surround) and noisy is None and noise.kind != "gaussian")
        self.footprints = bool(footprints)
        if arch.channels == 3 and any(clean[i].shape[2] != 3 for i in usable):
            raise ValueError("a 3-channel model needs RGB training images")
        self.usable = usable
        self._shapes = np.array([clean[i].shape for i in usable], np.intp)
        # One kernel call gathers a whole batch (see _gather) from one flat buffer of every usable
        # image, in which each row of a patch is a run of adjacent values: planes (c, h, w) for
        # one-channel models, which take each patch from one channel, pixels (h, w, c) for
        # three-channel ones. Where each value of a patch lies from the patch's first value, under
        # each of the 8 flips and turns (just the identity without augmentation), is a (transforms,
        # values per patch) table per image width.
        self._buffer, self._base = self._pack(clean)
        self._noisy_buffer = self._pack(noisy)[0] if noisy is not None else None
        self.transforms = len(DIHEDRAL) if augment else 1
        self._widths, self._table = np.unique(self._shapes[:, 1], return_inverse=True)
        self._tables = self._offsets(e if self.footprints else p, 1)
        # the coarse surround: each scale's box means of the images, laid out as the images, gathered
        # on the scale's grid of blocks (which flips and turns about the patch's centre, as the patch)
        self._means, self._noisy_means, self._grid_tables = [], [], []
        for scale in () if self.footprints else arch.surround:
            self._means.append(self._pack([box_means(a, scale) for a in clean])[0])
            if noisy is not None:
                self._noisy_means.append(self._pack([box_means(a, scale) for a in noisy])[0])
            self._grid_tables.append(self._offsets(arch.surround_grid, scale))
        # with real pairs, each image's sigma is the standard deviation of noisy - clean
        self._sigmas = None
        if noisy is not None:
            self._sigmas = np.array([float(np.std(noisy[i] - clean[i])) for i in usable], np.float32)
        area = (self._shapes[:, 0] * self._shapes[:, 1]).astype(np.float64)
        self.prob = area / area.sum()

    def _offsets(self, side: int, step: int) -> np.ndarray:
        """(widths, transforms, side * side * c) offsets from a square's first value of the values of
        a ``side`` x ``side`` square of pixels ``step`` apart, under each flip and turn, per image width."""
        yx = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), axis=-1)[None]
        moves = np.stack([dihedral(yx, t)[0] for t in range(self.transforms)]) * step
        c = self.arch.channels
        tables = [(moves[..., 0] * wd + moves[..., 1])[..., None] * c + np.arange(c) for wd in self._widths]
        return np.stack(tables).reshape(len(self._widths), self.transforms, -1).astype(np.intp)

    @property
    def origin(self) -> int:
        """Where the output patch starts, on each axis, in what :meth:`draw` gives: the input patch's
        context, or the model's reach in a whole footprint."""
        return self.arch.reach if self.footprints else self.arch.context

    def sample(self, n: int, rng: np.random.Generator):
        """``(noisy_rows, sigma, clean_rows)``, in the training step's order:
        float32 (n, in_pixels), (n,), (n, out_size).

        Rows come grouped by image (a batch's order carries no information:
        it makes one gradient step), which keeps the reads of one image
        together. Each patch is gathered already flipped or turned, by
        transformed offsets, in one kernel call for the batch."""
        arch = self.arch
        k, q = self.origin, arch.patch
        clean, which, noisy, coarse = self._draw(n, rng)
        if noisy is not None:
            sigma = self._sigmas[which]
        else:
            levels = self.noise.draw_levels(n, rng)
            noisy = self.noise.add(clean, rng, levels)
            if coarse:
                noise = block_noise(arch, noisy - clean, (levels / 255.0).astype(np.float32), rng)
                coarse = [m + z for m, z in zip(coarse, noise)]
            sigma = np.zeros(n, np.float32)
            if self.noise.kind in ("gaussian", "speckle"):
                sigma[:] = levels / 255.0
            elif self.noise.kind == "poisson":  # the patch's rms noise std, which a blind estimate reads
                c0 = self.origin - arch.context  # the input patch in what was drawn
                window = clean[:, c0 : c0 + arch.in_patch, c0 : c0 + arch.in_patch]
                mean = np.maximum(window.reshape(n, -1).mean(axis=1), 0)
                sigma[:] = np.sqrt(mean / levels)
        target = clean[:, k : k + q, k : k + q, :].reshape(n, -1)
        if self.footprints:
            return footprint_rows(arch, noisy), sigma, np.ascontiguousarray(target)
        rows = noisy.reshape(n, -1)
        if coarse:
            rows = np.concatenate([rows, *(m.reshape(n, -1) for m in coarse)], axis=1)
        return rows, sigma, np.ascontiguousarray(target)

    def draw(self, n: int, rng: np.random.Generator):
        """``(patches, which, noisy)``: ``n`` input-sized patches (n, p, p, c) of
        the images, or their whole footprints (n, extent, extent, c) for a sampler
        of ``footprints``, which image each came from (an index into ``usable``),
        and the same of the paired noisy images (None without them)."""
        if self.arch.surround and not self.footprints:
            raise ValueError("input patches alone are drawn only for models that read nothing beyond them")
        return self._draw(n, rng)[:3]

    def _draw(self, n: int, rng: np.random.Generator):
        """:meth:`draw`, and each surround scale's blocks (n, grid, grid, c) of the paired noisy
        images where there are some, else of the clean ones (an empty list without a surround).
        With ``footprints``, the patches are whole footprints (n, extent, extent, c) and there
        are no blocks."""
        arch = self.arch
        c, e = arch.channels, arch.extent
        p = e if self.footprints else arch.in_patch
        which = np.sort(rng.choice(len(self.usable), size=n, p=self.prob))
        u = rng.random((n, 3))  # position y, x and channel of each patch, scaled to its image below
        t = rng.integers(0, self.transforms, n)  # flip / turn of each patch (an element of DIHEDRAL)
        h, wd, nc = self._shapes[which].T
        y = (u[:, 0] * (h - e + 1)).astype(np.intp)  # the top left of each patch's footprint
        x = (u[:, 1] * (wd - e + 1)).astype(np.intp)
        plane = (u[:, 2] * nc).astype(np.intp) if c == 1 else 0  # one random channel per patch
        table = self._table[which]

        def at(dy):  # where a value dy pixels below and right of the footprint's top left lies in a buffer
            return self._base[which] + ((plane * h + y + dy) * wd + x + dy) * c

        first = at(arch.reach - self.origin)  # the drawn square's top left: the footprint's, or the input patch's
        patches = np.empty((n, p, p, c), np.float32)
        _gather(self._buffer, first, self._tables, table, t, patches.reshape(n, -1))
        noisy = None
        if self._noisy_buffer is not None:
            noisy = np.empty_like(patches)
            _gather(self._noisy_buffer, first, self._tables, table, t, noisy.reshape(n, -1))
        coarse = []
        g = arch.surround_grid
        for i, scale in enumerate(() if self.footprints else arch.surround):
            blocks = np.empty((n, g, g, c), np.float32)
            source = self._noisy_means[i] if self._noisy_means else self._means[i]
            _gather(source, at(arch.reach + arch.surround_offset(scale)), self._grid_tables[i], table, t, blocks.reshape(n, -1))
            coarse.append(blocks)
        return patches, which, noisy, coarse

    def _pack(self, images):
        """``(buffer, base)``: the usable images in one flat float32 buffer
        (see ``__init__``) and where each begins in it."""
        parts = [images[i] for i in self.usable]
        if self.arch.channels == 1:
            parts = [np.moveaxis(a, 2, 0) for a in parts]
        sizes = [a.size for a in parts]
        base = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        buffer = np.empty(sum(sizes), np.float32)
        for b, a in zip(base.tolist(), parts):
            buffer[b : b + a.size].reshape(a.shape)[...] = a
        return buffer, base


@numba.njit(nogil=True, cache=True)
def _gather(src, first, tables, table, transform, out):
    """``out[j] = src[first[j] + tables[table[j], transform[j]]]`` for every patch ``j``.

    Numba does not check bounds: the sampler only passes positions whose
    whole window lies in its image. One thread on purpose: the step's BLAS
    threads use the cores meanwhile."""
    for j in range(out.shape[0]):
        offsets = tables[table[j], transform[j]]
        start = first[j]
        for v in range(offsets.shape[0]):
            out[j, v] = src[start + offsets[v]]


class MixedSampler:
    """Batches shared equally among several samplers (a noise mixture's components),
    in turn, the first ones taking the remainder."""

    def __init__(self, samplers: list):
        self.samplers = samplers

    def sample(self, n: int, rng: np.random.Generator):
        m = len(self.samplers)
        parts = [s.sample(n // m + (i < n % m), rng) for i, s in enumerate(self.samplers)]
        return tuple(np.concatenate(arrays) for arrays in zip(*parts))


def make_sampler(clean, arch: Architecture, noises: list[Noise], noisy=None, augment: bool = True,
                 condition: str = "true"):
    """The sampler for a noise mixture: white-noise components draw patch by patch
    (:class:`PatchSampler`) at their true level, camera noise from whole crops
    (:class:`NoisyCrops`) at its estimate; with ``condition="estimate"`` every
    component comes from crops, at its estimate. Paired ``noisy`` images take
    one :class:`PatchSampler`."""
    if arch.channels == 3 and arch.colour == "opponent":  # the model sees opponent planes, as when denoising
        clean = [to_opponent(np.asarray(c, np.float32)) if np.ndim(c) == 3 and np.shape(c)[2] == 3 else c for c in clean]
        noisy = None if noisy is None else [to_opponent(np.asarray(c, np.float32)) for c in noisy]
    if noisy is not None:
        return PatchSampler(clean, arch, noises[0], noisy, augment)
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}; got {condition!r}")
    level = "std" if condition == "std" else "estimate"
    samplers = [NoisyCrops(clean, arch, n, augment=augment, level=level) if n.kind == "camera" or condition == "estimate"
                else PatchSampler(clean, arch, n, None, augment) for n in noises]
    return samplers[0] if len(samplers) == 1 else MixedSampler(samplers)
