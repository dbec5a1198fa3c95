"""One run at a time per output folder or URL prefix.

In a local folder the lock is a file locked with ``flock``, which the system
releases with its holder. Object stores have no such lock, so under a URL
prefix it is a lease: an object ``.denoise-lock`` naming its holder, renewed
by the holder every :data:`RENEW_SECONDS` and deleted at the end. A run
refuses a prefix whose lease was renewed within :data:`LEASE_SECONDS` by
someone else (by the writer's clock: machines' clocks must agree to within
a fraction of that), and takes over one that has lapsed, or whose holder was a
process of this machine that no longer exists (a killed run resumed at once).
Two runs starting within the same second could both write the lease; each
reads it back after :data:`SETTLE_SECONDS` and only the last writer goes on.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import socket
import threading
import time
from pathlib import Path

from .. import remote

__all__ = ["LOCK", "LEASE_SECONDS", "RENEW_SECONDS", "SETTLE_SECONDS", "OutputBusy", "output_lock"]

LOCK = ".denoise-lock"
LEASE_SECONDS = 120.0
RENEW_SECONDS = 20.0
SETTLE_SECONDS = 1.0

log = logging.getLogger(__name__)


class OutputBusy(ValueError):
    """Another run holds the output folder."""


def output_lock(outdir, options: dict | None = None):
    """A context manager holding ``outdir``'s lock (a local folder or a URL prefix) for the block;
    :class:`OutputBusy` if another run holds it."""
    if remote.is_url(outdir):
        return _lease(str(outdir), options)
    return _flock(remote.local_path(outdir))


@contextlib.contextmanager
def _flock(outdir: Path):
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _read(fs, path: str) -> dict | None:
    try:
        fs.invalidate_cache(path)
        return json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):  # not a lease we wrote: treat it as lapsed
        return {}


def _lapsed(lease: dict) -> bool:
    if time.time() - float(lease.get("renewed", 0)) > LEASE_SECONDS:
        return True
    return lease.get("host") == socket.gethostname() and not _pid_alive(int(lease.get("pid", 0)))


def _busy(outdir: str, lease: dict) -> OutputBusy:
    age = time.time() - float(lease.get("renewed", 0))
    return OutputBusy(f"another denoise run ({lease.get('host')} pid {lease.get('pid')}) is writing to {outdir} "
                      f"(its lease was renewed {age:.0f} s ago); wait for it to finish, or, if it was killed on another "
                      f"machine, {max(LEASE_SECONDS - age, 0):.0f} s for its lease to lapse, or choose another output prefix")


@contextlib.contextmanager
def _lease(outdir: str, options: dict | None):
    fs, prefix = remote.filesystem(outdir, options)
    path = f"{prefix.rstrip('/')}/{LOCK}"
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "token": secrets.token_hex(8)}

    def write():
        fs.pipe_file(path, json.dumps({**mine, "renewed": time.time()}).encode())

    held = _read(fs, path)
    if held and held.get("token") != mine["token"] and not _lapsed(held):
        raise _busy(outdir, held)
    write()
    time.sleep(SETTLE_SECONDS)
    held = _read(fs, path) or {}
    if held.get("token") != mine["token"]:
        raise _busy(outdir, held)
    stop = threading.Event()

    def renew():
        while not stop.wait(RENEW_SECONDS):
            try:
                write()
            except Exception as e:  # the run goes on; a lapsed lease only lets another run in
                log.warning("could not renew the lock on %s: %s", outdir, e)

    thread = threading.Thread(target=renew, name="denoise-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        with contextlib.suppress(Exception):
            if (_read(fs, path) or {}).get("token") == mine["token"]:
                fs.rm_file(path)
