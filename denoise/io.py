"""Image files (Pillow; PNG written by :mod:`denoise.png`) and model files (``.npz`` + JSON metadata).

Model files hold the weights as arrays and one JSON string, ``meta``, with
the format version, the architecture, default stride, noise model,
normalisation and provenance. They are read with ``allow_pickle=False``, so
nothing in a model file can run code.
"""

from __future__ import annotations

import io as _io
import json
import os
import struct
import tempfile
import warnings
import zipfile
import zlib
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .model import Architecture, Autoencoder
from .png import encode_png

__all__ = [
    "FORMAT_VERSION",
    "ModelFileError",
    "save_model",
    "load_model",
    "list_models",
    "model_card",
    "read_image",
    "write_image",
    "atomic_write",
    "IMAGE_SUFFIXES",
    "list_images",
    "image_pixels",
    "image_work",
    "read_float",
]

FORMAT_VERSION = 1
_UMASK = os.umask(0)
os.umask(_UMASK)
_MODELS = "denoise.models"

# --------------------------------------------------------------------------
# model files


class ModelFileError(ValueError):
    """A model file that is damaged, foreign or from a newer version."""


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder,
    renamed into place only when complete."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _pack(weights: dict, meta: dict, extra: dict | None, half: bool) -> bytes:
    arrays = {k: (v.astype(np.float16) if half else v.astype(np.float32)) for k, v in weights.items()}
    for k, v in (extra or {}).items():
        arrays[k] = np.asarray(v)
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    buf = _io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def save_model(model: Autoencoder, path, *, half: bool = False, extra: dict | None = None) -> None:
    """Save ``model`` to ``path`` (``.npz``), atomically.

    ``half`` stores the weights as float16 (half the size; loaded back as
    float32). ``extra`` arrays (e.g. optimiser state in a checkpoint) are
    stored under their own keys, which must start with ``"state."``.
    """
    if extra and any(not k.startswith("state.") for k in extra):
        raise ValueError("extra arrays must be named 'state.*'")
    meta = dict(model.meta)
    meta.update(format=FORMAT_VERSION, architecture=model.arch.to_dict())
    atomic_write(path, _pack(model.get_weights(), meta, extra, half))


def _shipped(name: str) -> Path | None:
    p = resources.files(_MODELS).joinpath(f"{name}.npz")
    return Path(str(p)) if p.is_file() else None


def list_models() -> list[str]:
    """Names of the models shipped with the package (``"default"`` among them)."""
    return sorted(Path(str(f.name)).stem for f in resources.files(_MODELS).iterdir() if f.name.endswith(".npz"))


def model_card() -> str:
    """The shipped models' model card (Markdown)."""
    return resources.files(_MODELS).joinpath("MODELS.md").read_text(encoding="utf-8")


