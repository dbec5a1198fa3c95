"""What a patch model reads: its input rows, from an image or from training footprints.

A row is ``[input patch | each surround scale's blocks | the neighbours' mean
window]``, each part in (y, x, channel) order; the parts after the patch are
there only where the architecture asks for them (:mod:`denoise.surround`,
:mod:`denoise.matching`). Every part depends only on pixels within
:attr:`Architecture.reach` of the output patch, so tiles with that margin give
the pixels of the whole image.
"""

from __future__ import annotations

import numpy as np

from . import patches as P
from .architecture import Architecture
from .matching import neighbour_means
from .surround import blocks, box_means

__all__ = ["prepare", "input_rows", "footprint_rows", "turn_rows"]


def prepare(arch: Architecture, padded: np.ndarray) -> list[np.ndarray]:
    """What :func:`input_rows` reuses over an image's bands: each surround scale's box means."""
    return [box_means(padded, s) for s in arch.surround]


def input_rows(arch: Architecture, padded: np.ndarray, means: list[np.ndarray], g: P.Grid, rows: slice | None) -> np.ndarray:
    """The model's input rows for patch-grid ``rows`` of an image padded by :func:`denoise.patches.pad`
    with ``arch.reach``; ``means`` is :func:`prepare`'s."""
    r = arch.reach
    fine = P.extract_padded(padded[r - arch.context :, r - arch.context :], g, arch.context, rows)
    if not (arch.surround or arch.neighbours):
        return fine
    r0, r1, _ = (rows or slice(None)).indices(g.count[0])
    ny, nx, s = max(r1 - r0, 0), g.count[1], g.stride
    parts = [fine]
    parts += [blocks(arch, m, scale, (r + r0 * s, r), ny, nx, s) for scale, m in zip(arch.surround, means)]
    if arch.neighbours:
        ys, xs = np.meshgrid(r + (r0 + np.arange(ny)) * s, r + np.arange(nx) * s, indexing="ij")
        parts.append(neighbour_means(arch, padded[None], np.zeros(ys.size, np.intp), ys.ravel(), xs.ravel()))
    return np.concatenate(parts, axis=1)


def footprint_rows(arch: Architecture, footprints: np.ndarray) -> np.ndarray:
    """Input rows of training patches from their footprints (n, extent, extent, C), the square of
    pixels each patch's input depends on (its output patch at ``reach`` from the top left)."""
    n, e, _, c = footprints.shape
    r, k, p = arch.reach, arch.context, arch.in_patch
    parts = [footprints[:, r - k : r - k + p, r - k : r - k + p].reshape(n, -1)]
    g = arch.surround_grid
    for scale in arch.surround:
        o = r + arch.surround_offset(scale)
        means = box_means(footprints, scale)
        parts.append(means[:, o : o + g * scale : scale, o : o + g * scale : scale].reshape(n, -1))
    if arch.neighbours:
        at = np.full(n, r, np.intp)
        parts.append(neighbour_means(arch, footprints, np.arange(n), at, at))
    return np.concatenate(parts, axis=1) if len(parts) > 1 else np.ascontiguousarray(parts[0])


def turn_rows(arch: Architecture, rows: np.ndarray, t: int) -> np.ndarray:
    """Input rows of the patches turned or flipped by element ``t`` of :data:`denoise.patches.DIHEDRAL`:
    every part about the patch's centre, which all share."""
    n, c = rows.shape[0], arch.channels
    sides = [arch.in_patch] + [arch.surround_grid] * len(arch.surround) + [arch.in_patch] * bool(arch.neighbours)
    out, at = [], 0
    for side in sides:
        part = rows[:, at : at + side * side * c].reshape(n, side, side, c)
        out.append(np.ascontiguousarray(P.dihedral(part, t)).reshape(n, -1))
        at += side * side * c
    return np.concatenate(out, axis=1) if len(out) > 1 else out[0]
