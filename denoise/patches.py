"""Overlapping patches on a global grid: extract rows, stitch them back.

Patch positions are the multiples of ``stride`` (from the image origin) of
every ``size`` x ``size`` window that overlaps the image, so each pixel is
covered by the same number of patches, edges included, and a tile whose
origin is a multiple of ``stride`` sees the same grid as the whole image.
Pixels outside the image are reflect-padded. A patch may carry ``context``
extra pixels on each side (the model's input is larger than its output).

Every function here takes and returns numpy arrays. All but one are numpy
operations; the overlap-add is a small Numba kernel (see :func:`overlap_add`).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from .imaging import as_hwc

__all__ = ["Grid", "grid", "check_grid", "extract", "extract_padded", "accumulator", "crop", "stitch", "window", "window1d", "weight_sum", "overlap_add", "pad", "DIHEDRAL", "dihedral"]


class Grid(NamedTuple):
    """Where the patches of one image lie.

    ``start`` is the (negative or zero) coordinate of the first patch on each
    axis, ``count`` how many patches there are along each axis.
    """

    size: int
    stride: int
    start: tuple[int, int]
    count: tuple[int, int]

    @property
    def n_patches(self) -> int:
        return self.count[0] * self.count[1]


def check_grid(size: int, stride: int, context: int = 0) -> None:
    """Raise ValueError unless ``size``, ``stride`` and ``context`` describe a patch grid."""
    if not (isinstance(size, (int, np.integer)) and size >= 1):
        raise ValueError(f"patch size must be a positive integer; got {size!r}")
    if not (isinstance(stride, (int, np.integer)) and 1 <= stride <= size):
        raise ValueError(f"stride must be an integer from 1 to the patch size {size}; got {stride!r}")
    if not (isinstance(context, (int, np.integer)) and context >= 0):
        raise ValueError(f"context must be a non-negative integer; got {context!r}")


def grid(shape: tuple[int, ...], size: int, stride: int) -> Grid:
    """The global patch grid of an image of ``shape`` (H, W[, C])."""
    check_grid(size, stride)
    h, w = shape[:2]
    if h < 1 or w < 1:
        raise ValueError(f"image must be at least 1x1; got shape {tuple(shape)}")
    # first multiple of stride whose patch still overlaps pixel 0: k*stride > -size
    k0 = -((size - 1) // stride)
    start = k0 * stride
    counts = tuple((n - 1 - start) // stride + 1 for n in (h, w))
    return Grid(size, stride, (start, start), counts)


def pad(image: np.ndarray, g: Grid, context: int = 0) -> np.ndarray:
    """Reflect-pad an (H, W, C) image so that every patch of ``g`` (plus
    ``context``) lies inside. Pixel (0, 0) of the image lands at
    (context - g.start[0], context - g.start[1]) of the result."""
    h, w = image.shape[:2]
    before = context - g.start[0]
    after_h = (g.start[0] + (g.count[0] - 1) * g.stride + g.size + context) - h
    after_w = (g.start[1] + (g.count[1] - 1) * g.stride + g.size + context) - w
    widths = ((before, max(after_h, 0)), (before, max(after_w, 0)), (0, 0))
    return np.pad(image, widths, mode="symmetric" if min(h, w) == 1 else "reflect")


def extract(
    image: np.ndarray,
    size: int,
    stride: int,
    *,
    context: int = 0,
    rows: slice | None = None,
) -> np.ndarray:
    """Patches of ``image`` as rows of length ``(size + 2*context)**2 * C``.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C)
    size, stride : int
        Patch size and grid step, ``1 <= stride <= size``.
    context : int, optional
        Extra pixels on each side of every patch.
    rows : slice, optional
        Only these rows of the patch grid (to bound memory).

    Returns
    -------
    ndarray, shape (N, (size + 2*context)**2 * C), the image's dtype
        Row ``i * count[1] + j`` is the patch at grid position (i, j), in
        (y, x, channel) order.

    Examples
    --------
    >>> img = np.arange(12.0).reshape(3, 4)
    >>> extract(img, 2, 2).shape
    (4, 4)
    """
    check_grid(size, stride, context)
    img = as_hwc(image)
    g = grid(img.shape, size, stride)
    return extract_padded(pad(img, g, context), g, context, rows)


def extract_padded(padded: np.ndarray, g: Grid, context: int, rows: slice | None) -> np.ndarray:
    """Rows from an image already padded by :func:`pad`."""
    r0, r1, _ = (rows or slice(None)).indices(g.count[0])
    r1 = max(r1, r0)
    full = g.size + 2 * context
    s = g.stride
    band = padded[r0 * s : (r1 - 1) * s + full] if r1 > r0 else padded[:0]
    win = np.lib.stride_tricks.sliding_window_view(band, (full, full), axis=(0, 1))
    win = win[::s, ::s][: r1 - r0, : g.count[1]]  # (ny, nx, C, full, full)
    c = padded.shape[2]
    return np.ascontiguousarray(win.transpose(0, 1, 3, 4, 2)).reshape(-1, full * full * c)


#: The 8 rotations and reflections of a square, as (quarter turns, transpose
#: after turning). Ordered so that the first 1, 2 and 4 of them are subgroups:
#: identity; + transpose; + the half turn and the anti-transpose.
DIHEDRAL = ((0, False), (0, True), (2, False), (2, True), (1, False), (1, True), (3, False), (3, True))


def dihedral(blocks: np.ndarray, t: int, *, inverse: bool = False) -> np.ndarray:
    """Element ``t`` of :data:`DIHEDRAL` (or its inverse) applied to square
    blocks of shape (N, S, S, C). Returns a view where numpy can."""
    turns, transpose = DIHEDRAL[t]
    if inverse:
        if transpose:
            blocks = blocks.transpose(0, 2, 1, 3)
        return np.rot90(blocks, -turns, axes=(1, 2))
    blocks = np.rot90(blocks, turns, axes=(1, 2))
    return blocks.transpose(0, 2, 1, 3) if transpose else blocks


def window1d(size: int, kind: str = "flat") -> np.ndarray:
    """One axis of a stitching window: ``"flat"`` (ones) or ``"gaussian"``
    (sigma = size / 4, peak 1, never zero at the border)."""
    if kind == "flat":
        return np.ones(size, np.float32)
    if kind == "gaussian":
        r = np.arange(size, dtype=np.float64) - (size - 1) / 2
        return np.exp(-0.5 * (r / (size / 4)) ** 2).astype(np.float32)
    raise ValueError(f"window must be 'flat' or 'gaussian'; got {kind!r}")


def window(size: int, kind: str = "flat") -> np.ndarray:
    """Stitching weights of one patch, the outer product of :func:`window1d`."""
    w = window1d(size, kind)
    return np.outer(w, w)


def weight_sum(shape: tuple[int, ...], g: Grid, kind: str = "flat") -> np.ndarray:
    """Total window weight at each pixel of an (H, W) image from all patches of ``g``.

    The windows are separable, so this is an outer product of two 1-D sums."""
    return np.outer(*_axis_sums(shape, g, kind))


def _axis_sums(shape: tuple[int, ...], g: Grid, kind: str) -> list[np.ndarray]:
    """The 1-D window sums along the rows and the columns of an image of ``shape``."""
    w1 = window1d(g.size, kind)
    sums = []
    for axis in (0, 1):
        acc = np.zeros((g.count[axis] - 1) * g.stride + g.size + shape[axis], np.float32)
        for k in range(g.count[axis]):
            acc[k * g.stride : k * g.stride + g.size] += w1
        sums.append(acc[-g.start[axis] : -g.start[axis] + shape[axis]])
    return sums


def overlap_add(
    acc: np.ndarray,
    patches: np.ndarray,
    g: Grid,
    first_row: int,
    weights: np.ndarray,
) -> None:
    """Add weighted ``patches`` (N, size*size*C) of grid rows starting at
    ``first_row`` into ``acc`` (padded (H', W', C), pixel (0, 0) of the image at
    (-g.start[0], -g.start[1])). In place.

    A compiled loop that adds each patch row as one contiguous run of
    ``size * C`` values, which the compiler vectorises, where numpy operations
    would stride over the whole accumulator once per pixel of a patch (what it
    saves: ``scripts/bench_speed.py --section kernels``).
    """
    p, s, c = g.size, g.stride, acc.shape[2]
    nx = g.count[1]
    ny = patches.shape[0] // nx
    if patches.shape != (ny * nx, p * p * c) or weights.shape != (p, p):
        raise ValueError(f"patches {patches.shape} and weights {weights.shape} do not fit a grid of {nx} patches "
                         f"per row of {p}x{p}x{c}")
    y0 = first_row * s
    if ny and (y0 < 0 or y0 + (ny - 1) * s + p > acc.shape[0] or (nx - 1) * s + p > acc.shape[1]):
        raise ValueError(f"grid rows {first_row}..{first_row + ny - 1} do not fit an accumulator of shape {acc.shape}")
    if acc.dtype != np.float32 or not acc.flags.c_contiguous:
        raise ValueError(f"the accumulator must be a C-contiguous float32 array, as accumulator() makes; got {acc.dtype}, "
                         f"{'' if acc.flags.c_contiguous else 'not '}contiguous")
    rows = acc.reshape(acc.shape[0], -1)  # a view: (H', W' * C), each pixel's channels side by side
    weights = np.repeat(np.asarray(weights, np.float32), c, axis=1)  # (p, p * C), as a patch row's values
    _overlap_add(rows, patches.reshape(ny, nx, p, p * c), s, s * c, y0, weights)


@numba.njit(cache=True, nogil=True)
def _overlap_add(rows, blocks, stride, step, y0, weights):  # shapes checked by overlap_add: Numba does not bound-check
    ny, nx, p, run = blocks.shape
    for i in range(ny):
        for dy in range(p):
            row = rows[y0 + i * stride + dy]
            w = weights[dy]
            for j in range(nx):
                x0 = j * step
                b = blocks[i, j, dy]
                for v in range(run):
                    row[x0 + v] += b[v] * w[v]


def stitch(
    patches: np.ndarray,
    shape: tuple[int, ...],
    size: int,
    stride: int,
    *,
    window_kind: str = "flat",
) -> np.ndarray:
    """Average overlapping patch rows back into an image of ``shape``.

    The inverse of :func:`extract` (with ``context=0``): ``stitch(extract(x,
    p, s), x.shape, p, s)`` returns ``x`` to float tolerance.

    Returns a float32 array of ``shape``.
    """
    check_grid(size, stride)
    shape = tuple(shape)
    hwc = shape if len(shape) == 3 else (*shape, 1)
    g = grid(hwc, size, stride)
    expected = (g.n_patches, size * size * hwc[2])
    if patches.shape != expected:
        raise ValueError(
            f"patches have shape {patches.shape}; an image of shape {shape} with "
            f"size={size}, stride={stride} needs {expected}"
        )
    acc = accumulator(hwc, g)
    overlap_add(acc, patches.astype(np.float32, copy=False), g, 0, window(size, window_kind))
    return crop(acc, hwc, g, window_kind).reshape(shape)


def accumulator(shape: tuple[int, int, int], g: Grid) -> np.ndarray:
    """A zeroed float32 buffer that every patch of ``g`` fits in (see :func:`overlap_add`)."""
    span = [max((g.count[i] - 1) * g.stride + g.size, shape[i] - g.start[i]) for i in (0, 1)]
    return np.zeros((span[0], span[1], shape[2]), np.float32)


def crop(acc: np.ndarray, shape: tuple[int, int, int], g: Grid, kind: str) -> np.ndarray:
    """The image from an accumulator: crop to ``shape`` and divide by the weight sum."""
    y0, x0 = -g.start[0], -g.start[1]
    if shape[0] + y0 > acc.shape[0] or shape[1] + x0 > acc.shape[1] or acc.shape[2] != shape[2]:
        raise ValueError(f"an image of shape {tuple(shape)} does not fit an accumulator of shape {acc.shape}")
    return acc[y0 : y0 + shape[0], x0 : x0 + shape[1]] / weight_sum(shape, g, kind)[:, :, None]
