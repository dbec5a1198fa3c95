"""Peak memory of the current process, as benchmarks and tests measure it.

``resource.getrusage(...).ru_maxrss`` is the wrong number for Dask workers on
Linux: the kernel keeps it across ``fork`` + ``exec``, so a worker spawned by
a client that once held a large image reports the client's peak as its own.
``VmHWM`` in ``/proc/self/status`` is the high-water mark of this process's
own address space and starts afresh at ``exec``.
"""

from __future__ import annotations

import resource
import sys

__all__ = ["peak_rss_mb"]


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
