#!/usr/bin/env python3
"""Speed of one process: the model per backend, one file end to end, training's
sampler, and every hand-written kernel against the library code it replaces.
Each figure is compared with another measured in the same run, never with a
figure from another run.

Sections (``--section NAME``, repeatable; default: all):

backends   the forward pass (batch 4096) and the training step (batch 256, 512,
           1024), alone and with the patch sampler as the training loop runs
           it, per PyTensor backend (numba, c, jax), as GFLOP/s and as a share
           of numpy's float32 GEMM rate timed in the same rounds; each backend
           in its own process; the Numba forward pass also on one thread, as
           in a Dask worker, against a one-thread GEMM.
stages     one file as a worker of ``denoise run`` processes it (decode,
           denoise with the noise level estimated, encode PNG; one process,
           one thread, the workers' malloc settings), gray and RGB: seconds per
           stage (``denoise.stages``), the forward pass's rate against a
           one-thread GEMM timed beside it, and the overlap-add kernel against
           the numpy formulation on that file's patches.
sampler    training's draws per batch: ``denoise.noise.standard_normal`` (a
           table lookup) against numpy's ``rng.standard_normal(dtype=float32)``,
           its lookup kernel against numpy indexing, and the sampler's gather
           against numpy fancy indexing.
kernels    each hand-written Numba kernel and the PNG writer against a plain
           library equivalent written here, on a real run's workload (2 MP
           gray and RGB photos with the shipped ``fast`` and ``default``
           models; training batches), the time saved as a share of the
           end-to-end figure it belongs to, measured in the same rounds: a
           file's time in a folder run (pipeline kernels) or one training
           iteration, sample + step (sampler kernels). A kernel keeps its
           place at 5 % or more.
baselines  OpenCV fastNlMeans and BM3D Mpix/s on the same photo as ours, if
           installed (``pip install -e ".[bench]"``).

Every section's output goes to ``docs/performance.md`` (``--no-record``: print
only). Folder runs on Dask: ``scripts/bench_folder.py``.

Usage::

    python scripts/bench_speed.py                            # everything, full sizes
    python scripts/bench_speed.py --quick --section kernels  # a few minutes
    python scripts/bench_speed.py --section backends --model fast --backends numba,jax
"""

from __future__ import annotations

import functools
import os
import zlib

import benchkit as bk
import numpy as np

import denoise
from denoise import noise
from denoise import patches as P
from denoise.folders import Settings
from denoise.folders.tasks import denoise_bytes
from denoise.imagefile import list_images, read_float, read_image
from denoise.imaging import as_hwc, to_float, to_opponent
from denoise.memory import keep_freed_memory
from denoise.model import Autoencoder
from denoise.pipeline import DEFAULT_BATCH
from denoise.png import encode_png
from denoise.stages import collect
from denoise.training import PatchSampler, TrainConfig, compile_step
from denoise.training.sampler import _gather

#: Batch sizes of the shipped models' last training stage (the recipes in scripts/train_models.py).
TRAIN_BATCH = {"fast": 512, "default": 1024}
#: The order stages are printed in (denoise.pipeline, denoise.folders.tasks).
STAGES = ("decode", "estimate", "colour transform", "pad", "extract", "forward", "overlap-add", "crop", "denoise", "encode")
STAGE_LABELS = {"denoise": "rest of denoise_image (convert, checks)"}
KEEP = 0.05  # a kernel stays if it saves at least this share of its end-to-end figure


def add_arguments(ap):
    ap.add_argument("--model", default="default", help="model for backends, stages, sampler, baselines (default: %(default)s)")
    ap.add_argument("--backends", default="numba,c,jax")


# ---- backends


