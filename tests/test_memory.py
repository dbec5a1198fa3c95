import multiprocessing

import numpy as np

from denoise.memory import peak_rss_mb


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
