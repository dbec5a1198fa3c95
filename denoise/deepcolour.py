"""Images of 16 bits per channel with colour or alpha, which Pillow reads and
writes only as 8-bit: PNG decoded by imagecodecs, TIFF read and written by tifffile.
"""

from __future__ import annotations

import io

import numpy as np

__all__ = ["TIFF_MAGIC", "several_frames", "is_deep_png", "deep_tiff_header", "decode_png", "read_tiff", "oriented",
           "encode_tiff"]

TIFF_MAGIC = (b"II*\0", b"MM\0*")



def is_deep_png(raw: bytes) -> bool:
    """A PNG of 16 bits per channel with colour or alpha (IHDR's bit depth and colour type)."""
    return raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) >= 26 and raw[24] == 16 and raw[25] in (2, 4, 6)


def deep_tiff_header(path) -> tuple[int, tuple[str, ...]] | None:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if page.bitspersample <= 8 or page.samplesperpixel < 2:
                return None
            return page.imagewidth * page.imagelength, ("L", "A") if page.samplesperpixel == 2 else ("R", "G", "B")
    except tifffile.TiffFileError as e:
        raise ValueError(f"damaged or truncated image data ({e})") from None


def several_frames(n: int) -> ValueError:
    """The refusal of a file of ``n`` frames or pages (we would denoise only the first)."""
    return ValueError(f"the file holds {n} frames (pages); denoise reads single images: "
                      "split it into one file per frame first")


def decode_png(raw: bytes) -> np.ndarray:
    """A 16-bit colour PNG's pixels, uint16 (H, W, C)."""
    import imagecodecs

    try:
        a = imagecodecs.png_decode(raw)
    except Exception as e:  # imagecodecs' own error types
        raise ValueError(f"damaged or truncated image data ({e})") from None
    return _checked(a)


def read_tiff(path, data) -> tuple[np.ndarray, dict] | None:
    """A TIFF of more than 8 bits per sample with colour or alpha, read by tifffile
    (Pillow reads only 16-bit gray as such); None for any other TIFF."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data) if data is not None else path) as tif:
            page = tif.pages[0]
            if page.bitspersample <= 8 or page.samplesperpixel < 2:
                return None
            if len(tif.pages) > 1:
                raise several_frames(len(tif.pages))
            a = page.asarray()
            tags = page.tags
            info = {}
            if 34675 in tags:
                info["icc_profile"] = bytes(tags[34675].value)
            if 282 in tags and 283 in tags and getattr(tags.get(296), "value", 2) == 2:
                info["dpi"] = tuple(float(n) / float(d) for n, d in (tags[282].value, tags[283].value))
            orientation = int(tags[274].value) if 274 in tags else 1
    except tifffile.TiffFileError as e:
        raise ValueError(f"damaged or truncated image data ({e})") from None
    return oriented(_checked(a), orientation), info


def _checked(a: np.ndarray) -> np.ndarray:
    if a.dtype != np.uint16 or a.ndim != 3 or a.shape[2] not in (2, 3, 4):
        raise ValueError(f"unsupported deep-colour image: dtype {a.dtype}, shape {a.shape} (supported: 16-bit "
                         "gray+alpha, RGB, RGBA)")
    if a.size == 0:
        raise ValueError(f"image has no pixels (size {a.shape[1::-1]})")
    return a


#: EXIF orientation -> the numpy view that shows the picture upright (as Pillow's exif_transpose).
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def oriented(a: np.ndarray, orientation: int) -> np.ndarray:
    turn = _ORIENT.get(orientation)
    return np.ascontiguousarray(turn(a)) if turn else a


def encode_tiff(a: np.ndarray, carried: dict) -> bytes:
    """16-bit colour as an uncompressed TIFF (tifffile), with its ICC profile and DPI.
    The EXIF block is not carried: tifffile writes no EXIF directory."""
    import tifffile

    kw = {}
    if carried.get("icc_profile"):
        kw["iccprofile"] = carried["icc_profile"]
    if carried.get("dpi"):
        kw.update(resolution=tuple(float(d) for d in carried["dpi"][:2]), resolutionunit="INCH")
    buf = io.BytesIO()
    c = a.shape[2]
    photometric = "minisblack" if c == 2 else "rgb"
    extrasamples = ("unassalpha",) if c in (2, 4) else None
    tifffile.imwrite(buf, a, photometric=photometric, extrasamples=extrasamples, **kw)
    return buf.getvalue()