def backends(args):
    model = denoise.load_model(args.model)
    a = model.arch
    print(f"model {args.model}: patch {a.patch}+2x{a.context} context, hidden {list(a.hidden)}, stride {model.stride}, "
          f"{a.flops_per_patch() / 1e6:.2f} MFLOP/patch, {a.flops_per_pixel(model.stride) / 1e3:.0f} kFLOP/pixel/plane; "
          f"training {a.training_flops_per_patch() / 1e6:.2f} MFLOP/patch (the step's matrix products)")
    print(f"numpy float32 GEMM (4096^3): {bk.gemm_peak():.1f} GFLOP/s  ({os.cpu_count()} cores)")
    print("each row timed in turn with the GEMM: sustained (calls back to back for 0.5 s) and one call after a pause;")
    print("medians of per-round ratios, the lowest and highest sustained round in brackets. Each backend in its own process")
    print("(JAX's thread pool would slow what runs after it), training with the malloc settings `denoise train` applies")
    for be in args.backends.split(","):
        bk.in_child(__file__, "backend_rates", model=args.model, backend=be, quick=args.quick)
    print("on 1 thread, as in each Dask worker (numpy's GEMM also on 1 thread):")
    bk.in_child(__file__, "backend_rates", env=bk.WORKER_ENV, model=args.model, backend="numba", quick=args.quick, forward_only=True)


def backend_rates(model: str, backend: str, quick: bool, forward_only: bool = False):
    """Child process: print the forward and training rows of one backend."""
    model = denoise.load_model(model)
    a = model.arch
    rounds = 3 if quick else 7
    [r] = bk.interleaved_ratios([(forward_fn(model, backend, 4096), a.flops_per_patch() * 4096)], rounds=rounds)
    print(bk.ratio_line(f"{backend} forward", r), flush=True)
    if forward_only:
        return
    keep_freed_memory()  # as `denoise train` and scripts/train_models.py do
    sampler = sample_photos_sampler(model)
    for batch in (512,) if quick else (256, 512, 1024):
        flops = a.training_flops_per_patch() * batch
        fns = [(training_fn(model, batch, backend), flops)]
        if batch >= 512:
            fns.append((training_fn(model, batch, backend, sampler), flops))
        step, *loop = bk.interleaved_ratios(fns, rounds=rounds + 2)
        print(bk.ratio_line(f"{backend} training step b{batch}", step), flush=True)
        if loop:
            print(bk.ratio_line(f"{backend} sample+step b{batch}", loop[0])
                  + f";  time per step {np.median(step['rounds'] / loop[0]['rounds']):.2f}x the step's alone (median of rounds)",
                  flush=True)
    return


def forward_fn(model, backend, batch):
    ae = Autoencoder(model.arch, weights=model.get_weights(), backend=backend, meta=model.meta)
    x = np.random.default_rng(0).random((batch, model.arch.in_size - model.arch.noise_input), dtype=np.float32)
    return lambda: ae.reconstruct(x, 0.1)


def training_fn(model, batch=256, backend="numba", sampler=None):
    """One training step on fixed rows, or with ``sampler`` one iteration of the training
    loop as train() runs it: draw a batch of patches, start its step, read the previous
    step's loss (see :func:`benchkit.pipelined`)."""
    ae = Autoencoder(model.arch, weights=model.get_weights(), backend=backend)
    step, _, _ = compile_step(ae, TrainConfig(steps=1, batch_size=batch, backend=backend))
    rng = np.random.default_rng(0)
    if sampler is not None:
        return bk.pipelined(lambda: step(*sampler.sample(batch, rng)))
    x = rng.random((batch, model.arch.in_size - model.arch.noise_input), dtype=np.float32)
    y = rng.random((batch, model.arch.out_size), dtype=np.float32)
    s = np.full(batch, 0.1, np.float32)
    return lambda: float(step(x, s, y))  # float(): JAX returns before computing unless its result is read


def sample_photos_sampler(model):
    """A patch sampler over the sample photos, with the model's noise range."""
    photos = [read_float(p) for p in list_images(bk.SAMPLES)]
    return PatchSampler(photos, model.arch, noise.parse(model.meta.get("noise", "gaussian:0-55")))