def read_model_file(path, data: bytes | None = None) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(meta, weights, state)`` from a model file (or its ``data`` bytes,
    ``path`` then only names it in errors); raises :class:`ModelFileError`."""
    path = Path(path)

    def fail(why):
        return ModelFileError(f"model file {path}: {why}")

    try:
        with np.load(_io.BytesIO(data) if data is not None else path, allow_pickle=False) as z:
            names = list(z.files)
            if "meta" not in names:
                raise fail("no 'meta' entry; this is not a denoise model file")
            arrays = {k: z[k] for k in names}
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("is a directory") from None
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise fail(f"damaged or not an .npz archive ({e})") from None
    except ValueError as e:  # object arrays refused by allow_pickle=False, bad headers
        raise fail(f"refused: {e}") from None
    try:
        meta = json.loads(str(arrays.pop("meta")[()]))
    except (json.JSONDecodeError, TypeError, ValueError, IndexError) as e:
        raise fail(f"metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise fail("metadata is not a JSON object")
    version = meta.get("format")
    if not isinstance(version, int):
        raise fail("metadata has no format version")
    if version > FORMAT_VERSION:
        raise fail(f"format version {version} is newer than this denoise supports ({FORMAT_VERSION}); upgrade denoise")
    state = {k: v for k, v in arrays.items() if k.startswith("state.")}
    weights = {k: v for k, v in arrays.items() if not k.startswith("state.")}
    for k, v in weights.items():
        if v.dtype.kind != "f":
            raise fail(f"weight {k} has dtype {v.dtype}; expected floating point")
    return meta, weights, state


def model_path(name_or_path) -> Path:
    """The file behind a shipped model name or a path."""
    s = str(name_or_path)
    if "/" not in s and not s.endswith(".npz"):
        shipped = _shipped(s)
        if shipped is not None:
            return shipped
        if not Path(s).exists():
            raise ValueError(f"no shipped model named {s!r}; shipped models: {', '.join(list_models())}, or give a path")
    return Path(s)


def load_model(name_or_path="default", *, backend: str = "numba", data: bytes | None = None) -> Autoencoder:
    """Load a shipped model by name (see :func:`list_models`) or a model file by
    path (or from the file's ``data`` bytes, ``name_or_path`` naming it).

    Raises
    ------
    ModelFileError
        A damaged, foreign or too-new file, in one line naming the file.
    ValueError
        An unknown model name.
    """
    from .patches import window1d
    from .pipeline import check_stride

    path = Path(str(name_or_path)) if data is not None else model_path(name_or_path)
    meta, weights, _ = read_model_file(path, data)
    try:
        arch = Architecture.from_dict(meta.get("architecture") or {})
        model = Autoencoder(arch, weights=weights, backend=backend, meta=_public_meta(meta))
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"model file {path}: {e}") from None
    try:  # the defaults it stores for denoising, checked here once, not by every image that uses them
        if "stride" in model.meta:
            check_stride(model, model.meta["stride"])
        window1d(1, model.meta.get("window", "flat"))
    except ValueError as e:
        raise ModelFileError(f"model file {path}: its default {e}") from None
    return model


def _public_meta(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k not in ("format", "architecture")}


# --------------------------------------------------------------------------
# image files

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
        return Image.open(_io.BytesIO(data) if data is not None else path)


def _header(path) -> tuple[int, tuple[str, ...]]:
    """(width x height, band names) from the file's header, without decoding it (errors as :func:`read_image`)."""

    def read(im):
        with im:
            return im.size[0] * im.size[1], im.getbands()

    return _guard(lambda: read(_open(path)))


def image_pixels(path) -> int:
    """Width x height from the file's header, without decoding it (errors as :func:`read_image`)."""
    return _header(path)[0]


def image_work(path) -> int:
    """The pixel-planes a denoiser works through for this file, from its header:
    width x height, x 3 for colour (palette images become colour; alpha costs nothing)."""
    pixels, bands = _header(path)
    return pixels * (1 if bands in (("L",), ("L", "A"), ("I",), ("F",), ("1",)) else 3)


def _read_image(path, data):
    with _open(path, data) as im:
        im.load()
        info = {k: im.info[k] for k in ("icc_profile", "dpi") if im.info.get(k)}
        exif = im.getexif()
        im = ImageOps.exif_transpose(im)
        if exif:
            exif.pop(0x0112, None)  # orientation now applied
            info["exif"] = exif.tobytes()
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
            raise ValueError(f"unsupported image mode {mode!r} (supported: gray, gray+alpha, RGB, RGBA, palette, 16-bit gray)")
        arr = np.asarray(im)
    if arr.size == 0:
        raise ValueError(f"image has no pixels (size {arr.shape[1::-1]})")
    return arr, info


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
    im = _to_pil(array)
    kw = {k: v for k, v in carried.items() if fmt != "BMP" or k == "dpi"}  # BMP holds no EXIF or ICC profile
    if fmt == "JPEG":
        if im.mode in ("RGBA", "LA"):
            raise ValueError("JPEG cannot store an alpha channel; write PNG, TIFF or WebP")
        if im.mode not in ("L", "RGB"):
            raise ValueError(f"JPEG cannot store mode {im.mode}; write PNG or TIFF")
        kw.update(quality=jpeg_quality, subsampling=0 if jpeg_quality >= 90 else -1)
    if fmt == "WEBP":
        kw.update(quality=jpeg_quality)
    buf = _io.BytesIO()
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
    from .pipeline import split_alpha, to_float

    arr, _ = read_image(path)
    colour, _ = split_alpha(arr)
    x = to_float(colour)
    return x if x.ndim == 3 else x[:, :, None]
