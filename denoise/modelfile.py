"""Model files: ``.npz`` weights plus one JSON metadata string.

Model files hold the weights as arrays and one JSON string, ``meta``, with
the format version, the architecture, default stride, noise model,
normalisation and provenance. They are read with ``allow_pickle=False``, so
nothing in a model file can run code.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

from .architecture import Architecture
from .model import Autoencoder
from .patches import window1d
from .pipeline import check_stride
from .storage import atomic_write

__all__ = ["FORMAT_VERSION", "ModelFileError", "save_model", "model_bytes", "load_model", "read_model_file", "model_path",
           "list_models", "model_card"]

FORMAT_VERSION = 1
_MODELS = "denoise.models"


class ModelFileError(ValueError):
    """A model file that is damaged, foreign or from a newer version."""


def _pack(weights: dict, meta: dict, extra: dict | None, half: bool) -> bytes:
    arrays = {k: (v.astype(np.float16) if half else v.astype(np.float32)) for k, v in weights.items()}
    for k, v in (extra or {}).items():
        arrays[k] = np.asarray(v)
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def save_model(model: Autoencoder, path, *, half: bool = False, extra: dict | None = None) -> None:
    """Save ``model`` to ``path`` (``.npz``), atomically.

    ``half`` stores the weights as float16 (half the size; loaded back as
    float32). ``extra`` arrays (e.g. optimiser state in a checkpoint) are
    stored under their own keys, which must start with ``"state."``.
    """
    atomic_write(path, model_bytes(model, half=half, extra=extra))


def model_bytes(model: Autoencoder, *, half: bool = False, extra: dict | None = None) -> bytes:
    """The bytes of ``model``'s file, as :func:`save_model` writes them."""
    if extra and any(not k.startswith("state.") for k in extra):
        raise ValueError("extra arrays must be named 'state.*'")
    meta = dict(model.meta)
    meta.update(format=FORMAT_VERSION, architecture=model.arch.to_dict())
    return _pack(model.get_weights(), meta, extra, half)


def _shipped(name: str) -> Path | None:
    p = resources.files(_MODELS).joinpath(f"{name}.npz")
    return Path(str(p)) if p.is_file() else None


def list_models() -> list[str]:
    """Names of the models shipped with the package (``"default"`` among them)."""
    return sorted(Path(str(f.name)).stem for f in resources.files(_MODELS).iterdir() if f.name.endswith(".npz"))


def model_card() -> str:
    """The shipped models' model card (Markdown)."""
    return resources.files(_MODELS).joinpath("MODELS.md").read_text(encoding="utf-8")


#: Bounds on the parts of a model file read before the architecture is known.
MAX_META_BYTES = 16 << 20  # a checkpoint's history grows by one row an epoch
MAX_STATE_BYTES = 1 << 20  # a checkpoint's step count and random state (its optimiser state is per weight)
_NPY_HEADER = 4096  # room for an .npy file's header beside its data