# ---- one file, as a folder run's worker does it


def file_runs(models: list, megapixels: float, rounds: int, pairs: list | None = None, gemm: bool = False) -> dict:
    """Child process (set up as a worker: :data:`benchkit.WORKER_ENV`): for each model, a
    gray and an RGB photo, ``rounds`` rounds of the file task (``denoise_bytes``, stages
    collected) and of the pipeline kernels named in ``pairs`` (None: all) and their library
    equivalents on that file's workload (:func:`pipeline_pairs`); with ``gemm``, a 1-thread GEMM
    after each file."""
    results = {}
    for name in models:
        sha, data = bk.model_file(name)
        bk.warm_up(sha, data)
        model = denoise.load_model(name)
        for gray in (True, False):
            image = bk.noisy_photo(megapixels, gray=gray)
            png = bk.pillow_png(image, compress_level=1)
            settings = Settings()  # blind, PNG, as `denoise run` by default
            task = functools.partial(denoise_bytes, sha, data, "photo.png", png, ".png", settings)
            ok, value = task()
            if not ok:
                raise RuntimeError(value[0])
            out = read_image("out.png", value[0])[0]
            fns = {"file": task}
            work = pipeline_pairs(model, read_image("photo.png", png)[0], out)
            work = {k: v for k, v in work.items() if pairs is None or k in pairs}
            for pair, (ours, library) in work.items():
                fns[f"{pair}/ours"], fns[f"{pair}/library"] = ours, library
            times = {k: [] for k in fns}
            stage_rounds, gemms = [], []
            for r in range(rounds + 1):  # round 0: untimed, a warm-up for every function
                for key, fn in fns.items():
                    if key == "file":
                        with collect() as st:
                            t = bk.once(fn)
                        if r:
                            stage_rounds.append(st.as_dict())
                            gemms.append(bk.gemm_peak(2048) if gemm else 0.0)
                    else:
                        t = bk.once(fn)
                    if r:
                        times[key].append(t)
            results[f"{name}/{'gray' if gray else 'RGB'}"] = dict(
                megapixels=image.shape[0] * image.shape[1] / 1e6, times=times, stages=stage_rounds, gemm=gemms,
                flops_per_patch=model.arch.flops_per_patch(), checks={k: check_pair(*v) for k, v in work.items()})
    return results


def planes_of(image: np.ndarray) -> list[np.ndarray]:
    """The float32 (H, W, 1) planes that denoise_planes works through for a decoded photo
    (opponent planes for RGB, as denoise_image makes them for one-channel models)."""
    x = as_hwc(to_float(image))
    if x.shape[2] == 3:
        x = to_opponent(x)
    return [np.ascontiguousarray(x[:, :, k : k + 1]) for k in range(x.shape[2])]


