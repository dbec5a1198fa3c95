#!/usr/bin/env python3
"""Folder runs on Dask (``denoise.denoise_folder`` on a LocalCluster of
single-threaded worker processes): throughput, where the workers' time goes,
memory, and what the folder engine's choices buy, each compared with its
alternative in the same run, in alternating rounds (this machine's speed
drifts between runs).

Sections (``--section NAME``, repeatable; default: all):

scaling   a folder of 2 MP photos (half gray, half RGB) with 1 and with N
          workers: Mpix/s, peak memory per worker, the workers' time split by
          stage (``denoise.stages``, collected in each worker), the forward
          pass's rate per worker against that worker's 1-thread GEMM, and the
          time outside the tasks (before each worker's first task, after its
          last).
sizes     one gray image of 1, 4, 16 and 64 MP in tiles of 1 MP on N workers:
          seconds, Mpix/s, peak memory per worker and of the client, and the
          exponent of time against pixels.
malloc    our workers' glibc malloc settings (``denoise.folders.WORKER_MALLOC``)
          against Dask's default (trim threshold 64 KiB), on the same folder.
endgame   a run's last files split into tiles among the workers
          (``denoise.folders.runner.ENDGAME_FILES``) against sent whole, on
          folders of 1, 2 and 3 photos of 2 MP, in one cluster.

Every section's output goes to ``docs/performance.md`` (``--no-record``: print
only). Inputs are made in a temporary folder from a sample photo tiled to size.

Usage::

    python scripts/bench_folder.py                     # everything
    python scripts/bench_folder.py --quick --section malloc --model fast
    python scripts/bench_folder.py --section scaling --workers 4 --files 16
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import benchkit as bk
import numpy as np

from denoise.folders import WORKER_CONFIG, WORKER_MALLOC, denoise_folder, runner
from denoise.memory import peak_rss_mb
from denoise.stages import collect

#: The workers' configuration with Dask's default malloc settings: ours without WORKER_MALLOC.
DASK_MALLOC = {k: v for k, v in WORKER_CONFIG.items() if k not in WORKER_MALLOC}
LABELS = {"denoise": "rest of denoise_image"}  # the stage's own time: what its inner stages leave


def add_arguments(ap):
    ap.add_argument("--model", default="default", help="model (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="N, the workers of a full cluster (default: cores)")
    ap.add_argument("--files", type=int, help="photos in the folder (default: 8, 4 with --quick)")


@contextlib.contextmanager
def cluster(workers: int, config: dict = WORKER_CONFIG):
    """A client of a LocalCluster as ``denoise.folders.connect`` makes it, with the workers' Dask ``config``.

    Dask's nanny copies its pre-spawn environment into this process's ``os.environ``, where it would
    win over the next cluster's configuration; this process's environment is restored after the start."""
    import dask
    from distributed import Client, LocalCluster

    environ = dict(os.environ)
    try:
        with dask.config.set(config):
            local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                                 silence_logs=logging.CRITICAL)
    finally:
        os.environ.clear()
        os.environ.update(environ)
    client = Client(local)
    try:
        yield client
    finally:
        client.close()
        local.close()


def warm(client, model: str) -> None:
    """Every worker loads and compiles the model before a timing (a warm-up file reaches one worker only)."""
    client.run(bk.warm_up, *bk.model_file(model))


def timed_run(client, src: Path, out: Path, model: str, **options) -> tuple[float, float]:
    """(megapixels, seconds) of one folder run, blind as `denoise run` by default; every file must succeed."""
    t = time.perf_counter()
    entries = denoise_folder([src], out, model=model, client=client, progress=False, overwrite=True, **options)
    dt = time.perf_counter() - t
    failed = [e for e in entries if e["status"] != "done"]
    if failed:
        raise RuntimeError(f"files failed: {failed}")
    return sum(e["megapixels"] for e in entries), dt


def _start_stages(dask_worker):
    cm = collect()
    dask_worker.bench_stages = (cm, cm.__enter__())


def _stop_stages(dask_worker):
    cm, times = dask_worker.bench_stages
    cm.__exit__(None, None, None)
    return times.as_dict()


def files(args) -> int:
    return args.files or (4 if args.quick else 8)


def scaling(args):
    from denoise import load_model

    flops_per_patch = load_model(args.model).arch.flops_per_patch()
    counts = sorted({1, args.workers})
    rounds = 1 if args.quick or len(counts) == 1 else 3
    n = files(args)
    with tempfile.TemporaryDirectory() as tmp:
        src = bk.photo_folder(Path(tmp) / "in", n, 2.0)
        print(f"folder of {n} 2-MP photos (half gray, half RGB), model {args.model}, {rounds} round(s), 1 and {args.workers} "
              "workers in turn; the workers' time as a share of workers x wall time")
        rates = {w: [] for w in counts}
        for r in range(rounds):
            for w in counts:
                with cluster(w) as client:
                    warm(client, args.model)
                    client.run(_start_stages)
                    wall = time.time()
                    mp, dt = timed_run(client, src, Path(tmp) / f"out{w}", args.model)
                    wall_end = time.time()
                    per_worker = list(client.run(_stop_stages).values())
                    rss = max(client.run(peak_rss_mb).values())
                    gemm = float(np.median(list(client.run(bk.gemm_peak, 2048).values())))  # all at once, after the RSS
                rates[w].append(mp / dt)
                busy = w * dt
                seconds = {}
                for st in per_worker:
                    for k, v in st["seconds"].items():
                        seconds[k] = seconds.get(k, 0.0) + v
                forward_work = sum(st["work"].get("forward", 0) for st in per_worker)
                rate = forward_work * flops_per_patch / seconds["forward"] / 1e9
                used = [st for st in per_worker if st["first"] is not None]  # a worker given no task idles throughout
                before = sum(st["first"] - wall for st in used) + (len(per_worker) - len(used)) * dt
                after = sum(wall_end - st["last"] for st in used)
                outside = busy - sum(seconds.values())
                print(f"  {w} worker(s): {mp / dt:.3f} Mpix/s, peak RSS/worker {rss:.0f} MB; forward pass at {rate:.1f} GFLOP/s "
                      f"per worker, {rate / gemm:.0%} of a worker's 1-thread GEMM ({gemm:.1f}, all workers at once, right after)")
                print("    " + ", ".join(f"{LABELS.get(k, k)} {v / busy:.1%}" for k, v in sorted(seconds.items(), key=lambda kv: -kv[1]))
                      + f"; outside the tasks (scheduling, transfers, idle) {outside / busy:.1%}, of which before the first task "
                      f"{before / busy:.1%} and after the last {after / busy:.1%}")
        if len(counts) > 1:
            ratios = np.array(rates[args.workers]) / np.array(rates[1])
            print(f"  scaling: {np.median(ratios):.2f}x with {args.workers} workers"
                  + (f" (median of {rounds} rounds: " + ", ".join(f"{x:.2f}" for x in ratios) + ")" if rounds > 1 else ""))


def _make_image(path: Path, megapixels: float) -> Path:
    return bk.save_png(bk.noisy_photo(megapixels, gray=True), path)


def sizes(args):
    targets = [1, 4, 16] if args.quick else [1, 4, 16, 64]
    print(f"one gray image per run, tiles of 1 MP (so one image can use every worker), {args.workers} workers, model {args.model}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # made in a child process, so that the client's peak below is the folder engine's alone
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            paths = [pool.submit(_make_image, Path(tmp) / f"x{mp}.png", mp).result() for mp in targets]
        times = []
        with cluster(args.workers) as client:
            warm(client, args.model)
            for mp_target, p in zip(targets, paths):
                d = tmp / f"in{mp_target}"
                d.mkdir()
                p.rename(d / p.name)
                mp, dt = timed_run(client, d, tmp / f"out{mp_target}", args.model, tile_megapixels=1.0)
                times.append((mp, dt))
                print(f"  {mp:6.1f} MP: {dt:7.2f} s  {mp / dt:.3f} Mpix/s  peak RSS/worker {max(client.run(peak_rss_mb).values()):.0f} MB")
        x, y = np.log([t[0] for t in times]), np.log([t[1] for t in times])
        print(f"  time ~ pixels^{np.polyfit(x, y, 1)[0]:.2f}; client peak RSS {peak_rss_mb():.0f} MB")


def malloc(args):
    rounds = 1 if args.quick else 3
    n = files(args)
    print(f"folder of {n} 2-MP photos, {args.workers} workers, model {args.model}: our workers' malloc settings against Dask's "
          f"default, {rounds} round(s) in turn, each on a fresh cluster")
    with tempfile.TemporaryDirectory() as tmp:
        src = bk.photo_folder(Path(tmp) / "in", n, 2.0)
        secs = {"ours": [], "dask": []}
        for r in range(rounds):
            for name, config in (("ours", WORKER_CONFIG), ("dask", DASK_MALLOC)):
                with cluster(args.workers, config) as client:
                    warm(client, args.model)
                    mp, dt = timed_run(client, src, Path(tmp) / "out", args.model)
                secs[name].append(dt)
                print(f"  round {r + 1}, {'ours' if name == 'ours' else 'Dask default':12s} {mp / dt:.3f} Mpix/s")
        ratio = np.array(secs["ours"]) / np.array(secs["dask"])
        print(f"  ours: {np.median(ratio):.3f}x the time of Dask's default (median of per-round ratios: "
              + ", ".join(f"{x:.3f}" for x in ratio) + ")")


@contextlib.contextmanager
def endgame_files(n: int):
    """Run with ``runner.ENDGAME_FILES = n`` in this process (the client decides which files to split)."""
    before, runner.ENDGAME_FILES = runner.ENDGAME_FILES, n
    try:
        yield
    finally:
        runner.ENDGAME_FILES = before


def endgame(args):
    workers = max(2, args.workers)
    rounds = 2 if args.quick else 6
    counts = (1, 2) if args.quick else (1, 2, 3)
    print(f"a run's last files split among the workers (ENDGAME_FILES = {runner.ENDGAME_FILES}) against sent whole (0); "
          f"{workers} workers, one cluster, model {args.model}, 2-MP photos, {rounds} rounds in turn")
    with tempfile.TemporaryDirectory() as tmp, cluster(workers) as client:
        warm(client, args.model)
        for n in counts:
            src = bk.photo_folder(Path(tmp) / f"in{n}", n, 2.0)
            secs = {"split": [], "whole": []}
            for _ in range(rounds):
                for name, value in (("split", runner.ENDGAME_FILES), ("whole", 0)):
                    with endgame_files(value):
                        secs[name].append(timed_run(client, src, Path(tmp) / "out", args.model)[1])
            ratio = np.array(secs["split"]) / np.array(secs["whole"])
            print(f"  {n} file(s): split {np.median(secs['split']):.2f} s, whole {np.median(secs['whole']):.2f} s; split takes "
                  f"{np.median(ratio):.3f}x the time (median of per-round ratios, {ratio.min():.3f}-{ratio.max():.3f})")


SECTIONS = {"scaling": scaling, "sizes": sizes, "malloc": malloc, "endgame": endgame}

if __name__ == "__main__":
    bk.main(__doc__, SECTIONS, add_arguments=add_arguments, namespace=globals())
