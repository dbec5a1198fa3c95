#!/usr/bin/env python3
"""Reproducible training of the shipped models.

Each shipped model is defined here once: architecture, noise, seed, optimiser
and budget. Training checkpoints to ``runs/NAME.ckpt.npz`` after every epoch
and resumes from it when run again, so a long budget can be spread over many
calls. ``--ship`` writes the trained weights (float16) with their
provenance into ``denoise/models/NAME.npz``.

Data: the photographs made by ``scripts/training_data.py`` (freely licensed
photos from Debian and PyPI packages; reserved evaluation images and the
sample images excluded). Every 8th photo (sorted by name) is held back for
validation.

Usage::

    python scripts/training_data.py --max-megapixels 2
    python scripts/train_models.py default --minutes 40   # trains default-stage1, -stage2, then default; resumes from runs/*.ckpt.npz
    python scripts/train_models.py default --ship         # copy the checkpoint's weights into the package

A recipe with ``init`` starts from another recipe's finished weights (with a
fresh optimiser and step count); running it trains that recipe first if needed.
One with ``shipped`` starts from a shipped model's weights as the package holds them.

Training on a CUDA machine that cannot install packages from PyPI (one with
jax for CUDA, numba, numpy, scipy, Pillow and tqdm): ``--bundle`` puts what
it lacks into one folder (default ``.data/``, ignored by git), to copy there
beside a checkout of this repository: the wheels of :data:`WHEELS`, the
training photos, and the recipe's checkpoints so far (its own and those of
the recipes it starts from), so that the GPU continues the run the CPU
started::

    python scripts/train_models.py default --bundle .data      # here
    rsync -a ./ gpu-host:denoise/                              # the checkout, .data/ included
    ssh gpu-host 'cd denoise && python3 -m pip install --no-index --no-deps --target .data/site .data/wheels/*.whl \
        && PYTHONPATH=.data/site:. python3 scripts/train_models.py default --backend jax \
           --data .data/photos --runs .data/runs --minutes 30'
    scp gpu-host:denoise/.data/runs/default.ckpt.npz runs/     # then --ship as above

Record in ``denoise/models/MODELS.md`` where each part of a model's training ran.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import denoise
from denoise.backends import BACKENDS
from denoise.imagefile import list_images, read_float
from denoise.memory import keep_freed_memory
from denoise.architecture import Architecture
from denoise.modelfile import read_model_file, save_model
from denoise.training.data import holdout_split

ROOT = Path(__file__).resolve().parent.parent
DATA = Path.home() / ".cache" / "denoise" / "training_data" / "photos"

DEFAULT_ARCH = Architecture(patch=8, context=4, channels=1, hidden=(768, 384, 768), noise_input=True, residual=True)
FAST_ARCH = Architecture(patch=8, context=4, channels=1, hidden=(256, 128, 256), noise_input=True, residual=True)
# A candidate successor to "fast" (not shipped): fewer, wider layers on larger patches, at stride 8.
FAST_WIDE_ARCH = Architecture(patch=16, context=4, channels=1, hidden=(768, 768), noise_input=True, residual=True)

MODELS = {
    # Blind (noise-level-conditioned) per-channel model: one model for sigma 0-55. Stage 1 of "default".
    "default-stage1": dict(
        arch=DEFAULT_ARCH,
        noise="gaussian:0-55",
        stride=4,
        window="gaussian",
        batch_size=256,
        lr=1e-3,
        epoch_steps=1000,
        steps=120_000,
        seed=20261128,
    ),
    # Same task and data as "default", a ~6x smaller network (its speed against OpenCV's fastNlMeans:
    # scripts/bench_speed.py --section baselines --model fast). Stage 1.
    "fast-stage1": dict(
        arch=FAST_ARCH,
        noise="gaussian:0-55",
        stride=4,
        window="gaussian",
        batch_size=512,
        lr=1e-3,
        epoch_steps=1000,
        steps=150_000,
        seed=20261129,
    ),
}


def continued(first: str, **changes) -> dict:
    """A recipe that trains recipe ``first``'s finished weights further, with a fresh
    optimiser and step count: the same model, noise and stitching, other optimiser settings."""
    return {**MODELS[first], "init": first, **changes}


# Later stages: the previous stage trained on with a smaller learning rate (cosine decay again).
MODELS["default-stage2"] = continued("default-stage1", batch_size=512, lr=3e-4, steps=120_000, seed=20261201)
MODELS["default"] = continued("default-stage2", batch_size=1024, lr=2e-4, steps=60_000, seed=20261203)
MODELS["fast"] = continued("fast-stage1", lr=3e-4, steps=150_000, seed=20261202)

# The candidate: fast-stage1's recipe with FAST_WIDE_ARCH (2.1x the FLOPs per pixel), then a second stage
# like fast's. Stage 1 was first trained as a trial, in three calls between which the sampler's random
# stream changed, so a rerun will not repeat its weights.
MODELS["fast-wide-stage1"] = dict(MODELS["fast-stage1"], arch=FAST_WIDE_ARCH, stride=8)
MODELS["fast-wide"] = continued("fast-wide-stage1", lr=3e-4, steps=150_000, seed=20261204)

# Camera noise (issue: real photos): the shipped default's weights trained further on a mixture of white
# Gaussian noise (as before) and synthesised camera noise (denoise.camera), half of each batch each.
MODELS["default-camera"] = dict(MODELS["default-stage1"], shipped="default", noise="gaussian:0-55+camera:0-100",
                                batch_size=512, lr=2e-4, steps=40_000, seed=20261205)
# The same, with the white-noise half also given the blind estimate of its crop (not its true level): the
# trial above, given the true level for white noise, learnt that a low estimate on a textured crop means camera
# noise, and smoothed clean photos; here it also sees textured crops that read a few levels and are nearly clean.
MODELS["default-estimated"] = dict(MODELS["default-camera"], condition="estimate", steps=30_000, seed=20261206)
# The same mixture, white noise given its true level, camera noise's target the clean crop as the camera stores it
# (denoise.camera.camera_pair: 8-bit, same JPEG), not the picture itself: both trials above learnt to remove the
# picture's JPEG artefacts too, which at low camera noise are most of the difference, and so smoothed clean photos.
MODELS["default-mixture"] = dict(MODELS["default-camera"], steps=30_000, seed=20261207)
# The same, camera noise given the std of its noise over the crop (condition "std"), which the blind estimate reads
# only in part: at run time, photos declared camera photos get the estimate scaled back by the training crops' ratio.
MODELS["default-std"] = dict(MODELS["default-mixture"], condition="std", seed=20261208)


# The stronger-patch-model ablation (scripts/bench_ablation.py): each lever alone on one fixed budget, from
# scratch, on the same photos, noise, seed and schedule as each other; "colour" recipes take the RGB photos only,
# "scales" ones add each training photo downscaled by these factors.
ABLATION = dict(MODELS["default-stage1"], steps=60_000, seed=20261204)
MODELS["ablate-base"] = dict(ABLATION)
MODELS["ablate-surround"] = dict(ABLATION, arch=dataclasses.replace(DEFAULT_ARCH, surround=(4, 8)))
MODELS["ablate-neighbours"] = dict(ABLATION, arch=dataclasses.replace(DEFAULT_ARCH, neighbours=8))
MODELS["ablate-scales"] = dict(ABLATION, scales=(2,))
# joint colour predicts the clean patch, not its noise: a residual model's bottleneck must carry the noise of all
# three planes (192 independent values), which the one-channel model's 64 do not strain
MODELS["ablate-opponent"] = dict(ABLATION, arch=dataclasses.replace(DEFAULT_ARCH, channels=3, colour="opponent", residual=False),
                                 colour=True)
MODELS["ablate-colour-neighbours"] = dict(ABLATION, arch=dataclasses.replace(DEFAULT_ARCH, channels=3, neighbours=8),
                                          colour=True)
MODELS["ablate-colour"] = dict(ABLATION, arch=dataclasses.replace(DEFAULT_ARCH, channels=3), colour=True)
MODELS["ablate-colour-surround"] = dict(ABLATION, arch=dataclasses.replace(DEFAULT_ARCH, channels=3, surround=(4, 8)),
                                        colour=True)


#: What a CUDA machine with jax, numba, numpy, scipy, Pillow and tqdm lacks to train: PyTensor, the
#: packages PyTensor and its rewriting libraries require, and zlib-ng (denoise.png), as wheels.
WHEELS = ["pytensor==3.0.7", "cons", "etuples", "logical-unification", "miniKanren", "multipledispatch", "toolz",
          "typing_extensions", "filelock", "setuptools", "zlib-ng"]


def load_photos(folder: Path):
    files = list_images(folder)
    if not files:
        sys.exit(f"no photos in {folder}: run scripts/training_data.py first")
    train_files, val_files = holdout_split(files)
    return [read_float(f) for f in train_files], [read_float(f) for f in val_files], files


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=sorted(MODELS))
    ap.add_argument("--data", type=Path, default=DATA, help="folder of training photos (default: %(default)s)")
    ap.add_argument("--minutes", type=float, help="stop after this many minutes (this call)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs", help="checkpoint folder (default: %(default)s)")
    ap.add_argument("--backend", default="numba", choices=sorted(BACKENDS))
    ap.add_argument("--ship", action="store_true", help="write the checkpoint's weights into denoise/models/NAME.npz")
    ap.add_argument("--bundle", type=Path, metavar="DIR", help="put wheels, photos and checkpoints into DIR for a machine "
                    "without PyPI (see above), and stop")
    ap.add_argument("--python-version", default="3.12", help="with --bundle: the other machine's Python (default: %(default)s)")
    args = ap.parse_args(argv)

    ckpt = args.runs / f"{args.name}.ckpt.npz"
    if args.ship:
        return ship(args.name, ckpt)
    if args.bundle:
        return bundle(args.name, args.bundle, args.data, args.runs, args.python_version)
    keep_freed_memory()  # this process is ours: keep freed memory for the next step (see denoise.memory)
    args.runs.mkdir(parents=True, exist_ok=True)
    train, val, files = load_photos(args.data)
    print(f"{len(train)} training photos ({sum(x.shape[0] * x.shape[1] for x in train) / 1e6:.1f} MP), {len(val)} held back")
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    run(args.name, args, (train, val, files), deadline)


def downscaled(image: np.ndarray, factor: int) -> np.ndarray:
    """A float (H, W, C) photo made ``factor`` times smaller by averaging blocks of pixels
    (which keeps it noise-free and sharp: each output pixel is an area mean)."""
    h, w = (s // factor * factor for s in image.shape[:2])
    blocks = image[:h, :w].reshape(h // factor, factor, w // factor, factor, image.shape[2])
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def finished(name: str, runs: Path) -> bool:
    ckpt = runs / f"{name}.ckpt.npz"
    return ckpt.is_file() and int(read_model_file(ckpt)[2].get("state.step", 0)) >= MODELS[name]["steps"]


def run(name: str, args, data, deadline=None):
    """Train recipe ``name`` to its step budget (or the deadline), resuming from
    its checkpoint; a recipe with ``init`` first needs that recipe finished and
    starts from its weights."""
    spec = MODELS[name]
    train, val, files = data
    if spec.get("colour"):  # a three-channel model learns from the RGB photos
        train, val = ([x for x in xs if x.ndim == 3 and x.shape[2] == 3] for xs in (train, val))
    train = train + [downscaled(x, f) for f in spec.get("scales", ()) for x in train]
    ckpt = args.runs / f"{name}.ckpt.npz"
    start = spec["arch"]
    if "shipped" in spec:  # the package's weights of a shipped model, whatever trained them
        start = denoise.load_model(spec["shipped"], backend=args.backend)
    if "init" in spec:
        if not finished(spec["init"], args.runs):
            run(spec["init"], args, data, deadline)
            if not finished(spec["init"], args.runs):
                return
        start = denoise.load_model(args.runs / f"{spec['init']}.ckpt.npz", backend=args.backend)  # continued(): same arch
    minutes = None if deadline is None else (deadline - time.monotonic()) / 60
    if minutes is not None and minutes <= 0:
        return
    cfg = denoise.TrainConfig(
        noise=spec["noise"],
        steps=spec["steps"],
        minutes=minutes,
        epoch_steps=spec["epoch_steps"],
        batch_size=spec["batch_size"],
        lr=spec["lr"],
        seed=spec["seed"],
        backend=args.backend,
        condition=spec.get("condition", "true"),
    )
    manifest = args.data / "manifest.json"
    provenance = {
        "data": "scripts/training_data.py: freely licensed photographs from Debian and PyPI packages",
        "photos": len(files),
        "manifest": json.loads(manifest.read_text()) if manifest.exists() else None,
        "command": f"python scripts/train_models.py {name}",
    }
    if "init" in spec:
        provenance["init"] = {"recipe": spec["init"], "steps": MODELS[spec["init"]]["steps"]}
    if "shipped" in spec:
        provenance["init"] = {"shipped": spec["shipped"]}
    t0 = time.time()
    model = denoise.train(
        start,
        train,
        cfg,
        val_clean=val,
        checkpoint=ckpt,
        meta={"stride": spec["stride"], "window": spec["window"], "name": name, "provenance": provenance},
    )
    hist = model.meta["history"]
    print(f"{name}: {model.meta['steps']} steps, {time.time() - t0:.0f} s this call, validation PSNR {hist[-1][2]} dB")
    print(f"checkpoint: {ckpt}")


def ship(name: str, ckpt: Path):
    model = denoise.load_model(ckpt)
    hist = model.meta.get("history", [])
    model.meta["trained"] = {
        "steps": hist[-1][0] if hist else None,
        "final_validation_psnr": hist[-1][2] if hist else None,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "pytensor": __import__("pytensor").__version__,
    }
    model.meta.pop("history", None)
    model.meta.pop("steps", None)
    out = ROOT / "denoise" / "models" / f"{name}.npz"
    save_model(model, out, half=True)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


def bundle(name: str, out: Path, photos: Path, runs: Path, python_version: str) -> None:
    """Put into ``out`` what training recipe ``name`` needs on a machine without PyPI:
    ``wheels/`` (:data:`WHEELS`, for ``python_version`` on x86-64 Linux), ``photos/`` and
    ``runs/`` (the checkpoints of the recipe and of those it starts from, where they exist)."""
    wheels = out / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", python_version,
                    "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
                    "-d", str(wheels), *WHEELS], check=True)
    if (out / "photos").exists():
        shutil.rmtree(out / "photos")
    shutil.copytree(photos, out / "photos")
    (out / "runs").mkdir(exist_ok=True)
    while name:
        ckpt = runs / f"{name}.ckpt.npz"
        if ckpt.exists():
            shutil.copy(ckpt, out / "runs" / ckpt.name)
        name = MODELS[name].get("init")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