def bands_of(model, plane):
    """``(grid, [(first grid row, patches)])``: the bands denoise_planes adds into a plane's
    accumulator, each patch the centre of its input window (realistic values; the forward
    pass is not run)."""
    a = model.arch
    g = P.grid(plane.shape, a.patch, model.stride)
    padded = P.pad(plane, g, a.context)
    per_band = max(1, DEFAULT_BATCH // g.count[1])
    full, k, p = a.in_patch, a.context, a.patch
    bands = []
    for r0 in range(0, g.count[0], per_band):
        rows = P.extract_padded(padded, g, a.context, slice(r0, min(r0 + per_band, g.count[0])))
        centre = rows.reshape(len(rows), full, full, 1)[:, k : k + p, k : k + p]
        bands.append((r0, np.ascontiguousarray(centre).reshape(len(rows), -1)))
    return g, bands


def numpy_overlap_add(acc, patches, g, first_row, weights):
    """:func:`denoise.patches.overlap_add` as numpy operations: one strided add per pixel of a patch."""
    p, s, c = g.size, g.stride, acc.shape[2]
    nx = g.count[1]
    ny = len(patches) // nx
    blocks = patches.reshape(ny, nx, p, p, c)
    y0 = first_row * s
    for dy in range(p):
        for dx in range(p):
            acc[y0 + dy : y0 + dy + (ny - 1) * s + 1 : s, dx : dx + (nx - 1) * s + 1 : s] += blocks[:, :, dy, dx] * weights[dy, dx]










def pipeline_pairs(model, image: np.ndarray, out: np.ndarray) -> dict:
    """name -> (our kernel's call, the library equivalent's call) on the workload of one file:
    the decoded photo ``image`` and its denoised result ``out``, as a folder run's task has them."""
    window = model.meta.get("window", "flat")
    planes = planes_of(image)
    grids = [bands_of(model, x) for x in planes]
    win = P.window(model.arch.patch, window)

    def add_all(add):
        def run():
            accs = []
            for x, (g, bands) in zip(planes, grids):
                acc = P.accumulator(x.shape, g)
                for r0, patches in bands:
                    add(acc, patches, g, r0, win)
                accs.append(acc)
            return accs
        return run

    pairs = {
        "overlap-add": (add_all(P.overlap_add), add_all(numpy_overlap_add)),
    }
    pairs["PNG writer vs Pillow level 1"] = (lambda: encode_png(out), lambda: bk.pillow_png(out, compress_level=1))
    pairs["PNG writer vs Pillow level 1, RLE"] = (lambda: encode_png(out),
                                                  lambda: bk.pillow_png(out, compress_level=1, compress_type=zlib.Z_RLE))
    pairs["PNG writer vs Pillow default"] = (lambda: encode_png(out), lambda: bk.pillow_png(out))
    return pairs


def check_pair(ours, library) -> str:
    """How the two results compare: equal, the largest difference, or (PNG) the files' sizes."""
    a, b = ours(), library()
    if isinstance(a, bytes):
        return f"{len(a) / 1e6:.2f} MB against {len(b) / 1e6:.2f} MB"
    a = a if isinstance(a, (list, tuple)) else [a]
    b = b if isinstance(b, (list, tuple)) else [b]
    diff = max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))) for x, y in zip(a, b))
    return "same values" if diff == 0 else f"differ by up to {diff:.1e}"


def stage_split(res: dict) -> tuple[float, dict]:
    """(median file seconds, {stage: median seconds}) of one photo's rounds; "other" is the task's time outside any stage."""
    total = float(np.median(res["times"]["file"]))
    split = {k: float(np.median([st["seconds"].get(k, 0.0) for st in res["stages"]])) for k in STAGES}
    split["other"] = float(np.median([t - sum(st["seconds"].values()) for t, st in zip(res["times"]["file"], res["stages"])]))
    return total, {k: v for k, v in split.items() if v > 0 or k in ("decode", "forward", "encode")}


def stages(args):
    mp, rounds = (2.0, 3) if args.quick else (4.0, 5)
    print(f"one {mp:g} MP file as a worker of `denoise run` processes it (decode, denoise blind, encode PNG): one process,")
    print(f"one thread, the workers' malloc settings; model {args.model}; medians of {rounds} rounds")
    res = bk.in_child(__file__, "file_runs", env=bk.WORKER_ENV, models=[args.model], megapixels=mp, rounds=rounds,
                      pairs=["overlap-add"], gemm=True)
    if res is None:
        return
    for key, r in res.items():
        total, split = stage_split(r)
        fwd = [st["work"]["forward"] * r["flops_per_patch"] / st["seconds"]["forward"] / 1e9 for st in r["stages"]]
        ratio = np.median(np.array(fwd) / np.array(r["gemm"]))
        print(f"  {key.split('/')[1]} {r['megapixels']:.1f} MP: {total:.2f} s, {r['megapixels'] / total:.3f} Mpix/s; forward pass at "
              f"{np.median(fwd):.1f} GFLOP/s, {ratio:.0%} of a 1-thread GEMM timed after each file ({np.median(r['gemm']):.1f} GFLOP/s)")
        for k, v in split.items():
            print(f"    {STAGE_LABELS.get(k, k):40s} {v:7.3f} s  {v / total:6.1%}")
        ours, lib = np.array(r["times"]["overlap-add/ours"]), np.array(r["times"]["overlap-add/library"])
        print(f"    overlap-add: our kernel {np.median(ours) * 1e3:.0f} ms, the numpy formulation (one strided add per pixel of a patch) "
              f"{np.median(lib) * 1e3:.0f} ms: {np.median(lib / ours):.1f}x the kernel's time ({r['checks']['overlap-add']})")
    return


