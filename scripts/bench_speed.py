#!/usr/bin/env python3
"""Speed benchmark: everything measured in one run, as ratios to this
machine's float32 GEMM rate.

Prints: numpy GEMM peak; the model's forward GFLOP/s and ratio per backend;
training GFLOP/s and ratio, for the step alone and for the training loop
with its patch sampler; end-to-end Mpix/s of one photo with the time split by
stage and the forward pass's rate as it runs there; 1-vs-N worker scaling on
a folder, with each worker's forward rate against its own 1-thread GEMM; the
size-scaling exponent (1, 4, 16, 64 MP) with peak memory per worker; and
OpenCV fastNlMeans and BM3D Mpix/s on the same photo (if installed:
``pip install -e ".[bench]"``).

Rates are sustained (calls back to back, as in a run) unless a line says
otherwise; see :func:`interleaved_ratios`.

Usage::

    python scripts/bench_speed.py                 # everything (6-10 minutes on 2 cores)
    python scripts/bench_speed.py --quick         # smaller sizes, no 64 MP, one folder round
    python scripts/bench_speed.py --model default --backends numba,c,jax
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import denoise  # noqa: E402
from denoise import distributed, io  # noqa: E402
from denoise import patches as P  # noqa: E402
from denoise.distributed import connect, denoise_folder  # noqa: E402
from denoise.memory import keep_freed_memory, peak_rss_mb  # noqa: E402
from denoise.model import Autoencoder  # noqa: E402
from denoise.noise import parse  # noqa: E402
from denoise.train import PatchSampler, TrainConfig, compile_step  # noqa: E402

PHOTO = ROOT / "sample_images" / "honey_bee.jpg"


def once(fn) -> float:
    """Seconds one call of ``fn`` takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median_time(fn, repeats=5):
    fn()
    return float(np.median([once(fn) for _ in range(repeats)]))


def gemm_peak(n=4096) -> float:
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    return 2 * n**3 / median_time(lambda: a @ b) / 1e9