def read_model_file(path, data: bytes | None = None) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(meta, weights, state)`` from a model file (or its ``data`` bytes,
    ``path`` then only names it in errors); raises :class:`ModelFileError`.

    Nothing is inflated before it is known to fit: the metadata first (at
    most :data:`MAX_META_BYTES`), then each array's declared size and header
    against the shapes its architecture implies."""
    path = Path(path)
    try:
        with zipfile.ZipFile(io.BytesIO(data) if data is not None else path) as z:
            members = {info.filename: info for info in z.infolist()}
            meta = _read_meta(z, members, path)
            arch = _architecture(meta, path)
            arrays = {name[:-4]: _read_member(z, info, _allowed(name[:-4], arch), path)
                      for name, info in members.items() if name != "meta.npy"}
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except IsADirectoryError:
        raise _fail(path, "is a directory") from None
    except zipfile.BadZipFile:
        raise _fail(path, "not a denoise model file (not an .npz archive)") from None
    except (EOFError, OSError, zlib.error) as e:
        raise _fail(path, f"damaged archive ({e})") from None
    state = {k: v for k, v in arrays.items() if k.startswith("state.")}
    weights = {k: v for k, v in arrays.items() if not k.startswith("state.")}
    return meta, weights, state


def _fail(path: Path, why: str) -> ModelFileError:
    return ModelFileError(f"model file {path}: {why}")


def _read_meta(z: zipfile.ZipFile, members: dict, path: Path) -> dict:
    info = members.get("meta.npy")
    if info is None:
        raise _fail(path, "no 'meta' entry; this is not a denoise model file")
    raw = _read_member(z, info, (MAX_META_BYTES, None, "U"), path)
    try:
        meta = json.loads(str(raw[()]))
    except (json.JSONDecodeError, TypeError, ValueError, IndexError) as e:
        raise _fail(path, f"metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise _fail(path, "metadata is not a JSON object")
    version = meta.get("format")
    if not isinstance(version, int):
        raise _fail(path, "metadata has no format version")
    if version > FORMAT_VERSION:
        raise _fail(path, f"format version {version} is newer than this denoise supports ({FORMAT_VERSION}); upgrade denoise")
    return meta


def _architecture(meta: dict, path: Path) -> Architecture:
    d = meta.get("architecture") or {}
    try:
        if not isinstance(d, dict):
            raise TypeError(f"architecture must be a JSON object; got {type(d).__name__}")
        return Architecture.from_dict(d)
    except (TypeError, ValueError) as e:
        raise _fail(path, f"bad architecture: {e}") from None


def _allowed(name: str, arch: Architecture) -> tuple[int, tuple | None, str]:
    """(most bytes, shape or None for any, dtype kinds) an array of this name may have."""
    shapes = arch.parameter_shapes()
    if name in shapes:
        return 4 * math.prod(shapes[name]), shapes[name], "f"
    if name.startswith("state."):  # optimiser state (per weight, float32), step count, random state (text)
        for weight, shape in shapes.items():
            if name.endswith("." + weight):
                return 4 * math.prod(shape), shape, "f"
        return MAX_STATE_BYTES, None, "fiuU"
    raise ModelFileError(f"unexpected array {name!r}; the architecture has {', '.join(shapes)}")


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, allowed: tuple, path: Path) -> np.ndarray:
    """One ``.npy`` member, refused by its declared size and header before its data is inflated."""
    most, shape, kinds = allowed
    name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
    try:
        if info.file_size > most + _NPY_HEADER:
            raise ValueError(f"declares {info.file_size:,} bytes; at most {most:,} fit")
        with z.open(info) as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read_header:
                raise ValueError(f"unsupported .npy version {version}")
            got, fortran, dtype = read_header[version](f, max_header_size=_NPY_HEADER)
            if dtype.hasobject or dtype.kind not in kinds:
                raise ValueError(f"has dtype {dtype}; expected {'floating point' if kinds == 'f' else 'numbers or text'}")
            if shape is not None and tuple(got) != tuple(shape):
                raise ValueError(f"has shape {tuple(got)}; the architecture needs {tuple(shape)}")
            if math.prod(got) * dtype.itemsize > most:
                raise ValueError(f"declares shape {tuple(got)}, more than {most:,} bytes")
            count = math.prod(got)
            buf = f.read(count * dtype.itemsize)
            if len(buf) != count * dtype.itemsize:
                raise ValueError("is cut short")
            return np.frombuffer(buf, dtype).reshape(got, order="F" if fortran else "C").copy()
    except ModelFileError as e:
        raise _fail(path, str(e)) from None
    except (ValueError, TypeError) as e:
        raise _fail(path, f"array {name!r} {e}") from None


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
    path = Path(str(name_or_path)) if data is not None else model_path(name_or_path)
    meta, weights, _ = read_model_file(path, data)
    arch = _architecture(meta, path)  # checked by read_model_file already: this cannot fail
    try:
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
