"""A coarse surround for patch models: block means around each patch, at coarser scales.

A model whose architecture has ``surround=(4, 8)`` sees, besides its input
patch, the means of the 4 x 4 and of the 8 x 8 pixel blocks on a square grid
of ``surround_grid`` blocks a side, centred on the patch: with the default
grid of 8, a 32 and a 64 pixel window, for 64 extra inputs each. A block mean
carries ``1/s`` of the noise of one pixel, so the wide context comes nearly
clean and cheap; the output patch and the stitching are unchanged.

Input rows are laid out ``[patch (y, x, channel) | each scale's grid (y, x,
channel)]``. The blocks of a patch lie at fixed offsets from it on the global
patch grid, so tiles whose margin covers :attr:`Architecture.reach` produce
the same pixels as the whole image.
"""

from __future__ import annotations

import numpy as np

from .architecture import Architecture
from . import patches as P

__all__ = ["box_means", "input_rows", "turn_rows", "block_noise"]


def box_means(image: np.ndarray, scale: int) -> np.ndarray:
    """``out[y, x] = image[y : y + scale, x : x + scale].mean()`` for an (H, W, C) image, float32,
    of the same shape: the last ``scale - 1`` rows and columns, whose blocks leave the image, are 0."""
    h, w, c = image.shape
    out = np.zeros((h, w, c), np.float32)
    if h < scale or w < scale:
        return out
    s = np.zeros((h + 1, w + 1, c), np.float64)  # summed-area table, in float64 so that large images keep precision
    np.cumsum(np.cumsum(image, axis=0, dtype=np.float64), axis=1, out=s[1:, 1:])
    box = s[scale:, scale:] - s[:-scale, scale:] - s[scale:, :-scale] + s[:-scale, :-scale]
    out[: h - scale + 1, : w - scale + 1] = box / (scale * scale)
    return out


def input_rows(arch: Architecture, padded: np.ndarray, means: list[np.ndarray], g: P.Grid, rows: slice | None) -> np.ndarray:
    """The model's input rows for patch-grid ``rows`` of an image padded by :func:`denoise.patches.pad`
    with ``arch.reach``; ``means`` holds ``box_means(padded, s)`` for each surround scale."""
    r = arch.reach
    fine = P.extract_padded(padded[r - arch.context :, r - arch.context :], g, arch.context, rows)
    if not arch.surround:
        return fine
    r0, r1, _ = (rows or slice(None)).indices(g.count[0])
    r1 = max(r1, r0)
    parts = [fine]
    n, s = arch.surround_grid, g.stride
    for scale, b in zip(arch.surround, means):
        o = r + arch.surround_offset(scale)  # the first block of patch (0, 0), in padded coordinates
        span = (n - 1) * scale + 1
        band = b[o + r0 * s : o + (r1 - 1) * s + span, o:] if r1 > r0 else b[:0, o:]
        win = np.lib.stride_tricks.sliding_window_view(band, (span, span), axis=(0, 1))
        win = win[::s, ::s][: r1 - r0, : g.count[1], :, ::scale, ::scale]  # (ny, nx, C, n, n)
        parts.append(win.transpose(0, 1, 3, 4, 2).reshape(-1, n * n * padded.shape[2]))
    return np.concatenate(parts, axis=1)


def turn_rows(arch: Architecture, rows: np.ndarray, t: int) -> np.ndarray:
    """Input rows of the patches turned or flipped by element ``t`` of :data:`denoise.patches.DIHEDRAL`:
    the patch and every grid of blocks about their shared centre."""
    n, c = rows.shape[0], arch.channels
    sides = [arch.in_patch] + [arch.surround_grid] * len(arch.surround)
    out, at = [], 0
    for side in sides:
        part = rows[:, at : at + side * side * c].reshape(n, side, side, c)
        out.append(np.ascontiguousarray(P.dihedral(part, t)).reshape(n, -1))
        at += side * side * c
    return np.concatenate(out, axis=1) if len(out) > 1 else out[0]


def block_noise(arch: Architecture, fine_noise: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """The block means of white Gaussian noise of std ``sigma`` (one per patch), each scale's
    (N, grid, grid, C), consistent with the noise ``fine_noise`` (N, p, p, C) that the input patch
    carries: a block that overlaps the patch's input averages that noise where it does and fresh
    noise elsewhere, as the block mean of one noisy image would."""
    from .noise import standard_normal

    n, p, _, c = fine_noise.shape
    k, g = arch.context, arch.surround_grid
    out = []
    for scale in arch.surround:
        # which input pixels each block covers, along one axis: blocks start at offset + i * scale
        # from the output patch's origin, the input patch at -context
        first = arch.surround_offset(scale) + k + scale * np.arange(g)
        cover = ((np.arange(p)[None, :] >= first[:, None]) & (np.arange(p)[None, :] < first[:, None] + scale)).astype(np.float32)
        inside = np.einsum("ay,bx,nyxc->nabc", cover, cover, fine_noise, optimize=True)
        outside = scale * scale - np.outer(cover.sum(1), cover.sum(1))  # pixels of each block not in the input patch
        fresh = standard_normal(rng, (n, g, g, c)) * (np.sqrt(outside)[None, :, :, None] * sigma[:, None, None, None])
        out.append(((inside + fresh) / np.float32(scale * scale)).astype(np.float32))
    return out