def interleaved_ratios(fns, rounds=7, n=4096, seconds=0.5) -> list[dict]:
    """Rates of each ``(fn, flops)`` in ``fns`` against numpy's GEMM, timed in turn
    within each round, then the GEMM, so that all see the same machine load;
    medians over rounds of GFLOP/s and of per-round ratios.

    Each ``fn`` is timed two ways each round: as one call after a pause, and
    sustained, called back to back for ``seconds``, as the pipeline calls
    the forward pass and the training loop its step. A lone call pays for
    waking BLAS threads and refilling caches, which a run of calls pays
    once (on this machine the 9 ms forward call of the ``fast`` model took
    1.8 ms more after a 50 ms pause). The pauses let each BLAS library's
    threads stop spinning (numpy's and scipy's OpenBLAS, which Numba calls,
    are separate pools). A ``fn`` with a ``finish`` attribute leaves work in
    flight (see :func:`pipelined`): ``fn.finish()`` waits for it inside each timing.
    Returns per ``fn`` ``dict(gemm=, sustained=, sustained_ratio=, sustained_spread=, single=,
    single_ratio=, rounds=)``: ``sustained_spread`` the (lowest, highest) per-round sustained
    ratio (on a shared machine the rounds of one row differed up to 4x, which the median
    alone hides), ``rounds`` the sustained GFLOP/s of each round, to compare two ``fn`` round by round."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    for fn, _ in fns:
        fn(), getattr(fn, "finish", lambda: None)()
    a @ b
    rows = []  # per round: the GEMM's rate, then each fn's sustained and single rates
    for _ in range(rounds):
        row = []
        for fn, flops in fns:
            finish = getattr(fn, "finish", lambda: None)
            time.sleep(0.5)
            t = time.perf_counter()
            fn()
            finish()
            single = flops / (time.perf_counter() - t) / 1e9
            time.sleep(0.5)
            calls, t = 0, time.perf_counter()
            while calls == 0 or time.perf_counter() - t < seconds:
                fn()
                calls += 1
            finish()
            row += [calls * flops / (time.perf_counter() - t) / 1e9, single]
        time.sleep(0.5)
        t = time.perf_counter()
        a @ b
        rows.append([2 * n**3 / (time.perf_counter() - t) / 1e9, *row])
    rows = np.array(rows)
    gemm = rows[:, 0]
    out = []
    for k in range(len(fns)):
        sustained, single = rows[:, 1 + 2 * k], rows[:, 2 + 2 * k]
        out.append(dict(gemm=float(np.median(gemm)), sustained=float(np.median(sustained)),
                        sustained_ratio=float(np.median(sustained / gemm)),
                        sustained_spread=(float(np.min(sustained / gemm)), float(np.max(sustained / gemm))),
                        single=float(np.median(single)), single_ratio=float(np.median(single / gemm)), rounds=sustained))
    return out


def ratio_line(label: str, r: dict) -> str:
    low, high = r["sustained_spread"]
    return (f"  {label:24s} {r['sustained']:7.1f} GFLOP/s  (GEMM {r['gemm']:6.1f})  {r['sustained_ratio']:6.1%} of GEMM"
            f" (rounds {low:.0%}-{high:.0%});  one call after a pause {r['single']:6.1f} GFLOP/s, {r['single_ratio']:6.1%}")


def forward_fn(model, backend, batch):
    ae = Autoencoder(model.arch, weights=model.get_weights(), backend=backend, meta=model.meta)
    x = np.random.default_rng(0).random((batch, model.arch.in_size - model.arch.noise_input), dtype=np.float32)
    return lambda: ae.reconstruct(x, 0.1)


def training_fn(model, batch=256, backend="numba", sampler=None):
    """One training step on fixed rows, or with ``sampler`` one iteration of
    the training loop as train() runs it: draw a batch of patches, start its step, read the
    previous step's loss (see :func:`pipelined`)."""
    ae = Autoencoder(model.arch, weights=model.get_weights(), backend=backend)
    step, _, _ = compile_step(ae, TrainConfig(steps=1, batch_size=batch, backend=backend))
    rng = np.random.default_rng(0)
    x = rng.random((batch, model.arch.in_size - model.arch.noise_input), dtype=np.float32)
    y = rng.random((batch, model.arch.out_size), dtype=np.float32)
    s = np.full(batch, 0.1, np.float32)
    if sampler is not None:
        return pipelined(lambda: step(*_noisy_sigma_clean(sampler.sample(batch, rng))))
    return lambda: float(step(x, s, y))  # float(): JAX returns before computing unless its result is read


def pipelined(dispatch):
    """``dispatch()`` (draw a batch, start its step) called as train() runs its loop, with one step in
    flight: each call then reads the previous step's loss (JAX returns before its step is done, so the
    next batch is drawn meanwhile). ``.finish()`` reads the last one's."""
    pending = []

    def call():
        pending.append(dispatch())
        if len(pending) > 1:
            float(pending.pop(0))

    def finish():
        while pending:
            float(pending.pop(0))

    call.finish = finish
    return call


def _noisy_sigma_clean(batch):
    noisy, clean, sigma = batch
    return noisy, sigma, clean


def loop_sampler(model):
    """A patch sampler over the sample photos, with the shipped models' noise range."""
    photos = [io.read_float(p) for p in io.list_images(ROOT / "sample_images")]
    return PatchSampler(photos, model.arch, parse("gaussian:0-55"))


STAGES = ("decode", "extract", "forward", "overlap-add", "encode")


