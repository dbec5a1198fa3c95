"""One run at a time per output folder: a lock file the system releases with its holder."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

__all__ = ["LOCK", "OutputBusy", "output_lock"]

LOCK = ".denoise-lock"


class OutputBusy(ValueError):
    """Another run holds the output folder."""


@contextlib.contextmanager
def output_lock(outdir: Path):
    """Hold ``outdir``'s lock for the block; :class:`OutputBusy` if another
    process holds it. The lock dies with the process (a killed run leaves none)."""
    path = Path(outdir) / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise OutputBusy(f"another denoise run ({holder}) is writing to {outdir}; wait for it to finish "
                             "or choose another output folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)
