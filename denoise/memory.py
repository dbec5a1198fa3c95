"""Memory of the current process: its peak, as benchmarks and tests measure
it, and the C allocator's settings for long numeric work.

``resource.getrusage(...).ru_maxrss`` is the wrong number for Dask workers on
Linux: the kernel keeps it across ``fork`` + ``exec``, so a worker spawned by
a client that once held a large image reports the client's peak as its own.
``VmHWM`` in ``/proc/self/status`` is the high-water mark of this process's
own address space and starts afresh at ``exec``.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import sys

__all__ = ["peak_rss_mb", "MALLOC_SETTINGS", "keep_freed_memory"]

#: glibc malloc settings for processes that allocate and free arrays of a few
#: megabytes over and over (a training step, a batch of patches): keep up to
#: 256 MiB of freed heap instead of handing it back to the system at once
#: (trim threshold), and serve blocks up to 32 MiB from the heap (mmap
#: threshold). Otherwise the freed arrays of one step go back to the kernel
#: and the next step page-faults the same memory in afresh. Only processes
#: that are ours take them: our LocalCluster's workers start with them
#: (``denoise.folders.WORKER_MALLOC``), and the ``denoise train`` command applies
#: them to itself (:func:`keep_freed_memory`); a library call never does.
MALLOC_SETTINGS = {"MALLOC_TRIM_THRESHOLD_": 256 * 2**20, "MALLOC_MMAP_THRESHOLD_": 32 * 2**20}
_MALLOPT = {"MALLOC_TRIM_THRESHOLD_": -1, "MALLOC_MMAP_THRESHOLD_": -3}  # glibc's M_TRIM_THRESHOLD, M_MMAP_THRESHOLD


def keep_freed_memory() -> bool:
    """Apply :data:`MALLOC_SETTINGS` to this process, through glibc's ``mallopt``.

    Does nothing, and returns False, where the C library is not glibc or
    where the process started with either variable in its environment (yours
    win, as they do for Dask's workers). That is the environment glibc read,
    from ``/proc/self/environ``, not ``os.environ``: a LocalCluster's nanny
    writes its workers' settings into the latter. Returns True when both
    settings took effect. They last for the life of the process: it keeps up
    to 256 MiB of freed memory for reuse.
    """
    if any(name in _startup_environment() for name in MALLOC_SETTINGS) or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all([mallopt(_MALLOPT[name], value) == 1 for name, value in MALLOC_SETTINGS.items()])


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (MiB): ``VmHWM`` on Linux, else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB elsewhere


def _startup_environment() -> set[str]:
    """The names in the environment this process started with, where Linux
    shows it; else those in ``os.environ``."""
    try:
        with open("/proc/self/environ", "rb") as f:
            return {item.split(b"=", 1)[0].decode(errors="replace") for item in f.read().split(b"\0") if item}
    except OSError:
        return set(os.environ)
