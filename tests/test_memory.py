import ctypes
import multiprocessing
import platform

import numpy as np
import pytest

from denoise.memory import (
    MALLOC_SETTINGS,
    _startup_environment,
    keep_freed_memory,
    peak_rss_mb,
)


def _in_fresh_process(fn):
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(q,))
    p.start()
    result = q.get(timeout=60)
    p.join()
    return result


def _peak(q):
    q.put(peak_rss_mb())


def _peak_around_allocation(q):
    before = peak_rss_mb()
    a = np.ones(200 * 2**20 // 8)  # 200 MiB, touched
    after = peak_rss_mb()
    del a
    q.put((before, after))


def test_peak_grows_with_an_allocation():
    # in a fresh process: this one's peak may already be above anything allocated here
    before, after = _in_fresh_process(_peak_around_allocation)
    assert after - before > 150, (before, after)


def test_spawned_process_does_not_inherit_the_parent_peak():
    # Dask spawns its workers; their peak must be their own (ru_maxrss would report the parent's)
    a = np.ones(300 * 2**20 // 8)
    del a
    parent = peak_rss_mb()
    child = _in_fresh_process(_peak)
    assert parent > 300 and child < parent - 200, (parent, child)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mmapped_blocks_for_a_block(libc, size):
    """How many more blocks glibc holds as separate mappings while a block of ``size`` bytes is allocated."""
    libc.mallinfo2.restype = _Mallinfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    before = libc.mallinfo2().hblks
    block = libc.malloc(size)
    during = libc.mallinfo2().hblks
    libc.free(block)
    return during - before


def _malloc_before_and_after(q):
    libc = ctypes.CDLL(None)
    size = 24 * 2**20  # above glibc's initial mmap threshold (128 KiB), below ours (32 MiB)
    before = _mmapped_blocks_for_a_block(libc, size)
    applied = keep_freed_memory()
    q.put((before, applied, _mmapped_blocks_for_a_block(libc, size)))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc settings")
def test_keep_freed_memory_serves_large_blocks_from_the_heap(monkeypatch):
    # in a fresh process, started without MALLOC_* variables (glibc reads them at start): this
    # process's allocator has been set by the training tests, and Dask's nanny writes the
    # variables into os.environ
    for name in MALLOC_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    before, applied, after = _in_fresh_process(_malloc_before_and_after)
    assert (before, applied, after) == (1, True, 0)


def _apply(q):
    q.put(keep_freed_memory())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc settings")
def test_the_environment_the_process_started_with_wins(monkeypatch):
    for name in MALLOC_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert _in_fresh_process(_apply) is True
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")  # in the child's environment from its start
    assert _in_fresh_process(_apply) is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc settings")
def test_variables_set_after_the_start_do_not_count(monkeypatch):
    # as a LocalCluster's nanny sets its workers' settings in os.environ: glibc never read them here
    if any(name in _startup_environment() for name in MALLOC_SETTINGS):
        pytest.skip("this test process started with MALLOC_* variables set")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert keep_freed_memory() is True
