"""Model files: ``.npz`` weights plus one JSON metadata string.

Model files hold the weights as arrays and one JSON string, ``meta``, with
the format version, the architecture, default stride, noise model,
normalisation and provenance. They are read with ``allow_pickle=False``, so
nothing in a model file can run code.
"""

from __future__ import annotations

import io
import json
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np

from .model import Architecture, Autoencoder
from .patches import window1d
from .pipeline import check_stride
from .storage import atomic_write

__all__ = ["FORMAT_VERSION", "ModelFileError", "save_model", "load_model", "read_model_file", "model_path",
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
        with np.load(io.BytesIO(data) if data is not None else path, allow_pickle=False) as z:
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
