"""Writing files safely: every output lands whole under its final name or not at all."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["atomic_write", "TEMPORARY_SUFFIX"]

#: Temporary files end in this; a killed run's leftovers are recognised by it.
TEMPORARY_SUFFIX = ".part"
_NAME_MAX = 255  # bytes in one file name on the common file systems


def _temporary_name(name: str) -> str:
    """A fresh hidden name beside ``name`` (``.NAME.XXXXXXXX.part``), cut to fit
    the file system's limit on a name's length."""
    tag = f".{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"
    room = _NAME_MAX - 1 - len(tag)
    stem = name.encode()[:room].decode(errors="ignore")
    return f".{stem}{tag}"


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder,
    renamed into place only when complete and flushed to disk.

    The file gets the permissions a plain ``open`` would give it (0o666 less
    the process's umask, applied by the system at creation)."""
    path = Path(path)
    while True:
        tmp = path.parent / _temporary_name(path.name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # a name another writer drew: draw again
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
