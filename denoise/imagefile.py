"""Image files: read with Pillow, written with Pillow (PNG by :mod:`denoise.png`).

Arrays keep the file's own dtype (uint8, uint16 for 16-bit gray, float32 for
float TIFF); EXIF orientation is applied on reading, and EXIF, ICC profile
and DPI are carried to the output.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import deepcolour
from .imaging import split_alpha, to_float
from .png import encode_png
from .storage import atomic_write

__all__ = ["IMAGE_SUFFIXES", "read_image", "read_float", "encode_image", "write_image", "list_images",
           "image_pixels", "image_work"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP", ".bmp": "BMP"}


def read_image(path, data: bytes | None = None) -> tuple[np.ndarray, dict]:
    """Read an image file as an array in its own dtype, EXIF orientation applied.

    Returns ``(array, info)``: array is (H, W) for gray, (H, W, 2|3|4) for
    gray+alpha / RGB / RGBA, uint8 or uint16 (16-bit gray); ``info`` holds
    what :func:`write_image` carries over (``exif``, ``icc_profile``, ``dpi``)
    and ``converted`` when the mode had to change (palette images). With
    ``data``, the file's bytes are decoded instead (``path`` unused).
    """
    return _guard(lambda: _read_image(path, data))


def _guard(read):
    """Pillow's many decoding errors as one ValueError with a plain reason."""
    try:
        return read()
    except UnidentifiedImageError:
        raise ValueError("not an image file Pillow can read (unknown format or damaged header)") from None
    except Image.DecompressionBombError as e:
        raise ValueError(f"refused as a possible decompression bomb: {e}") from None
    except (OSError, SyntaxError, struct.error, zlib.error, EOFError) as e:
        if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError)) or getattr(e, "errno", None):
            raise
        raise ValueError(f"damaged or truncated image data ({e})") from None


def _open(path, data=None) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # errors above 2x the limit still stop it
        return Image.open(io.BytesIO(data) if data is not None else path)


def _header(path, data: bytes | None = None) -> tuple[int, tuple[str, ...]]:
    """(width x height, band names) from the file's header (or its ``data``), without
    decoding it (errors as :func:`read_image`)."""
    raw = data[:32] if data is not None else _head(path)
    if deepcolour.is_deep_png(raw):
        bands = {2: ("R", "G", "B"), 4: ("L", "A"), 6: ("R", "G", "B", "A")}[raw[25]]
        return int.from_bytes(raw[16:20], "big") * int.from_bytes(raw[20:24], "big"), bands
    if raw[:4] in deepcolour.TIFF_MAGIC:
        deep = _guard(lambda: deepcolour.deep_tiff_header(io.BytesIO(data) if data is not None else path))
        if deep is not None:
            return deep

    def read(im):
        with im:
            return im.size[0] * im.size[1], im.getbands()

    return _guard(lambda: read(_open(path, data)))


def image_pixels(path, data: bytes | None = None) -> int:
    """Width x height from the file's header (or its ``data``), without decoding it
    (errors as :func:`read_image`)."""
    return _header(path, data)[0]


def image_work(path, data: bytes | None = None) -> int:
    """The pixel-planes a denoiser works through for this file, from its header:
    width x height, x 3 for colour (palette images become colour; alpha costs nothing)."""
    pixels, bands = _header(path, data)
    return pixels * (1 if bands in (("L",), ("L", "A"), ("I",), ("F",), ("1",)) else 3)


#: Formats whose files may hold several frames or pages, of which we would read only the first.
_MULTI_FRAME = ("PNG", "GIF", "TIFF", "WEBP")


def _read_image(path, data):
    raw = data if data is not None else _head(path)
    if deepcolour.is_deep_png(raw):
        return _read_deep_png(path, data)  # 16-bit colour, which Pillow would decode as 8-bit
    if raw[:4] in deepcolour.TIFF_MAGIC:
        deep = deepcolour.read_tiff(path, data)
        if deep is not None:
            return deep
    with _open(path, data) as im:
        frames = getattr(im, "n_frames", 1)
        if im.format in _MULTI_FRAME and frames > 1:
            raise deepcolour.several_frames(frames)
        im.load()
        exif, read_info = im.getexif(), im.info
        im = ImageOps.exif_transpose(im)  # before the orientation leaves the EXIF block
        info = _carried(read_info, exif)
        mode = im.mode
        if mode == "P" or mode == "PA":
            im = im.convert("RGBA" if "transparency" in im.info or mode == "PA" else "RGB")
            info["converted"] = f"palette converted to {im.mode}"
        elif mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            arr = np.asarray(im).astype(np.uint16)
            return arr, info
        elif mode == "I":
            a = np.asarray(im)
            if a.min() < 0 or a.max() > 65535:
                raise ValueError(f"32-bit integer image with values outside 0..65535 ({mode}) is not supported")
            return a.astype(np.uint16), info
        elif mode == "F":
            a = np.asarray(im, dtype=np.float32)
            if not np.all(np.isfinite(a)):
                raise ValueError("float image contains NaN or Inf")
            return a, info
        elif mode not in ("L", "LA", "RGB", "RGBA"):
            raise ValueError(f"unsupported image mode {mode!r} (supported: gray, gray+alpha, RGB, RGBA, palette, 16-bit)")
        arr = np.asarray(im)
    if arr.size == 0:
        raise ValueError(f"image has no pixels (size {arr.shape[1::-1]})")
    return arr, info


