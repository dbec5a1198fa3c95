"""The Dask cluster a run uses: an existing one by address, or a LocalCluster of ours."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading

from ..memory import MALLOC_SETTINGS

__all__ = ["WORKER_MALLOC", "WORKER_CONFIG", "connect", "refuse_while_bootstrapping"]


#: glibc malloc settings (:data:`denoise.memory.MALLOC_SETTINGS`) for the workers of
#: our LocalCluster, set before each starts. Dask's nanny starts workers with
#: MALLOC_TRIM_THRESHOLD_=65536, which also pins glibc's mmap threshold at 128 KiB:
#: every array larger than that is freshly mapped memory, page-faulted in on each use,
#: and a denoising batch allocates megabytes (``scripts/bench_folder.py --section
#: malloc``). As in Dask, a MALLOC_* variable already in the environment wins.
WORKER_MALLOC = {f"distributed.nanny.pre-spawn-environ.{name}": value for name, value in MALLOC_SETTINGS.items()}

#: Dask configuration of our LocalCluster's workers: :data:`WORKER_MALLOC`, and no
#: statistical profiler (by default each Dask worker samples its task's call stack
#: every 10 ms, in Python, taking the GIL from the task). A cluster given by address
#: keeps its own configuration.
WORKER_CONFIG = {**WORKER_MALLOC, "distributed.worker.profile.enabled": False}


#: Worker processes start by importing the caller's main module, as multiprocessing's
#: "spawn" does: a script whose call to denoise_folder is not guarded calls it again there.
_GUARD_HINT = ("if you call denoise_folder from a script, put the call under `if __name__ == \"__main__\":` "
               "(each worker process imports the script as it starts)")
_UNGUARDED = f"denoise_folder was called while a worker process was starting: {_GUARD_HINT}"


def refuse_while_bootstrapping() -> None:
    """Raise RuntimeError, with the fix, when called while this process is a worker
    process importing its parent's main module (an unguarded script)."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(_UNGUARDED)


def connect(scheduler: str | None = None, workers: int | None = None):
    """A Dask client: to ``scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``) if
    given, else to a new LocalCluster of ``workers`` single-threaded worker
    processes (default: one per core). Returns ``(client, cluster_or_None)``."""
    import dask
    from distributed import Client, LocalCluster

    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        try:
            return Client(address, timeout="5s"), None
        except (OSError, TimeoutError) as e:
            raise ConnectionError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    n = workers or os.cpu_count() or 1
    if n < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    quiet = logging.CRITICAL if not logging.getLogger("denoise").isEnabledFor(logging.DEBUG) else logging.WARNING
    refuse_while_bootstrapping()
    try:
        with dask.config.set(WORKER_CONFIG), _interrupts_ignored_by_new_processes(), _environment_kept():
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   silence_logs=quiet)
    except RuntimeError as e:
        raise RuntimeError(f"could not start the local Dask workers ({e}); {_GUARD_HINT}") from e
    return Client(cluster), cluster


@contextlib.contextmanager
def _interrupts_ignored_by_new_processes():
    """Start our workers with SIGINT ignored (a disposition a new process inherits):
    Ctrl-C in a terminal reaches the whole process group, and the client, not each
    worker, is the one to stop the run; otherwise every worker would print its own
    KeyboardInterrupt traceback. Only from the main thread, where signals are handled."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved)


@contextlib.contextmanager
def _environment_kept():
    """Leave this process's environment as it was: Dask's nanny, which runs in the
    client's process for a LocalCluster, writes its workers' pre-spawn settings
    (our malloc settings) into ``os.environ`` before starting them."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        os.environ.update(saved)