# ---- training's draws


def sampler_pairs(sampler: PatchSampler, batch: int, seed: int = 0) -> dict:
    """name -> (our kernel's call, the library equivalent's call) on one training batch of ``sampler``."""
    rng = np.random.default_rng(seed)
    a = sampler.arch
    shape = (batch, a.in_patch, a.in_patch, a.channels)
    src, first, tables, which, t = gather_inputs(sampler, batch, np.random.default_rng(seed))
    out = np.empty((batch, a.in_patch * a.in_patch * a.channels), np.float32)
    return {
        "standard_normal": (lambda: noise.standard_normal(rng, shape), lambda: rng.standard_normal(shape, dtype=np.float32)),
        "sampler gather": (lambda: (_gather(src, first, tables, which, t, out), out)[1],
                           lambda: src[first[:, None] + tables[which, t]]),
    }


def gather_inputs(sampler: PatchSampler, n: int, rng):
    """The arguments PatchSampler.sample passes its gather kernel for a batch of ``n`` (its own index
    arithmetic, repeated here; :func:`check_gather_inputs` holds it to the sampler's output)."""
    a = sampler.arch
    p = a.in_patch
    which = np.sort(rng.choice(len(sampler.usable), size=n, p=sampler.prob))
    u = rng.random((n, 3))
    t = rng.integers(0, sampler.transforms, n)
    h, wd, nc = sampler._shapes[which].T
    y = (u[:, 0] * (h - p + 1)).astype(np.intp)
    x = (u[:, 1] * (wd - p + 1)).astype(np.intp)
    plane = (u[:, 2] * nc).astype(np.intp) if a.channels == 1 else 0
    first = sampler._base[which] + ((plane * h + y) * wd + x) * a.channels
    return sampler._buffer, first, sampler._tables, sampler._table[which], t


def check_gather_inputs(sampler: PatchSampler, n: int = 64) -> None:
    a = sampler.arch
    src, first, tables, which, t = gather_inputs(sampler, n, np.random.default_rng(7))
    clean = src[first[:, None] + tables[which, t]].reshape(n, a.in_patch, a.in_patch, a.channels)
    k, q = a.context, a.patch
    _, _, target = sampler.sample(n, np.random.default_rng(7))
    if not np.array_equal(clean[:, k : k + q, k : k + q].reshape(n, -1), target):
        raise RuntimeError("gather_inputs no longer repeats PatchSampler.sample's index arithmetic: update it")