@contextmanager
def stage_timers():
    """Sum the seconds spent in each stage of denoising in this process, by
    wrapping the functions the pipeline and the folder tasks call (on their
    modules and class, so every model object and task is counted).
    ``denoise_image`` is its whole time inside folder tasks, extract, forward
    and overlap-add included. ``first`` and ``last`` are the wall-clock times
    (``time.time()``) at which the first decode or denoise began and the last
    denoise or encode ended."""
    totals = dict.fromkeys((*STAGES, "denoise_image", "forward FLOPs", "last"), 0.0)
    totals["first"] = float("inf")
    targets = [(io, "read_image", "decode"), (P, "extract_padded", "extract"), (Autoencoder, "reconstruct", "forward"),
               (P, "overlap_add", "overlap-add"), (io, "encode_image", "encode"),
               (distributed, "denoise_image", "denoise_image")]
    originals = [getattr(obj, attr) for obj, attr, _ in targets]

    def timed(name, fn):
        def wrapper(*a, **k):
            t, wall = time.perf_counter(), time.time()
            try:
                return fn(*a, **k)
            finally:
                totals[name] += time.perf_counter() - t
                if name in ("decode", "denoise_image", "encode"):
                    totals["first"], totals["last"] = min(totals["first"], wall), max(totals["last"], time.time())
                if name == "forward":  # Autoencoder.reconstruct(self, rows, sigma)
                    totals["forward FLOPs"] += a[0].arch.flops_per_patch() * len(a[1])

        return wrapper

    for (obj, attr, name), fn in zip(targets, originals):
        setattr(obj, attr, timed(name, fn))
    try:
        yield totals
    finally:
        for (obj, attr, _), fn in zip(targets, originals):
            setattr(obj, attr, fn)


def _start_worker_timers(dask_worker):
    timers = stage_timers()
    dask_worker.bench_stage_timers = (timers, timers.__enter__())


def _stop_worker_timers(dask_worker):
    timers, totals = dask_worker.bench_stage_timers
    timers.__exit__(None, None, None)
    return dict(totals)


def warm_up(model):
    """Compile what a blind gray and a blind colour photo use (the noise estimate's kernel included),
    and the PNG writer's."""
    for shape in ((64, 64), (64, 64, 3)):
        image = np.zeros(shape, np.uint8)
        image.flags.writeable = False  # as decoded files come (Numba compiles read-only arrays apart)
        io.encode_image(denoise.denoise_image(model, image), ".png")


def end_to_end(model, path: Path):
    data = path.read_bytes()
    warm_up(model)  # compile outside the timing
    with stage_timers() as st:
        t0 = time.perf_counter()
        image, info = io.read_image(path, data)
        out = denoise.denoise_image(model, image)  # blind: the noise level estimated, as `denoise run` does
        io.encode_image(out, ".png", info)
        total = time.perf_counter() - t0
    stages = {k: st[k] for k in STAGES}
    stages["other (noise estimate, colour, pad, crop, convert)"] = total - sum(stages.values())
    forward_rate = st["forward FLOPs"] / st["forward"] / 1e9
    mp = image.shape[0] * image.shape[1] / 1e6
    t = time.perf_counter()
    Image.fromarray(out).save(BytesIO(), format="PNG")  # before: Pillow's default zlib level 6
    encode_level6 = time.perf_counter() - t
    return mp, total, stages, encode_level6, forward_rate


