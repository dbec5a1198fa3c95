"""A coarse surround for patch models: block means around each patch, at coarser scales.

A model whose architecture has ``surround=(4, 8)`` sees, besides its input
patch, the means of the 4 x 4 and of the 8 x 8 pixel blocks on a square grid
of ``surround_grid`` blocks a side, centred on the patch: with the default
grid of 8, a 32 and a 64 pixel window, for 64 extra inputs each. A block mean
carries ``1/s`` of the noise of one pixel, so the wide context comes nearly
clean and cheap; the output patch and the stitching are unchanged.

The blocks of a patch lie at fixed offsets from it on the global patch grid,
so tiles whose margin covers :attr:`Architecture.reach` produce the same
pixels as the whole image (:mod:`denoise.inputs` lays out the input row).
"""

from __future__ import annotations

import numpy as np

from .architecture import Architecture

__all__ = ["box_means", "blocks", "block_noise"]


def box_means(image: np.ndarray, scale: int) -> np.ndarray:
    """``out[..., y, x, :] = image[..., y : y + scale, x : x + scale, :].mean()`` for an (..., H, W, C)
    image (or stack of them), float32, of the same shape: the last ``scale - 1`` rows and columns,
    whose blocks leave the image, are 0."""
    h, w = image.shape[-3:-1]
    out = np.zeros(image.shape, np.float32)
    if h < scale or w < scale:
        return out
    lead = image.shape[:-3]
    s = np.zeros((*lead, h + 1, w + 1, image.shape[-1]), np.float64)  # summed-area table, in float64 for precision
    np.cumsum(np.cumsum(image, axis=-3, dtype=np.float64), axis=-2, out=s[..., 1:, 1:, :])
    box = s[..., scale:, scale:, :] - s[..., :-scale, scale:, :] - s[..., scale:, :-scale, :] + s[..., :-scale, :-scale, :]
    out[..., : h - scale + 1, : w - scale + 1, :] = box / (scale * scale)
    return out


def blocks(arch: Architecture, means: np.ndarray, scale: int, origin: tuple[int, int], rows: int, cols: int, stride: int) -> np.ndarray:
    """Each patch's grid of blocks at ``scale`` from ``means`` = ``box_means(image, scale)``
    (H, W, C), for the ``rows`` x ``cols`` patches whose outputs start at ``origin + stride * (i, j)``:
    (rows * cols, grid * grid * C), in (y, x, channel) order."""
    n = arch.surround_grid
    o = (origin[0] + arch.surround_offset(scale), origin[1] + arch.surround_offset(scale))
    span = (n - 1) * scale + 1
    band = means[o[0] : o[0] + (rows - 1) * stride + span, o[1] :] if rows > 0 else means[:0, o[1] :]
    win = np.lib.stride_tricks.sliding_window_view(band, (span, span), axis=(0, 1))
    win = win[::stride, ::stride][:rows, :cols, :, ::scale, ::scale]  # (rows, cols, C, n, n)
    return win.transpose(0, 1, 3, 4, 2).reshape(-1, n * n * means.shape[2])


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
        # inside[n, a, b, c] = sum over y, x of cover[a, y] cover[b, x] fine_noise[n, y, x, c], as two matrix products
        rows = (cover @ np.moveaxis(fine_noise, 1, 0).reshape(p, -1)).reshape(g, n, p, c)
        inside = (np.ascontiguousarray(rows.transpose(1, 0, 3, 2)).reshape(-1, p) @ cover.T).reshape(n, g, c, g)
        inside = inside.transpose(0, 1, 3, 2)
        outside = scale * scale - np.outer(cover.sum(1), cover.sum(1))  # pixels of each block not in the input patch
        fresh = standard_normal(rng, (n, g, g, c)) * (np.sqrt(outside)[None, :, :, None] * sigma[:, None, None, None])
        out.append(((inside + fresh) / np.float32(scale * scale)).astype(np.float32))
    return out
