"""PNG files written by us: every row Paeth-filtered by a Numba kernel, then
one deflate stream from zlib-ng (level 1, run-length strategy).

Pillow reads every image and writes every other format. Its PNG encoder
tries four filters on each row and feeds zlib row by row, which takes longer
for files of the same size (Paeth is the filter it chooses for almost every
row of a photo); zlib-ng, a maintained fork of zlib, makes the same stream
as Python's zlib in less time (``scripts/bench_png.py``). The container is
a few chunks (PNG specification, ISO/IEC 15948): ``IHDR``, then ``iCCP``,
``pHYs`` and ``eXIf`` for the metadata :func:`denoise.imagefile.write_image`
carries, written as Pillow writes them, then ``IDAT`` and ``IEND``.
"""

from __future__ import annotations

import struct

import numba
import numpy as np
from zlib_ng import zlib_ng as zlib

__all__ = ["encode_png", "COMPRESS_LEVEL", "STRATEGY"]

# Level 1 with the run-length strategy: on the Paeth residuals of photos, streams much smaller than level
# 1's default strategy and close to level 6's, at a fraction of level 6's time; drawings with repeated
# shapes (text) come out far larger than Pillow's default file (``scripts/bench_png.py``). Recompress
# with an optimiser such as oxipng where size matters.
COMPRESS_LEVEL = 1
STRATEGY = zlib.Z_RLE

_MAGIC = b"\x89PNG\r\n\x1a\n"
_IDAT_BYTES = 1 << 24  # a chunk's length field allows 2**31 - 1; stay far below it
# (dtype, channels) -> (bit depth, PNG colour type)
_TYPES = {("uint8", 1): (8, 0), ("uint8", 2): (8, 4), ("uint8", 3): (8, 2), ("uint8", 4): (8, 6),
          ("uint16", 1): (16, 0), ("uint16", 2): (16, 4), ("uint16", 3): (16, 2), ("uint16", 4): (16, 6)}


@numba.njit(cache=True, nogil=True)
def _paeth_rows(data, bpp):
    """The rows of ``data`` (rows, bytes per row), uint8, each preceded by
    filter type 4 (Paeth) and filtered with it against the row above."""
    h, n = data.shape
    out = np.empty((h, n + 1), np.uint8)
    for y in range(h):
        out[y, 0] = 4
        for i in range(n):
            left = np.int32(data[y, i - bpp]) if i >= bpp else np.int32(0)
            up = np.int32(data[y - 1, i]) if y > 0 else np.int32(0)
            corner = np.int32(data[y - 1, i - bpp]) if y > 0 and i >= bpp else np.int32(0)
            pa = abs(up - corner)
            pb = abs(left - corner)
            pc = abs(left + up - 2 * corner)
            pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
            out[y, i + 1] = np.uint8((np.int32(data[y, i]) - pred) & 255)
    return out


def _chunk(kind: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def encode_png(array: np.ndarray, *, exif: bytes | None = None, icc_profile: bytes | None = None, dpi=None) -> bytes:
    """PNG file bytes of a uint8 or uint16 (H, W) / (H, W, 2|3|4) array
    (gray, gray+alpha, RGB, RGBA, at 8 or 16 bits), with optional EXIF bytes
    (with or without the ``Exif\\0\\0`` header), ICC profile and (x, y) DPI.

    >>> data = encode_png(np.zeros((2, 3), np.uint8), dpi=(300, 300))
    >>> data[:8] == _MAGIC, data[12:16]
    (True, b'IHDR')
    """
    a = np.asarray(array)
    channels = 1 if a.ndim == 2 else (a.shape[2] if a.ndim == 3 else 0)
    kind = _TYPES.get((a.dtype.name, channels))
    if kind is None or min(a.shape[:2], default=0) < 1:
        raise ValueError(
            f"PNG cannot store an image of dtype {a.dtype} and shape {a.shape}: it holds uint8 or uint16 gray, "
            "gray+alpha, RGB or RGBA (write float images as TIFF)"
        )
    h, w = a.shape[:2]
    depth, colour_type = kind
    if depth == 16:
        a = a.astype(">u2")
    bpp = channels * depth // 8
    rows = np.ascontiguousarray(a).view(np.uint8).reshape(h, w * bpp)
    z = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 15, 9, STRATEGY)
    stream = z.compress(_paeth_rows(rows, bpp)) + z.flush()
    parts = [_MAGIC, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0))]
    if icc_profile:
        parts.append(_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc_profile)))
    if dpi:
        parts.append(_chunk(b"pHYs", struct.pack(">IIB", int(dpi[0] / 0.0254 + 0.5), int(dpi[1] / 0.0254 + 0.5), 1)))
    if exif:
        parts.append(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    view = memoryview(stream)
    parts += [_chunk(b"IDAT", view[i : i + _IDAT_BYTES]) for i in range(0, max(len(stream), 1), _IDAT_BYTES)]
    parts.append(_chunk(b"IEND"))
    return b"".join(parts)