def photo(megapixels: float, gray: bool, seed=0) -> np.ndarray:
    a, _ = io.read_image(PHOTO)
    if gray:
        a = np.asarray(Image.fromarray(a).convert("L"))
    side_h = int(np.sqrt(megapixels * 1e6 * a.shape[0] / a.shape[1]))
    side_w = int(megapixels * 1e6 / side_h)
    reps = (side_h // a.shape[0] + 1, side_w // a.shape[1] + 1) + ((1,) if a.ndim == 3 else ())
    big = np.tile(a, reps)[:side_h, :side_w]
    noise = np.random.default_rng(seed).normal(0, 25, big.shape).astype(np.float32)
    return np.clip(big + noise, 0, 255).astype(np.uint8)


def _compile_on_worker(sha: str, data: bytes):
    """Load and compile the model in this worker process, as its first task would."""
    warm_up(distributed._model(sha, data))


def folder_run(src: Path, out: Path, workers: int, model: str, tile: float = 4.0):
    """(megapixels, seconds, peak RSS per worker, stage seconds summed over the workers)

    Every worker has compiled the model before the timing starts (0.7-0.8 s
    for ``fast`` here): the one-file warm-up run reaches one worker only, and
    the others' compiling would count against N workers, not against 1."""
    client, cluster = connect(workers=workers)
    try:
        warm = Path(tempfile.mkdtemp())
        denoise_folder([ROOT / "sample_images" / "dogs_gray.png"], warm, model=model, client=client, progress=False)
        data = io.model_path(model).read_bytes()
        client.run(_compile_on_worker, hashlib.sha256(data).hexdigest(), data)
        client.run(_start_worker_timers)
        t, wall = time.perf_counter(), time.time()
        entries = denoise_folder([src], out, model=model, client=client, progress=False, overwrite=True,
                                 tile_megapixels=tile)  # blind, as `denoise run` by default
        dt, wall_end = time.perf_counter() - t, time.time()
        per_worker = client.run(_stop_worker_timers).values()
        rss = client.run(peak_rss_mb)
        gemm = client.run(gemm_peak, 2048)  # every worker at once, each on its one thread; after the peak RSS
    finally:
        client.close()
        cluster.close()
    assert all(e["status"] == "done" for e in entries), entries
    stages = {k: sum(w[k] for w in per_worker) for k in (*STAGES, "denoise_image", "forward FLOPs")}
    busy = [w for w in per_worker if w["first"] < float("inf")]  # a worker given no task idles throughout
    stages["before the first task"] = sum(w["first"] - wall for w in busy) + (len(per_worker) - len(busy)) * dt
    stages["after the last task"] = sum(wall_end - w["last"] for w in busy)
    stages["worker GEMM"] = float(np.median(list(gemm.values())))
    return sum(e["megapixels"] for e in entries), dt, max(rss.values()), stages


def baselines(image: np.ndarray, ours):
    """(name, Mpix/s, speed relative to ours) rows. OpenCV and ours are timed
    alternately, 5 rounds, and their ratio is the median of per-round ratios;
    BM3D, far slower, runs once."""
    mp = image.shape[0] * image.shape[1] / 1e6
    ours()
    rows = []
    try:
        import cv2

        def nlm():
            return cv2.fastNlMeansDenoisingColored(image, None, 25 * 0.6, 25 * 0.6, 7, 21)

        nlm()
        pairs = np.array([(once(ours), once(nlm)) for _ in range(5)])
        rows.append(("denoise (this model)", mp / np.median(pairs[:, 0]), 1.0))
        rows.append(("OpenCV fastNlMeansDenoisingColored", mp / np.median(pairs[:, 1]), float(np.median(pairs[:, 0] / pairs[:, 1]))))
    except ImportError:
        rows.append(("denoise (this model)", mp / median_time(ours, 3), 1.0))
        rows.append(("OpenCV (not installed)", float("nan"), float("nan")))
    try:
        import bm3d

        x = image.astype(np.float32) / 255
        rows.append(("BM3D (bm3d.bm3d_rgb)", mp / once(lambda: bm3d.bm3d_rgb(x, 25 / 255)), float("nan")))
    except ImportError:
        rows.append(("BM3D (not installed)", float("nan"), float("nan")))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--backends", default="numba,c,jax")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (1, 4, 16 MP), fewer files, one folder round")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--one-backend", metavar="BACKEND", help=argparse.SUPPRESS)
    ap.add_argument("--forward-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    model = denoise.load_model(args.model)
    a = model.arch
    if args.one_backend:
        be = args.one_backend
        [r] = interleaved_ratios([(forward_fn(model, be, 4096), a.flops_per_patch() * 4096)])
        print(ratio_line(f"{be} forward", r), flush=True)
        if args.forward_only:
            return
        keep_freed_memory()  # as train() does
        sampler = loop_sampler(model)
        for batch in (256, 512, 1024):  # at 512 and 1024 the loop in the same rounds as the step alone
            flops = a.training_flops_per_patch() * batch
            fns = [(training_fn(model, batch, be), flops)] + ([(training_fn(model, batch, be, sampler), flops)] if batch >= 512 else [])
            step, *loop = interleaved_ratios(fns, rounds=9)
            print(ratio_line(f"{be} training step b{batch}", step), flush=True)
            if loop:
                print(ratio_line(f"{be} sample+step b{batch}", loop[0]) + f";  time per step {np.median(step['rounds'] / loop[0]['rounds']):.2f}x"
                      " the step's alone (median of rounds)", flush=True)
        return
    print(f"model {args.model}: patch {a.patch}+2x{a.context} context, hidden {list(a.hidden)}, stride {model.stride}, "
          f"{a.flops_per_patch() / 1e6:.2f} MFLOP/patch, {a.flops_per_pixel(model.stride) / 1e3:.0f} kFLOP/pixel/plane")
    peak = gemm_peak()
    print(f"\nnumpy float32 GEMM (4096^3): {peak:.1f} GFLOP/s  ({os.cpu_count()} cores)")

    print("\nforward pass (batch 4096); training step alone (batch 256, 512 and 1024; the matrix products it does:")
    print(f"forward, weight gradients and every layer's input gradient but the first's, {a.training_flops_per_patch() / 1e6:.2f} "
          f"MFLOP/patch, {a.training_flops_per_patch() / a.flops_per_patch():.2f}x")
    print("forward); and the training loop, patch sampler included (batch 512 and 1024, in the same rounds as the step")
    print("alone, with the loop's time per step against the step's). Each timed alternately with")
    print("the GEMM, sustained (calls back to back for 0.5 s) and as one call after a pause; medians of per-round ratios,")
    print("the lowest and highest sustained round in brackets")
    print("(each backend in its own process: JAX's thread pool would slow everything measured after it; the training")
    print("rows with train()'s malloc settings, see denoise.memory.keep_freed_memory)")
    for be in args.backends.split(","):
        r = subprocess.run([sys.executable, "-W", "ignore", __file__, "--model", args.model, "--one-backend", be],
                           capture_output=True, text=True)
        print(r.stdout.rstrip() or f"  {be:6s} unavailable: {(r.stderr.strip().splitlines() or ['?'])[-1][:100]}")
    # each Dask worker of a local cluster is one single-threaded process: its forward pass against its GEMM
    one = {**os.environ, **dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")}
    print("  on 1 thread, as in each Dask worker (numpy's GEMM also on 1 thread):")
    r = subprocess.run([sys.executable, "-W", "ignore", __file__, "--model", args.model, "--one-backend", "numba", "--forward-only"],
                       capture_output=True, text=True, env=one)
    print(r.stdout.rstrip() or f"  numba  failed: {(r.stderr.strip().splitlines() or ['?'])[-1][:100]}")

    print("\nend to end, one photo (decode, denoise with the noise level estimated, as `denoise run` does by default,")
    print("encode PNG), 1 process")
    for gray in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "photo.png"
            Image.fromarray(photo(4.0, gray)).save(p, compress_level=1)
            gemm_before = gemm_peak()
            mp, total, stages, encode6, forward_rate = end_to_end(model, p)
            beside = (gemm_before + gemm_peak()) / 2  # the machine's rate drifts: measured just before and after
        kind = "gray" if gray else "RGB"
        print(f"  {kind} {mp:.1f} MP: {total:.2f} s, {mp / total:.3f} Mpix/s; forward {stages['forward'] / total:.0%} of time, "
              f"at {forward_rate:.1f} GFLOP/s ({forward_rate / beside:.1%} of GEMM, {beside:.1f} GFLOP/s, measured beside it)")
        for k, v in stages.items():
            print(f"    {k:36s} {v:7.3f} s  {v / total:6.1%}")
        before = total - stages["encode"] + encode6
        print(f"    before (PNG at zlib level 6, encode {encode6:.3f} s): {before:.2f} s, {mp / before:.3f} Mpix/s, "
              f"forward {stages['forward'] / before:.0%} of time")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "folder"
        src.mkdir()
        n = 4 if args.quick else 8
        for i in range(n):
            Image.fromarray(photo(2.0, gray=i % 2 == 0, seed=i)).save(src / f"p{i}.png", compress_level=1)
        print(f"\nfolder of {n} 2-MP photos (half gray, half RGB), Dask LocalCluster of single-threaded workers;")
        print("  where the workers' time goes, summed over workers, as a share of workers x wall time")
        counts = sorted({1, args.workers})
        rounds = 1 if args.quick or len(counts) == 1 else 3
        if rounds > 1:
            print(f"  {rounds} rounds, 1 and {args.workers} workers alternately (this machine's speed drifts between runs)")
        rates = {w: [] for w in counts}
        for r in range(rounds):
            for w in counts:
                mp, dt, rss, st = folder_run(src, tmp / f"out{w}-{r}", w, args.model)
                rates[w].append(mp / dt)
                rate = st["forward FLOPs"] / st["forward"] / 1e9
                print(f"  {w} worker(s): {mp / dt:.3f} Mpix/s, peak RSS/worker {rss:.0f} MB; "
                      f"outside the forward pass {1 - st['forward'] / (w * dt):.1%}; forward pass at {rate:.1f} GFLOP/s per worker, "
                      f"{rate / st['worker GEMM']:.1%} of a worker's 1-thread GEMM ({st['worker GEMM']:.1f}, all workers at once, "
                      f"right after)")
                split = {k: st[k] for k in STAGES}
                split["other in denoise_image (noise estimate, colour, pad, crop, convert)"] = st["denoise_image"] - sum(
                    st[k] for k in ("extract", "forward", "overlap-add"))
                outside = w * dt - st["denoise_image"] - st["decode"] - st["encode"]
                ends = " and ".join(f"{st[k] / (w * dt):.1%} {k}" for k in ("before the first task", "after the last task"))
                print("    " + ", ".join(f"{k} {v / (w * dt):.1%}" for k, v in split.items())
                      + f", outside the tasks (scheduling, transfers, idle) {outside / (w * dt):.1%}, of which {ends}")
        if len(counts) > 1:
            ratios = np.array(rates[args.workers]) / np.array(rates[1])
            how = f" (median of {rounds} alternating pairs: " + ", ".join(f"{x:.2f}" for x in ratios) + ")" if rounds > 1 else ""
            print(f"  scaling: {np.median(ratios):.2f}x with {args.workers} workers{how}")

        sizes = [1, 4, 16] if args.quick else [1, 4, 16, 64]
        print(f"\nsize scaling, gray, {args.workers} workers, tiles of 1 MP (so one image can use every worker)")
        times = []
        for mp_target in sizes:
            d = tmp / f"size{mp_target}"
            d.mkdir()
            Image.fromarray(photo(mp_target, gray=True)).save(d / "x.png", compress_level=1)
            mp, dt, rss, _ = folder_run(d, tmp / f"o{mp_target}", args.workers, args.model, tile=1.0)
            times.append((mp, dt))
            print(f"  {mp:6.1f} MP: {dt:7.2f} s  {mp / dt:.3f} Mpix/s  peak RSS/worker {rss:.0f} MB")
        x = np.log([t[0] for t in times])
        y = np.log([t[1] for t in times])
        print(f"  time ~ pixels^{np.polyfit(x, y, 1)[0]:.2f}")

    print("\nclassical baselines, same 1 MP RGB photo, 1 process")
    img = photo(1.0, gray=False)
    for name, rate, rel in baselines(img, lambda: denoise.denoise_image(model, img, 25 / 255)):
        name = name.replace("this model", args.model)
        rel = f"  speed relative to {args.model}: {rel:.2f}x (median of alternating rounds)" if rel == rel and rel != 1.0 else ""
        print(f"  {name:36s} {rate:.3f} Mpix/s{rel}")


if __name__ == "__main__":
    main()
