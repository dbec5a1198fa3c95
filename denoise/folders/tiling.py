"""Huge images as tiles on the global patch grid: tiled output equals untiled output."""

from __future__ import annotations

import math

import numpy as np

from ..pipeline import denoise_image, resolve_sigma

__all__ = ["tiles", "tile_boxes", "denoise_in_tiles"]


def tiles(shape: tuple[int, int], tile_pixels: int, stride: int, reach: int):
    """Split an (H, W) image into tiles for separate denoising.

    Each tile is ``(outer, core)``: ``outer`` = ((y0, y1), (x0, x1)) is the
    region to denoise, ``core`` the part of its result to keep, in the
    tile's coordinates. Cores partition the image. ``outer`` extends each
    core by at least ``reach`` pixels (the model's patch size plus how far
    its input reaches beyond the patch, minus one) where the image allows, and starts on a multiple of
    ``stride``, so it sees the same global patch grid and produces the same
    core pixels as denoising the whole image.
    """
    h, w = shape
    side = max(stride, int(math.sqrt(tile_pixels)) // stride * stride)
    out = []
    for cy in range(0, h, side):
        for cx in range(0, w, side):
            cy1, cx1 = min(cy + side, h), min(cx + side, w)
            oy0 = max(0, (cy - reach) // stride * stride)
            ox0 = max(0, (cx - reach) // stride * stride)
            oy1, ox1 = min(h, cy1 + reach), min(w, cx1 + reach)
            out.append((((oy0, oy1), (ox0, ox1)), ((cy - oy0, cy1 - oy0), (cx - ox0, cx1 - ox0))))
    return out


def tile_boxes(shape: tuple[int, int], tile_pixels: int, model, stride: int | None):
    """:func:`tiles` for ``model``: ``(outer slices, core slices in the tile, core box in the image)``."""
    arch = model.arch
    out = []
    for ((y0, y1), (x0, x1)), core in tiles(shape, tile_pixels, stride or model.stride, arch.patch + arch.reach - 1):
        box = (y0 + core[0][0], y0 + core[0][1], x0 + core[1][0], x0 + core[1][1])
        out.append(((slice(y0, y1), slice(x0, x1)), (slice(*core[0]), slice(*core[1])), box))
    return out


def denoise_in_tiles(model, image: np.ndarray, tile_pixels: int, sigma, options: dict) -> np.ndarray:
    """Denoise ``image`` tile by tile (working memory of one tile), with one ``sigma``
    for all (:func:`denoise.pipeline.resolve_sigma`): the same pixels as whole."""
    sigma = resolve_sigma(model, image, sigma, options.get("camera", False))
    out = np.empty_like(image)
    for outer, core, (y0, y1, x0, x1) in tile_boxes(image.shape[:2], tile_pixels, model, options.get("stride")):
        out[y0:y1, x0:x1] = denoise_image(model, image[outer], sigma, **options)[core]
    return out
