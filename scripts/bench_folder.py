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
bucket    bucket to bucket on a local S3 server (moto, ``scripts/services.py``)
          and an external cluster (``dask scheduler`` + ``dask worker``
          processes): a folder of ``--small`` small images (half gray, half
          RGB) and ``--big`` large gray ones, with 1 and with 2 workers: Mpix/s,
          the 2-vs-1 ratio, each process's share of the run's CPU time (client,
          scheduler, workers; the S3 server apart), peak memory per worker, and
          per worker peak memory against the size of one image. Then the
          safety checks at this scale: a worker SIGKILLed mid-run, and a
          client (``denoise run``) SIGKILLed mid-run and rerun; the outputs
          must be all there and equal the first run's (same ETags).

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
from denoise.imagefile import image_pixels
from denoise.memory import peak_rss_mb
from denoise.stages import collect

#: The workers' configuration with Dask's default malloc settings: ours without WORKER_MALLOC.
DASK_MALLOC = {k: v for k, v in WORKER_CONFIG.items() if k not in WORKER_MALLOC}
LABELS = {"denoise": "rest of denoise_image"}  # the stage's own time: what its inner stages leave


def add_arguments(ap):
    ap.add_argument("--model", default="default", help="model (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="N, the workers of a full cluster (default: cores)")
    ap.add_argument("--files", type=int, help="photos in the folder (default: 8, 4 with --quick)")
    ap.add_argument("--small", type=int, help="bucket: small images (default: 2000, 300 with --quick)")
    ap.add_argument("--big", type=float, nargs="*", help="bucket: megapixels of each large image (default: 50 50, "
                                                         "12 with --quick)")


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


def _cpu_seconds(pids, children: bool = True) -> float:
    """CPU seconds (user + system) used so far by the processes ``pids`` (and their children)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *(proc.children(recursive=True) if children else [])]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def _bucket_inputs(folder: Path, small: int, big: list) -> float:
    """Small images (96 x 128, half gray, half RGB) and large gray ones; returns their megapixels."""
    folder.mkdir(parents=True)
    for i in range(small):
        bk.save_png(bk.noisy_photo(96 * 128 / 1e6, gray=i % 2 == 0, seed=i), folder / f"s{i:05d}.png")
    for i, mp in enumerate(big):
        bk.save_png(bk.noisy_photo(mp, gray=True, seed=i), folder / f"big{i}.png")
    return sum(image_pixels(p.name, p.read_bytes()) for p in folder.iterdir()) / 1e6


def _etags(fs, prefix: str) -> dict:
    fs.invalidate_cache()
    found = fs.find(prefix, detail=True) if fs.exists(prefix) else {}
    return {k.rsplit("/", 1)[-1]: v.get("ETag") for k, v in found.items() if "/.denoise-" not in k}


def bucket(args):
    import json
    import signal
    import subprocess
    import sys
    import threading

    import s3fs
    from distributed import Client
    from services import dask_cluster, s3_server

    env = {**bk.WORKER_ENV, "PYTHONPATH": str(bk.ROOT / "scripts")}  # the workers run benchkit's warm-up
    small = args.small if args.small is not None else (300 if args.quick else 2000)
    big = args.big if args.big is not None else ([12.0] if args.quick else [50.0, 50.0])
    with tempfile.TemporaryDirectory() as tmp, s3_server() as s3:
        tmp, opts = Path(tmp), s3.options
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            mp_total = pool.submit(_bucket_inputs, tmp / "in", small, big).result()
        fs = s3fs.S3FileSystem(**opts)
        fs.mkdir("bench")
        fs.put(str(tmp / "in") + "/", "bench/in/", recursive=True)
        n_in = len(fs.find("bench/in"))
        print(f"{small} small images (96 x 128, half gray, half RGB) and {len(big)} gray of "
              f"{', '.join(f'{b:g}' for b in big)} MP, {mp_total:.1f} MP in all, bucket to bucket on a local S3 server, "
              f"external cluster of one-thread workers, model {args.model}, blind")

        def run(workers, out):
            with dask_cluster(workers, env=env) as cl, Client(cl.options["address"]) as client:
                warm(client, args.model)
                sched, worker_pids = [cl.processes[0].pid], [p.pid for p in cl.processes[1:]]
                before = [_cpu_seconds([os.getpid()], children=False), _cpu_seconds(sched), _cpu_seconds(worker_pids),
                          _cpu_seconds([p.pid for p in s3.processes])]
                t = time.perf_counter()
                entries = denoise_folder(["s3://bench/in"], f"s3://bench/{out}", model=args.model, client=client,
                                         storage_options=opts, progress=False, overwrite=True)
                dt = time.perf_counter() - t
                after = [_cpu_seconds([os.getpid()], children=False), _cpu_seconds(sched), _cpu_seconds(worker_pids),
                         _cpu_seconds([p.pid for p in s3.processes])]
                peaks = sorted(client.run(peak_rss_mb).values())
            failed = [e for e in entries if e["status"] != "done"]
            if failed:
                raise RuntimeError(f"files failed: {failed[:3]}")
            cpu = [b - a for a, b in zip(before, after)]
            run_cpu = sum(cpu[:3])
            print(f"  {workers} worker(s): {dt:.1f} s, {mp_total / dt:.3f} Mpix/s; CPU time: client {cpu[0] / run_cpu:.1%}, "
                  f"scheduler {cpu[1] / run_cpu:.1%}, workers {cpu[2] / run_cpu:.1%} of {run_cpu:.0f} s (the S3 server "
                  f"used another {cpu[3]:.0f} s); peak RSS per worker {', '.join(f'{p:.0f}' for p in peaks)} MB")
            return dt

        times = {w: run(w, f"out{w}") for w in (1, 2)}
        print(f"  2 workers: {times[1] / times[2]:.2f}x one worker's throughput")
        reference = _etags(fs, "bench/out1")
        assert len(reference) == n_in and reference == _etags(fs, "bench/out2"), "outputs differ between runs"
        print("  outputs of both runs: all there, identical ETags")

        for mp in sorted({4.0, *big}):
            d = tmp / f"one{mp:g}"
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                pool.submit(_bucket_inputs, d, 0, [mp]).result()
            fs.put(str(d / "big0.png"), f"bench/one{mp:g}/big0.png")
            with dask_cluster(1, env=env) as cl, Client(cl.options["address"]) as client:
                warm(client, args.model)
                base = max(client.run(peak_rss_mb).values())
                denoise_folder([f"s3://bench/one{mp:g}"], f"s3://bench/one{mp:g}-out", model=args.model, client=client,
                               storage_options=opts, progress=False)
                peak = max(client.run(peak_rss_mb).values())
            print(f"  one gray image of {mp:g} MP on 1 worker: peak RSS {peak:.0f} MB ({peak - base:.0f} MB above the "
                  f"warmed-up worker, {(peak - base) / mp:.1f} MB per MP)")

        with dask_cluster(2, nanny=False, env=env) as cl:  # no nanny: the worker itself is killed
            result = {}
            th = threading.Thread(target=lambda: result.update(entries=denoise_folder(
                ["s3://bench/in"], "s3://bench/wk", model=args.model, scheduler=cl.options["address"], storage_options=opts,
                progress=False)))
            th.start()
            while th.is_alive() and len(_etags(fs, "bench/wk")) < n_in // 3:
                time.sleep(0.2)
            cl.processes[1].kill()  # SIGKILL
            th.join()
            lost = [e for e in result["entries"] if e["status"] != "done"]
            same = _etags(fs, "bench/wk") == reference
            print(f"  a worker SIGKILLed a third into a run: {len(result['entries']) - len(lost)} of {n_in} done, "
                  f"{len(lost)} failed; outputs {'identical to' if same else 'DIFFERENT from'} the first run's")

        with dask_cluster(2, env=env) as cl:
            address = cl.options["address"]
            cmd = [sys.executable, "-m", "denoise.cli", "run", "s3://bench/in", "-o", "s3://bench/ck", "--model", args.model,
                   "--scheduler", address, "--quiet", "--storage-options", json.dumps(opts)]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            while proc.poll() is None and len(_etags(fs, "bench/ck")) < n_in // 2:
                time.sleep(0.2)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            had = len(_etags(fs, "bench/ck"))
            r = subprocess.run(cmd + ["--report", "s3://bench/reports/ck.json"], capture_output=True, text=True)
            rep = json.loads(fs.cat_file("bench/reports/ck.json"))["summary"] if r.returncode == 0 else {}
            same = _etags(fs, "bench/ck") == reference
            print(f"  the client SIGKILLed half-way ({had} outputs written), then rerun (exit {r.returncode}): "
                  f"{rep.get('skipped')} skipped, {rep.get('done')} done, {rep.get('failed')} failed; outputs "
                  f"{'all there and identical to' if same else 'DIFFERENT from'} the first run's")


SECTIONS = {"scaling": scaling, "sizes": sizes, "malloc": malloc, "endgame": endgame, "bucket": bucket}

if __name__ == "__main__":
    bk.main(__doc__, SECTIONS, add_arguments=add_arguments, namespace=globals())
