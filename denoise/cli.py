"""The ``denoise`` command: train, run, eval, models.

Exit status: 0 success, 1 when any file failed, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("denoise")


def _sigma(text: str):
    """``auto`` -> None; a number -> that many 8-bit levels in [0, 1] units."""
    if text == "auto":
        return None
    try:
        level = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sigma must be 'auto' or a noise level in 8-bit units (e.g. 25); got {text!r}")
    if not (0 <= level < 256):
        raise argparse.ArgumentTypeError(f"--sigma must be between 0 and 255 (8-bit levels); got {text!r}")
    return level / 255.0


def _hidden(text: str):
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes comma-separated layer sizes, e.g. 512,256,512; got {text!r}")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--hidden sizes must be positive; got {text!r}")
    return sizes


def _positive(kind):
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}")
        if v <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}")
        return v

    return parse


def build_parser() -> argparse.ArgumentParser:
    from .files import OUTPUT_FORMATS
    from .backends import BACKENDS
    from .pipeline import ENSEMBLES

    ap = argparse.ArgumentParser(prog="denoise", description="Learned batch image denoising (PyTensor + Dask).")
    ap.add_argument("-v", "--verbose", action="store_true", help="full error details")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="full error details")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser = functools.partial(sub.add_parser, parents=[common])

    t = sub.add_parser("train", help="train a model on your own photos")
    t.add_argument("--clean", required=True, type=Path, help="folder of clean images")
    t.add_argument("--noisy", type=Path, help="folder of real noisy images paired by name with --clean")
    t.add_argument("--val", type=Path, help="folder of held-back clean images for validation (default: every 8th of --clean)")
    t.add_argument("--noise", default="gaussian:25", help="noise spec, e.g. gaussian:25 or gaussian:5-50 (default: %(default)s)")
    t.add_argument("-o", "--output", required=True, type=Path, help="model file to write (.npz)")
    t.add_argument("--patch", type=int, default=8, help="output patch size (default: %(default)s)")
    t.add_argument("--context", type=int, default=4, help="extra input pixels around each patch (default: %(default)s)")
    t.add_argument("--hidden", type=_hidden, default=(512, 256, 512), help="hidden layer sizes (default: 512,256,512)")
    t.add_argument("--channels", type=int, choices=(1, 3), default=1, help="1: per channel, 3: RGB jointly (default: 1)")
    t.add_argument("--noise-input", choices=("auto", "yes", "no"), default="auto",
                   help="give the model the noise level (default: yes for a noise range)")
    t.add_argument("--stride", type=int, help="default stride stored in the model (default: half the patch)")
    budget = t.add_mutually_exclusive_group(required=True)
    budget.add_argument("--steps", type=_positive(int), help="total optimiser steps")
    budget.add_argument("--epochs", type=_positive(int), help="epochs of --epoch-steps steps")
    budget.add_argument("--minutes", type=_positive(float), help="time budget for this call")
    t.add_argument("--epoch-steps", type=_positive(int), default=500, help="steps per epoch (default: %(default)s)")
    t.add_argument("--batch-size", type=_positive(int), default=512, help="patches per step (default: %(default)s)")
    t.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    t.add_argument("--lr", type=_positive(float), default=1e-3)
    t.add_argument("--backend", choices=sorted(BACKENDS), default="numba")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true", help="continue training the checkpoint in --output")

    r = sub.add_parser("run", help="denoise image files and folders")
    r.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders")
    r.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    r.add_argument("--model", default="default", help="shipped model name or model file (default: %(default)s)")
    r.add_argument("--sigma", type=_sigma, default=None, help="noise level in 8-bit units (25 = 25/255), or auto (default)")
    r.add_argument("--stride", type=_positive(int), help="patch stride (default: the model's)")
    r.add_argument("--ensemble", type=int, choices=ENSEMBLES, default=1,
                   help="average over this many rotations/reflections of each patch: N times slower, slightly better (default: 1)")
    r.add_argument("--recursive", action="store_true", help="include sub-folders, mirrored in the output")
    r.add_argument("--format", choices=OUTPUT_FORMATS, default="keep", help="output format (default: keep the input's)")
    r.add_argument("--jpeg-quality", type=int, default=95, choices=range(1, 101), metavar="Q", help="JPEG/WebP quality (default: 95)")
    r.add_argument("--report", type=Path, help="write a JSON report of every file")
    r.add_argument("--overwrite", action="store_true", help="redo outputs already done with the same model and settings")
    r.add_argument("--tile", type=_positive(float), default=4.0, metavar="MP",
                   help="split images larger than this many megapixels into tiles (default: %(default)s)")
    r.add_argument("--workers", type=_positive(int), help="local worker processes (default: one per core)")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="use an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (default: $DASK_SCHEDULER_ADDRESS, else a local cluster)")
    r.add_argument("--quiet", action="store_true", help="no progress bar or summary")

    e = sub.add_parser("eval", help="PSNR/SSIM of a model on clean images with synthetic noise")
    e.add_argument("--model", default="default")
    e.add_argument("--clean", required=True, type=Path)
    e.add_argument("--noise", default="gaussian:25")
    e.add_argument("--sigma", type=_sigma, default=None, help="noise level given to the model (default: auto)")
    e.add_argument("--ensemble", type=int, choices=ENSEMBLES, default=1, help="as for run (default: 1)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", type=Path, help="write the results as JSON")

    sub.add_parser("models", help="list shipped models with their model cards")
    return ap


def cmd_train(a) -> int:
    import denoise
    from . import io
    from .noise import parse

    noise = parse(a.noise)
    files = io.list_images(a.clean)
    if not files:
        raise ValueError(f"no images in {a.clean}")
    if a.output.exists() and not a.resume:
        raise ValueError(f"{a.output} exists; pass --resume to continue training it, or choose another -o")
    if a.noisy:
        noisy_files = [a.noisy / f.name for f in files]
        missing = [str(p) for p in noisy_files if not p.is_file()]
        if missing:
            raise ValueError(f"--noisy has no counterpart for {len(missing)} clean images, e.g. {missing[0]}")
    if a.val:
        val_files, train_files = io.list_images(a.val), files
    elif len(files) >= 2:
        val_files = files[::8]
        train_files = [f for f in files if f not in val_files]
    else:
        val_files, train_files = files, files
    clean = [io.read_float(f) for f in train_files]
    noisy = [io.read_float(a.noisy / f.name) for f in train_files] if a.noisy else None
    val_clean = [io.read_float(f) for f in val_files]
    val_noisy = [io.read_float(a.noisy / f.name) for f in val_files] if (a.noisy and not a.val) else None
    noise_input = {"yes": True, "no": False, "auto": noise.is_range or bool(a.noisy)}[a.noise_input]
    if a.resume and a.output.exists():
        model = denoise.load_model(a.output, backend=a.backend)
    else:
        arch = denoise.Architecture(
            patch=a.patch, context=a.context, channels=a.channels, hidden=a.hidden, noise_input=noise_input
        )
        model = denoise.Autoencoder(arch, seed=a.seed, backend=a.backend)
    cfg = denoise.TrainConfig(
        noise=noise.spec, steps=a.steps, epochs=a.epochs, minutes=a.minutes, epoch_steps=a.epoch_steps,
        batch_size=a.batch_size, optimizer=a.optimizer, lr=a.lr, seed=a.seed, backend=a.backend,
        lr_decay="cosine",
    )
    meta = {"provenance": {"clean": str(a.clean), "noisy": str(a.noisy) if a.noisy else None,
                           "images": len(train_files), "seed": a.seed}}
    if a.stride:
        meta["stride"] = a.stride
    a.output.parent.mkdir(parents=True, exist_ok=True)
    model = denoise.train(model, clean, cfg, noisy=noisy, val_clean=val_clean, val_noisy=val_noisy,
                          checkpoint=a.output, meta=meta)
    hist = model.meta["history"]
    print(f"trained {model.meta['steps']} steps; validation PSNR {hist[0][2]} -> {hist[-1][2]} dB; wrote {a.output}")
    return 0


def cmd_run(a) -> int:
    from .distributed import denoise_folder

    entries = denoise_folder(
        a.inputs, a.output, model=a.model, sigma=a.sigma, stride=a.stride, ensemble=a.ensemble, recursive=a.recursive, fmt=a.format,
        jpeg_quality=a.jpeg_quality, tile_megapixels=a.tile, overwrite=a.overwrite, workers=a.workers,
        scheduler=a.scheduler, progress=False if a.quiet else None, report=a.report,
    )
    failed = [e for e in entries if e["status"] == "failed"]
    for e in failed:
        print(f"failed: {e['file']}: {e['reason']}", file=sys.stderr)
    counts = {s: sum(e["status"] == s for e in entries) for s in ("done", "skipped", "failed")}
    if not a.quiet:
        print(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed", file=sys.stderr)
    return 1 if failed else 0


def cmd_eval(a) -> int:
    from . import io
    from .metrics import psnr, ssim
    from .noise import parse
    from .pipeline import denoise_image

    model = io.load_model(a.model)
    noise = parse(a.noise)
    files = io.list_images(a.clean)
    if not files:
        raise ValueError(f"no images in {a.clean}")
    rows = []
    print(f"{'image':32s} {'noisy PSNR':>10s} {'PSNR':>8s} {'noisy SSIM':>10s} {'SSIM':>7s}")
    for i, f in enumerate(files):
        clean = io.read_float(f)
        rng = np.random.default_rng([a.seed, i])
        noisy = noise.add(clean, rng)
        out = denoise_image(model, noisy, a.sigma, ensemble=a.ensemble)
        row = {
            "image": f.name,
            "noisy_psnr": psnr(clean, noisy), "psnr": psnr(clean, out),
            "noisy_ssim": ssim(clean, np.clip(noisy, 0, 1)), "ssim": ssim(clean, out),
        }
        rows.append(row)
        print(f"{f.name:32s} {row['noisy_psnr']:10.2f} {row['psnr']:8.2f} {row['noisy_ssim']:10.4f} {row['ssim']:7.4f}")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("noisy_psnr", "psnr", "noisy_ssim", "ssim")}
    print(f"{'mean':32s} {mean['noisy_psnr']:10.2f} {mean['psnr']:8.2f} {mean['noisy_ssim']:10.4f} {mean['ssim']:7.4f}")
    if a.json:
        from .io import atomic_write

        atomic_write(a.json, json.dumps({"model": a.model, "noise": noise.spec, "seed": a.seed, "ensemble": a.ensemble,
                                         "images": rows, "mean": mean}, indent=1).encode())
    return 0


def cmd_models(a) -> int:
    from .io import list_models, load_model, model_card

    for name in list_models():
        m = load_model(name)
        arch = m.arch
        print(f"{name}: patch {arch.patch}+{arch.context} context, hidden {list(arch.hidden)}, "
              f"noise {m.meta.get('noise')}, stride {m.stride}, "
              f"{arch.flops_per_pixel(m.stride) / 1e3:.0f} kFLOP/pixel")
    print()
    print(model_card())
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG if a.verbose else logging.WARNING)
    try:
        return {"train": cmd_train, "run": cmd_run, "eval": cmd_eval, "models": cmd_models}[a.command](a)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ConnectionError) as exc:
        if a.verbose:
            raise
        print(f"denoise {a.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
