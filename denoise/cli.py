"""The ``denoise`` command: train, run, eval, models.

Exit status: 0 success, 1 when any file failed, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import signal
import sys
import threading
from pathlib import Path

import numpy as np

from . import __version__

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


def _strength(text: str) -> float:
    from .pipeline import check_strength

    try:
        return check_strength(float(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--strength: {e}; got {text!r}") from None


def _quality(text: str) -> int:
    try:
        q = int(text)
    except ValueError:
        q = None
    if q is None or not 1 <= q <= 100:
        raise argparse.ArgumentTypeError(f"--jpeg-quality must be an integer from 1 to 100; got {text!r}")
    return q


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
    from .folders.plan import OUTPUT_FORMATS
    from .pipeline import ENSEMBLES

    ap = argparse.ArgumentParser(prog="denoise", description="Learned batch image denoising (PyTensor + Dask).")
    ap.add_argument("-v", "--verbose", action="store_true", help="full error details")
    ap.add_argument("--version", action="version", version=f"denoise {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="full error details")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser = functools.partial(sub.add_parser, parents=[common])

    _add_train(sub)
    _add_run(sub, OUTPUT_FORMATS, ENSEMBLES)
    _add_eval(sub, ENSEMBLES)
    sub.add_parser("models", help="list shipped models with their model cards")
    return ap


def _add_train(sub) -> None:
    from .backends import BACKENDS

    t = sub.add_parser("train", help="train a model on your own photos")
    t.add_argument("--clean", required=True, type=Path, help="folder of clean images")
    t.add_argument("--noisy", type=Path, help="folder of real noisy images paired by name with --clean")
    t.add_argument("--val", type=Path, help="folder of held-back clean images for validation (default: every 8th of --clean)")
    t.add_argument("--noise", default="gaussian:25", help="noise spec, e.g. gaussian:25, gaussian:5-50, camera:0-100, or a mixture joined by '+' "
                        "(default: %(default)s)")
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


def _add_run(sub, formats, ensembles) -> None:
    r = sub.add_parser("run", help="denoise image files and folders")
    r.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders")
    r.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    r.add_argument("--model", default="default", help="shipped model name or model file (default: %(default)s)")
    r.add_argument("--sigma", type=_sigma, default=None, help="noise level in 8-bit units (25 = 25/255), or auto (default)")
    r.add_argument("--stride", type=_positive(int), help="patch stride (default: the model's)")
    r.add_argument("--ensemble", type=int, choices=ensembles, default=1,
                   help="average over this many rotations/reflections of each patch: N times slower, slightly better (default: 1)")
    r.add_argument("--strength", type=_strength, default=1.0,
                   help="multiply the noise level given to the model: below 1 keeps more detail, above 1 smooths more "
                        "(0.1 to 10; default: 1)")
    r.add_argument("--recursive", action="store_true", help="include sub-folders, mirrored in the output")
    r.add_argument("--format", choices=formats, default="keep", help="output format (default: keep the input's)")
    r.add_argument("--jpeg-quality", type=_quality, default=95, metavar="Q", help="JPEG/WebP quality, 1 to 100 (default: 95)")
    r.add_argument("--report", type=Path, help="write a JSON report of every file")
    r.add_argument("--preview", type=Path, metavar="SHEET.png",
                   help="write a before/after contact sheet of the files done (the first 12)")
    r.add_argument("--overwrite", action="store_true", help="redo outputs already done with the same model and settings")
    r.add_argument("--tile", type=_positive(float), default=4.0, metavar="MP",
                   help="split images larger than this many megapixels into tiles (default: %(default)s)")
    r.add_argument("--workers", type=_positive(int), help="local worker processes (default: one per core)")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="use an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (default: $DASK_SCHEDULER_ADDRESS, else a local cluster)")
    r.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def _add_eval(sub, ensembles) -> None:
    e = sub.add_parser("eval", help="PSNR/SSIM of a model on clean images with synthetic noise")
    e.add_argument("--model", default="default")
    e.add_argument("--clean", required=True, type=Path)
    e.add_argument("--noise", default="gaussian:25")
    e.add_argument("--sigma", type=_sigma, default=None, help="noise level given to the model (default: auto)")
    e.add_argument("--ensemble", type=int, choices=ensembles, default=1, help="as for run (default: 1)")
    e.add_argument("--strength", type=_strength, default=1.0, help="as for run (default: 1)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", type=Path, help="write the results as JSON")


def cmd_train(args) -> int:
    import denoise

    from .imagefile import list_images, read_float
    from .memory import keep_freed_memory
    from .noise import mixture_spec, parse_mixture
    from .training.data import holdout_split

    noises = parse_mixture(args.noise)
    files = list_images(args.clean)
    if not files:
        raise ValueError(f"no images in {args.clean}")
    if args.output.exists() and not args.resume:
        raise ValueError(f"{args.output} exists; pass --resume to continue training it, or choose another -o")
    if args.noisy:
        noisy_files = [args.noisy / f.name for f in files]
        missing = [str(p) for p in noisy_files if not p.is_file()]
        if missing:
            raise ValueError(f"--noisy has no counterpart for {len(missing)} clean images, e.g. {missing[0]}")
    if args.val:
        val_files, train_files = list_images(args.val), files
    else:
        train_files, val_files = holdout_split(files)
    clean = [read_float(f) for f in train_files]
    noisy = [read_float(args.noisy / f.name) for f in train_files] if args.noisy else None
    val_clean = [read_float(f) for f in val_files]
    val_noisy = [read_float(args.noisy / f.name) for f in val_files] if (args.noisy and not args.val) else None
    auto = len(noises) > 1 or noises[0].is_range or noises[0].kind == "camera" or bool(args.noisy)
    noise_input = {"yes": True, "no": False, "auto": auto}[args.noise_input]
    if args.resume and args.output.exists():
        model = denoise.load_model(args.output, backend=args.backend)
    else:
        arch = denoise.Architecture(
            patch=args.patch, context=args.context, channels=args.channels, hidden=args.hidden, noise_input=noise_input
        )
        model = denoise.Autoencoder(arch, seed=args.seed, backend=args.backend)
    cfg = denoise.TrainConfig(
        noise=mixture_spec(noises), steps=args.steps, epochs=args.epochs, minutes=args.minutes, epoch_steps=args.epoch_steps,
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, seed=args.seed, backend=args.backend,
        lr_decay="cosine",
    )
    meta = {"provenance": {"clean": str(args.clean), "noisy": str(args.noisy) if args.noisy else None,
                           "images": len(train_files), "seed": args.seed}}
    if args.stride:
        meta["stride"] = args.stride
    args.output.parent.mkdir(parents=True, exist_ok=True)
    keep_freed_memory()  # this process is ours: keep freed memory for the next step (denoise.memory)
    model = denoise.train(model, clean, cfg, noisy=noisy, val_clean=val_clean, val_noisy=val_noisy,
                          checkpoint=args.output, meta=meta)
    hist = model.meta["history"]
    print(f"trained {model.meta['steps']} steps; validation PSNR {hist[0][2]} -> {hist[-1][2]} dB; wrote {args.output}")
    return 0


def cmd_run(args) -> int:
    from .folders import denoise_folder
    from .folders.report import summary
    from .folders.run import ReportError

    report_error = None
    try:
        entries = denoise_folder(
            args.inputs, args.output, model=args.model, sigma=args.sigma, stride=args.stride, ensemble=args.ensemble,
            strength=args.strength,
            recursive=args.recursive, fmt=args.format, jpeg_quality=args.jpeg_quality, tile_megapixels=args.tile,
            overwrite=args.overwrite, workers=args.workers, scheduler=args.scheduler,
            progress=False if args.quiet else None, report=args.report,
        )
    except ReportError as exc:  # the work is done: say what failed, then why the report is missing
        entries, report_error = exc.entries, exc
    failed = [e for e in entries if e["status"] == "failed"]
    for e in failed:
        print(f"failed: {e['file']}: {e['reason']}", file=sys.stderr)
    counts = summary(entries)
    if not args.quiet:
        print(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed", file=sys.stderr)
    if report_error is not None:
        print(f"denoise run: error: {report_error}", file=sys.stderr)
        return 2
    if args.preview:
        from .preview import contact_sheet

        pairs = [(e["file"], e["output"]) for e in entries if e["status"] in ("done", "skipped")]
        rows = contact_sheet(pairs, args.preview)
        if not args.quiet:
            print(f"wrote a before/after sheet of {rows} file(s) to {args.preview}", file=sys.stderr)
    return 1 if failed else 0


def cmd_eval(args) -> int:
    from .imagefile import list_images, read_float
    from .metrics import psnr, ssim
    from .modelfile import load_model
    from .noise import parse
    from .pipeline import denoise_image

    model = load_model(args.model)
    noise = parse(args.noise)
    files = list_images(args.clean)
    if not files:
        raise ValueError(f"no images in {args.clean}")
    rows = []
    print(f"{'image':32s} {'noisy PSNR':>10s} {'PSNR':>8s} {'noisy SSIM':>10s} {'SSIM':>7s}")
    for i, f in enumerate(files):
        clean = read_float(f)
        rng = np.random.default_rng([args.seed, i])
        noisy = noise.add(clean, rng)
        out = denoise_image(model, noisy, args.sigma, ensemble=args.ensemble, strength=args.strength)
        row = {
            "image": f.name,
            "noisy_psnr": psnr(clean, noisy), "psnr": psnr(clean, out),
            "noisy_ssim": ssim(clean, np.clip(noisy, 0, 1)), "ssim": ssim(clean, out),
        }
        rows.append(row)
        print(f"{f.name:32s} {row['noisy_psnr']:10.2f} {row['psnr']:8.2f} {row['noisy_ssim']:10.4f} {row['ssim']:7.4f}")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("noisy_psnr", "psnr", "noisy_ssim", "ssim")}
    print(f"{'mean':32s} {mean['noisy_psnr']:10.2f} {mean['psnr']:8.2f} {mean['noisy_ssim']:10.4f} {mean['ssim']:7.4f}")
    if args.json:
        from .storage import atomic_write

        atomic_write(args.json, json.dumps({"model": args.model, "noise": noise.spec, "seed": args.seed, "ensemble": args.ensemble,
                                         "strength": args.strength,
                                         "images": rows, "mean": mean}, indent=1).encode())
    return 0


def cmd_models(args) -> int:
    from .modelfile import list_models, load_model, model_card

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
    args = build_parser().parse_args(argv)
    commands = {"train": cmd_train, "run": cmd_run, "eval": cmd_eval, "models": cmd_models}
    with _console_log(args.verbose), _stop_signals() as stopped:
        try:
            return commands[args.command](args)
        except BaseException as exc:
            # Ctrl-C or SIGTERM raise KeyboardInterrupt, which compiled code may turn into
            # another error on its way up (a SystemError from Numba, say): the signal decides
            if stopped or isinstance(exc, KeyboardInterrupt):
                print("interrupted", file=sys.stderr)
                return 128 + (stopped[0] if stopped else signal.SIGINT)
            if isinstance(exc, (ValueError, OSError, ConnectionError)) and not args.verbose:
                print(f"denoise {args.command}: error: {exc}", file=sys.stderr)
                return 2
            raise


@contextlib.contextmanager
def _stop_signals():
    """For one command, SIGINT and SIGTERM (what a terminal's Ctrl-C and a batch
    scheduler or ``timeout`` send) raise KeyboardInterrupt, and the list yielded
    records which came; the handlers are as they were afterwards. A signal the
    process started with ignored stays ignored (as for a job run with ``nohup``)."""
    got: list[int] = []

    def stop(signum, frame):
        got.append(signum)
        raise KeyboardInterrupt

    saved = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is not signal.SIG_IGN:
                saved[sig] = signal.signal(sig, stop)
    try:
        yield got
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _console_log(verbose: bool):
    """The ``denoise`` logger's messages on standard error, plain, for one command;
    the logger is as it was afterwards."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    saved = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]


if __name__ == "__main__":
    sys.exit(main())