def _head(path) -> bytes:
    with open(path, "rb") as f:
        return f.read(32)


def _read_deep_png(path, data) -> tuple[np.ndarray, dict]:
    """A 16-bit colour PNG: pixels by imagecodecs, metadata and orientation as Pillow reads them."""
    raw = data if data is not None else Path(path).read_bytes()
    with _open(path, data) as im:
        exif = im.getexif()
        orientation = exif.get(0x0112, 1)
        info = _carried(im.info, exif)
    return deepcolour.oriented(deepcolour.decode_png(raw), orientation), info


def _carried(im_info: dict, exif: Image.Exif) -> dict:
    """What :func:`write_image` carries over from a file's ``info`` and ``exif``: the
    ICC profile, the DPI and the EXIF block, less the orientation (applied on
    reading), which is taken out of ``exif``."""
    info = {k: im_info[k] for k in ("icc_profile", "dpi") if im_info.get(k)}
    if exif:
        exif.pop(0x0112, None)
        info["exif"] = exif.tobytes()
    return info


def _to_pil(array: np.ndarray) -> Image.Image:
    a = np.asarray(array)
    ok = (a.dtype == np.uint8 and (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (2, 3, 4)))) or (
        a.ndim == 2 and a.dtype in (np.uint16, np.float32)
    )
    if not ok:
        raise ValueError(
            f"cannot write an image of dtype {a.dtype} and shape {a.shape}: files hold uint8 gray/LA/RGB/RGBA, "
            "uint16 gray or float32 gray"
        )
    return Image.fromarray(np.ascontiguousarray(a))


def encode_image(array: np.ndarray, suffix: str, info: dict | None = None, *, jpeg_quality: int = 95) -> bytes:
    """Encode an array as image file bytes of the format named by ``suffix``."""
    fmt = _FORMATS.get(suffix.lower())
    if fmt is None:
        raise ValueError(f"unknown image format {suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    info = info or {}
    carried = {k: info[k] for k in ("exif", "icc_profile", "dpi") if info.get(k)}
    if fmt == "PNG":  # our own writer: see denoise.png
        return encode_png(array, **carried)
    a = np.asarray(array)
    if a.dtype == np.uint16 and a.ndim == 3:
        if fmt != "TIFF":
            raise ValueError(f"{fmt} holds 8 bits per channel; write 16-bit colour as PNG or TIFF")
        return deepcolour.encode_tiff(a, carried)
    im = _to_pil(a)
    kw = {k: v for k, v in carried.items() if fmt != "BMP" or k == "dpi"}  # BMP holds no EXIF or ICC profile
    if fmt == "JPEG":
        if im.mode in ("RGBA", "LA"):
            raise ValueError("JPEG cannot store an alpha channel; write PNG, TIFF or WebP")
        if im.mode not in ("L", "RGB"):
            raise ValueError(f"JPEG cannot store mode {im.mode}; write PNG or TIFF")
        kw.update(quality=jpeg_quality, subsampling=0 if jpeg_quality >= 90 else -1)
    if fmt == "WEBP":
        kw.update(quality=jpeg_quality)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def write_image(path, array: np.ndarray, info: dict | None = None, *, jpeg_quality: int = 95) -> None:
    """Write an array as an image file (format from the suffix), atomically,
    carrying EXIF, ICC profile and DPI from ``info``."""
    path = Path(path)
    atomic_write(path, encode_image(array, path.suffix, info, jpeg_quality=jpeg_quality))


def list_images(folder, *, recursive: bool = False) -> list[Path]:
    """Image files (by suffix) in ``folder``, sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_float(path) -> np.ndarray:
    """An image file as float32 (H, W, C) in [0, 1], alpha dropped (for training)."""
    arr, _ = read_image(path)
    colour, _ = split_alpha(arr)
    x = to_float(colour)
    return x if x.ndim == 3 else x[:, :, None]
