#!/usr/bin/env python3
"""Benchmark folder denoising on Dask: throughput with 1 worker vs all
workers, and peak memory per worker on one large image.

Usage::

    python scripts/bench_folder.py                      # sample images x 4 copies, a 100 MP image
    python scripts/bench_folder.py --copies 8 --large-mp 100 --workers 2

Prints a table; nothing is asserted. Inputs are made in a temporary folder
from ``sample_images/`` (the large image is a sample photo tiled to size).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from denoise import io  # noqa: E402
from denoise.distributed import connect, denoise_folder  # noqa: E402
from denoise.memory import peak_rss_mb  # noqa: E402


def _folder(tmp: Path, copies: int) -> Path:
    src = tmp / "photos"
    src.mkdir()
    for f in io.list_images(ROOT / "sample_images"):
        for k in range(copies):
            shutil.copy(f, src / f"{f.stem}_{k}{f.suffix}")
    return src


def _large(tmp: Path, megapixels: float) -> Path:
    a, _ = io.read_image(ROOT / "sample_images" / "honey_bee.jpg")
    side = int(np.sqrt(megapixels * 1e6))
    reps = (side // a.shape[0] + 1, side // a.shape[1] + 1, 1)
    big = np.tile(a, reps)[:side, :side]
    rng = np.random.default_rng(0)
    big = np.clip(big + rng.normal(0, 15, big.shape).astype(np.float32), 0, 255).astype(np.uint8)
    d = tmp / "large"
    d.mkdir()
    p = d / "large.png"
    Image.fromarray(big).save(p, compress_level=1)
    return d


def _run(src, out, workers, **kw):
    client, cluster = connect(workers=workers)
    try:
        # warm up: each worker loads and compiles the model once
        warm = Path(tempfile.mkdtemp())
        denoise_folder([ROOT / "sample_images" / "dogs_gray.png"], warm, client=client, progress=False, overwrite=True)
        client.run(lambda: __import__("gc").collect())
        t0 = time.perf_counter()
        entries = denoise_folder([src], out, client=client, progress=False, overwrite=True, **kw)
        dt = time.perf_counter() - t0
        rss = client.run(peak_rss_mb)
    finally:
        client.close()
        cluster.close()
    mp = sum(e.get("megapixels", 0) for e in entries)
    assert all(e["status"] == "done" for e in entries), entries
    return mp, dt, max(rss.values())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=4, help="copies of each sample image in the folder")
    ap.add_argument("--large-mp", type=float, default=100.0, help="size of the large image, megapixels (0: skip)")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="'all workers' (default: cores)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = _folder(tmp, args.copies)
        n = len(list(src.iterdir()))
        print(f"folder: {n} files from sample_images/ ({args.copies} copies each); {os.cpu_count()} cores")
        print(f"{'workers':>8s} {'MP':>7s} {'seconds':>8s} {'Mpix/s':>8s} {'peak RSS/worker MB':>19s}")
        rates = {}
        for w in sorted({1, args.workers}):
            mp, dt, rss = _run(src, tmp / f"out{w}", w)
            rates[w] = mp / dt
            print(f"{w:8d} {mp:7.2f} {dt:8.2f} {mp / dt:8.3f} {rss:19.0f}")
        if len(rates) > 1:
            print(f"scaling: {args.workers} workers = {rates[args.workers] / rates[1]:.2f}x one worker")
        if args.large_mp > 0:
            # made in a child process, so that the client's peak below is the engine's alone
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                big = pool.submit(_large, tmp, args.large_mp).result()
            mp, dt, rss = _run(big, tmp / "outbig", args.workers)
            print(f"large image: {mp:.1f} MP RGB in {dt:.1f} s ({mp / dt:.3f} Mpix/s) with {args.workers} workers; "
                  f"peak RSS per worker {rss:.0f} MB; client peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
