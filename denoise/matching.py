"""Non-local grouping for patch models: the mean of each patch's most similar neighbours.

For a model whose architecture has ``neighbours=k``, each output patch is
compared (sum of squared differences over the patch, all channels) with the
patches at every offset of a square search window (``search`` pixels each
way, offsets on a ``search_step`` lattice, the patch itself left out); the
input windows of the ``k`` closest are averaged and the mean joins the
model's input row. It gives the model what BM3D's grouping exploits, repeated
structure elsewhere in the image, at the cost of one input window.

The search is a small Numba kernel (one thread, no bounds checks: callers
pass origins whose whole search lies in the image).
"""

from __future__ import annotations

import numba
import numpy as np

from .architecture import Architecture

__all__ = ["neighbour_means"]


def neighbour_means(arch: Architecture, images: np.ndarray, which: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The mean input window (N, in_patch * in_patch * C) of the ``arch.neighbours`` patches most like
    each output patch ``j``, which starts at ``(ys[j], xs[j])`` of image ``which[j]`` of ``images``
    (n, H, W, C): float32 rows in (y, x, channel) order, like the patch's own."""
    n, h, w, c = images.shape
    which, ys, xs = (np.ascontiguousarray(a, np.intp) for a in (which, ys, xs))
    reach = arch.context + arch.search_radius * arch.search_step  # what the search and the windows read
    if len(ys) and (ys.min() < reach or xs.min() < reach or ys.max() + arch.patch + reach > h
                    or xs.max() + arch.patch + reach > w or which.min() < 0 or which.max() >= n):
        raise ValueError("a patch's search window leaves its image")
    out = np.empty((len(ys), arch.in_patch * arch.in_patch * c), np.float32)
    _means(np.ascontiguousarray(images, np.float32), which, ys, xs, arch.patch, arch.context,
           arch.search_radius, arch.search_step, arch.neighbours, out)
    return out


@numba.njit(nogil=True, cache=True)
def _means(images, which, ys, xs, patch, context, radius, step, k, out):
    """:func:`neighbour_means` on ``images`` (n, H, W, C), each image row read as W * C adjacent values."""
    c = images.shape[3]
    flat = images.reshape(images.shape[0], images.shape[1], images.shape[2] * c)
    side = patch + 2 * context
    width = patch * c  # values of one row of a patch
    best_d = np.empty(k)
    best_y = np.empty(k, np.intp)
    best_x = np.empty(k, np.intp)
    for j in range(ys.shape[0]):
        im, y0, x0 = which[j], ys[j], xs[j]
        plane = flat[im]
        best_d[:] = np.inf
        for oy in range(-radius, radius + 1):
            for ox in range(-radius, radius + 1):
                if oy == 0 and ox == 0:
                    continue
                dy, dx = oy * step, ox * step
                d = np.float32(0.0)
                for a in range(patch):
                    ref = plane[y0 + a, x0 * c : x0 * c + width]
                    cand = plane[y0 + dy + a, (x0 + dx) * c : (x0 + dx) * c + width]
                    for v in range(width):
                        t = ref[v] - cand[v]
                        d += t * t
                if d < best_d[k - 1]:  # insert into the sorted list of the k best so far
                    i = k - 1
                    while i > 0 and best_d[i - 1] > d:
                        best_d[i], best_y[i], best_x[i] = best_d[i - 1], best_y[i - 1], best_x[i - 1]
                        i -= 1
                    best_d[i], best_y[i], best_x[i] = d, dy, dx
        row = out[j]
        row[:] = 0.0
        for i in range(k):
            y1, x1 = y0 + best_y[i] - context, (x0 + best_x[i] - context) * c
            for a in range(side):
                src = plane[y1 + a, x1 : x1 + side * c]
                dst = row[a * side * c : (a + 1) * side * c]
                for v in range(side * c):
                    dst[v] += src[v]
        scale = np.float32(1.0 / k)
        for v in range(row.shape[0]):
            row[v] *= scale