def training_runs(models: list, rounds: int, batches: dict | None = None) -> dict:
    """Child process (with the malloc settings `denoise train` applies): per model, ``rounds``
    rounds of one training iteration (sample + step, batch :data:`TRAIN_BATCH`) and of each sampler
    kernel and its library equivalent on that batch."""
    keep_freed_memory()
    results = {}
    for name in models:
        model = denoise.load_model(name)
        batch = (batches or TRAIN_BATCH)[name]
        sampler = sample_photos_sampler(model)
        check_gather_inputs(sampler)
        ae = Autoencoder(model.arch, weights=model.get_weights())
        step, _, _ = compile_step(ae, TrainConfig(steps=1, batch_size=batch))
        fns = {"iteration": functools.partial(iteration, step, sampler, batch, np.random.default_rng(1))}
        work = sampler_pairs(sampler, batch)
        for pair, (ours, library) in work.items():
            fns[f"{pair}/ours"], fns[f"{pair}/library"] = ours, library
        times = bk.alternating(fns, rounds)
        results[f"{name}/b{batch}"] = dict(times={k: v.tolist() for k, v in times.items()},
                                            checks={k: check_pair(*v) for k, v in work.items() if k != "standard_normal"})
        results[f"{name}/b{batch}"]["checks"]["standard_normal"] = "other draws, same distribution"
    return results


def iteration(step, sampler, batch, rng) -> float:
    """One training iteration as train() runs it on Numba: draw a batch, step, read the loss."""
    return float(step(*sampler.sample(batch, rng)))


def sampler(args):
    rounds = 15 if args.quick else 41
    batches = (512,) if args.quick else (256, 512, 1024)
    print(f"training's draws for model {args.model}, per batch (patches from the sample photos); one process with the malloc")
    print(f"settings `denoise train` applies; medians of {rounds} alternating rounds, and of per-round ratios")
    for batch in batches:
        res = bk.in_child(__file__, "training_runs", models=[args.model], rounds=rounds, batches={args.model: batch})
        if res is None:
            return
        [r] = res.values()
        t = {k: np.array(v) for k, v in r["times"].items()}
        print(f"  batch {batch}: one training iteration (sample + step) {np.median(t['iteration']) * 1e3:.1f} ms")
        for pair, (kernel, lib) in SAMPLER_KERNELS.items():
            ours, other = t[f"{pair}/ours"], t[f"{pair}/library"]
            print(f"    {kernel:40s} {np.median(ours) * 1e3:7.2f} ms;  {lib}: {np.median(other) * 1e3:7.2f} ms, "
                  f"{np.median(other / ours):.2f}x ours;  saving {np.median((other - ours) / t['iteration']):.1%} of an iteration "
                  f"({r['checks'][pair]})")
    return


# ---- kernels


PIPELINE_KERNELS = {
    "overlap-add": ("patches._overlap_add", "numpy: one strided add per patch pixel"),
    "PNG writer vs Pillow level 1": ("denoise.png writer", "Pillow PNG, compress_level=1"),
    "PNG writer vs Pillow level 1, RLE": ("denoise.png writer", "Pillow PNG, compress_level=1, Z_RLE (our deflate settings)"),
    "PNG writer vs Pillow default": ("denoise.png writer", "Pillow PNG, default (level 6)"),
}
SAMPLER_KERNELS = {
    "standard_normal": ("noise.standard_normal (table lookup)", "numpy rng.standard_normal(dtype=float32)"),
    "sampler gather": ("training.sampler._gather", "numpy fancy indexing"),
}


def kernels(args):
    mp, rounds, train_rounds = 2.0, (2 if args.quick else 5), (15 if args.quick else 41)
    files = bk.in_child(__file__, "file_runs", env=bk.WORKER_ENV, models=["fast", "default"], megapixels=mp, rounds=rounds)
    training = bk.in_child(__file__, "training_runs", models=["fast", "default"], rounds=train_rounds)
    if files is None or training is None:
        return None
    head = ("| kernel | workload | kernel ms | library equivalent | library ms | saved ms | end-to-end ms | saved | verdict | results |\n"
            "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |")
    rows, best = [], {}

    def row(names, workload, t, pair, figure, check):
        ours, lib, total = t[f"{pair}/ours"], t[f"{pair}/library"], t[figure]
        share = float(np.median((lib - ours) / total))
        if share > best.get(names, (-np.inf, ""))[0]:
            best[names] = (share, workload)
        rows.append(f"| {names[0]} | {workload} | {ms(ours)} | {names[1]} | {ms(lib)} | {ms(lib - ours)} | {ms(total)} | "
                    f"{share:.1%} | {verdict(share)} | {check} |")

    for key, r in files.items():
        t = {k: np.array(v) for k, v in r["times"].items()}
        for pair, names in PIPELINE_KERNELS.items():
            if f"{pair}/ours" in t:
                row(names, f"{key} {r['megapixels']:.1f} MP file", t, pair, "file", r["checks"][pair])
    for key, r in training.items():
        t = {k: np.array(v) for k, v in r["times"].items()}
        for pair, names in SAMPLER_KERNELS.items():
            row(names, f"{key} training iteration", t, pair, "iteration", r["checks"][pair])
    summary = ["| kernel | against | largest saving | on | verdict |", "| --- | --- | ---: | --- | --- |"]
    summary += [f"| {k} | {lib} | {share:.1%} | {on} | {verdict(share)} |" for (k, lib), (share, on) in best.items()]
    text = "\n".join([head, *rows, "", "Per kernel, its largest saving over these workloads:", "", *summary])
    intro = (f"Each kernel and its library equivalent timed on the workload of a real run, in the same rounds as the end-to-end "
             f"figure the saving is a share of: for pipeline kernels one file of a folder run (the task `denoise_bytes`: decode, "
             f"denoise blind, encode PNG) in a process set up as a worker (one thread, the workers' malloc settings), medians of "
             f"{rounds} rounds; for sampler kernels one training iteration (sample + step, the shipped model's batch size, "
             f"patches from the sample photos), medians of {train_rounds} rounds. *saved*: the median of per-round "
             f"(library - kernel) / end-to-end. A kernel keeps its place at {KEEP:.0%} or more.")
    print(intro + "\n\n" + text)
    return intro + "\n\n" + text


def ms(seconds) -> str:
    """Median milliseconds, to three figures or more."""
    x = float(np.median(seconds)) * 1e3
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}" if abs(x) < 1000 else f"{x:.0f}"


def verdict(share: float) -> str:
    return "keeps" if share >= KEEP else "below 5 %"


# ---- baselines


def baselines(args):
    model = denoise.load_model(args.model)
    image = bk.noisy_photo(1.0)
    mp = image.shape[0] * image.shape[1] / 1e6
    print("classical baselines, the same 1 MP RGB photo (noise 25), sigma given, 1 process")

    def ours():
        return denoise.denoise_image(model, image, 25 / 255)

    ours()
    try:
        import cv2

        def nlm():
            return cv2.fastNlMeansDenoisingColored(image, None, 25 * 0.6, 25 * 0.6, 7, 21)

        t = bk.alternating({"ours": ours, "nlm": nlm}, 5)
        print(f"  {'denoise (' + args.model + ')':36s} {mp / np.median(t['ours']):.3f} Mpix/s")
        print(f"  {'OpenCV fastNlMeansDenoisingColored':36s} {mp / np.median(t['nlm']):.3f} Mpix/s; "
              f"{np.median(t['nlm'] / t['ours']):.2f}x our time (median of 5 alternating rounds)")
    except ImportError:
        print(f"  {'denoise (' + args.model + ')':36s} {mp / bk.median_time(ours, 3):.3f} Mpix/s")
        print("  OpenCV: not installed")
    try:
        import bm3d

        x = image.astype(np.float32) / 255
        print(f"  {'BM3D (bm3d.bm3d_rgb)':36s} {mp / bk.once(lambda: bm3d.bm3d_rgb(x, 25 / 255)):.3f} Mpix/s (one call)")
    except ImportError:
        print("  BM3D: not installed")


SECTIONS = {"backends": backends, "stages": stages, "sampler": sampler, "kernels": kernels, "baselines": baselines}

if __name__ == "__main__":
    bk.main(__doc__, SECTIONS, add_arguments=add_arguments, namespace=globals())
