"""The ``denoise`` command's arguments: the parser and the checks of each value."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from .. import __version__

__all__ = ["build_parser"]


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


def _scales(text: str):
    try:
        scales = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--surround takes comma-separated block sizes, e.g. 4,8; got {text!r}")
    if min(scales, default=1) < 1:
        raise argparse.ArgumentTypeError(f"--surround block sizes must be positive; got {text!r}")
    return scales


def _strength(text: str) -> float:
    from ..pipeline import check_strength

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


def _json_object(text: str) -> dict:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"--storage-options takes a JSON object ({e}); got {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"--storage-options takes a JSON object such as '{{\"anon\": true}}'; got {text!r}")
    return value


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
    from ..folders.plan import OUTPUT_FORMATS
    from ..pipeline import ENSEMBLES

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
    from ..backends import BACKENDS

    t = sub.add_parser("train", help="train a model on your own photos, clean or noisy")
    source = t.add_mutually_exclusive_group(required=True)
    source.add_argument("--clean", type=Path, help="folder of clean images (noise is added)")
    source.add_argument("--noisy-only", type=Path, metavar="DIR",
                        help="folder of noisy images with no clean versions: self-supervised (recorrupted-to-recorrupted), "
                             "validated on a held-back strip of each image")
    t.add_argument("--noisy", type=Path, help="folder of real noisy images paired by name with --clean")
    t.add_argument("--val", type=Path, help="folder of held-back clean images for validation (default: every 8th of --clean)")
    t.add_argument("--noise", help="with --clean: the noise to add, e.g. gaussian:25, gaussian:5-50, camera:0-100, or a mixture "
                        "joined by '+' (default: gaussian:25); with --noisy-only: the noise the images carry, gaussian:SIGMA, "
                        "poisson, poisson:PEAK or unknown (default: unknown, Gaussian of a level estimated per image)")
    t.add_argument("--init", metavar="MODEL",
                   help="start from this model's weights and architecture (a shipped name or a model file)")
    t.add_argument("-o", "--output", required=True, type=Path, help="model file to write (.npz)")
    t.add_argument("--patch", type=int, default=8, help="output patch size (default: %(default)s)")
    t.add_argument("--context", type=int, default=4, help="extra input pixels around each patch (default: %(default)s)")
    t.add_argument("--hidden", type=_hidden, default=(512, 256, 512), help="hidden layer sizes (default: 512,256,512)")
    t.add_argument("--channels", type=int, choices=(1, 3), default=1, help="1: per channel, 3: all jointly (default: 1)")
    t.add_argument("--colour", choices=("rgb", "opponent"), default="rgb",
                   help="what a 3-channel model sees: RGB, or the opponent planes (default: rgb)")
    t.add_argument("--surround", type=_scales, default=(), metavar="S,S...",
                   help="coarse surround: the means of SxS pixel blocks on an 8x8 grid around each patch join its input, "
                        "for each block size S (e.g. 4,8: 32 and 64 px of context; default: none)")
    t.add_argument("--neighbours", type=int, default=0, metavar="K",
                   help="non-local grouping: the mean of the K most similar patches within --search pixels joins each "
                        "patch's input (default: 0, none)")
    t.add_argument("--search", type=_positive(int), default=8, help="radius of --neighbours' search, in pixels, "
                   "offsets 2 px apart (default: %(default)s)")
    t.add_argument("--noise-input", choices=("auto", "yes", "no"), default="auto",
                   help="give the model the noise level (default: yes for a noise range)")
    t.add_argument("--condition", choices=("true", "estimate", "std"), default="true",
                   help="the noise level the model is given in training: true, the level white noise was made at "
                        "(camera noise: its blind estimate); estimate, the blind estimate of each noisy crop, as a run "
                        "without --sigma reads it; std, white noise's level and camera noise's std over its crop, "
                        "for models run with --camera (default: %(default)s)")
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
    r.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files or folders, or URLs of objects and prefixes (s3://bucket/scans/, gs://..., az://...)")
    r.add_argument("-o", "--output", required=True, help="output folder or URL prefix")
    r.add_argument("--model", default="default", help="shipped model name, model file or URL (default: %(default)s)")
    r.add_argument("--sigma", type=_sigma, default=None, help="noise level in 8-bit units (25 = 25/255), or auto (default)")
    r.add_argument("--stride", type=_positive(int), help="patch stride (default: the model's)")
    r.add_argument("--ensemble", type=int, choices=ensembles, default=1,
                   help="average over this many rotations/reflections of each patch: N times slower, slightly better (default: 1)")
    r.add_argument("--camera", action="store_true",
                   help="the photos carry camera noise (demosaicked, JPEG): the blind estimate, which reads only part of it, is "
                        "scaled by the model's camera gain (models trained with --condition std on camera noise)")
    r.add_argument("--strength", type=_strength, default=1.0,
                   help="multiply the noise level given to the model: below 1 keeps more detail, above 1 smooths more "
                        "(0.1 to 10; default: 1)")
    r.add_argument("--adapt", type=_positive(float), metavar="SECONDS",
                   help="first fine-tune the model for this long on a sample of the inputs themselves (self-supervised; "
                        "for images unlike photos: documents, star fields, microscopy), written to the output folder "
                        "and used only if it helped")
    r.add_argument("--recursive", action="store_true", help="include sub-folders, mirrored in the output")
    r.add_argument("--format", choices=formats, default="keep", help="output format (default: keep the input's)")
    r.add_argument("--jpeg-quality", type=_quality, default=95, metavar="Q", help="JPEG/WebP quality, 1 to 100 (default: 95)")
    r.add_argument("--report", help="write a JSON report of every file (a path or URL)")
    r.add_argument("--preview", metavar="SHEET.png",
                   help="write a before/after contact sheet of the files done (the first 12)")
    r.add_argument("--overwrite", action="store_true", help="redo outputs already done with the same model and settings")
    r.add_argument("--tile", type=_positive(float), default=4.0, metavar="MP",
                   help="split images larger than this many megapixels into tiles (default: %(default)s)")
    r.add_argument("--workers", type=_positive(int), help="local worker processes (default: one per core)")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="use an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (default: $DASK_SCHEDULER_ADDRESS, else a local cluster)")
    r.add_argument("--storage-options", type=_json_object, metavar="JSON",
                   help='fsspec options for every URL, e.g. \'{"client_kwargs": {"endpoint_url": "http://minio:9000"}}\' '
                        "(default: credentials from the environment and config files)")
    r.add_argument("--shared-storage", action="store_true",
                   help="the --scheduler cluster's workers see this machine's local paths: they read and write local "
                        "files themselves (our local cluster always does; URLs always are)")
    r.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def _add_eval(sub, ensembles) -> None:
    e = sub.add_parser("eval", help="PSNR/SSIM of a model on clean images with synthetic noise")
    e.add_argument("--model", default="default")
    e.add_argument("--clean", required=True, type=Path)
    e.add_argument("--noise", default="gaussian:25")
    e.add_argument("--sigma", type=_sigma, default=None, help="noise level given to the model (default: auto)")
    e.add_argument("--ensemble", type=int, choices=ensembles, default=1, help="as for run (default: 1)")
    e.add_argument("--camera", action="store_true", help="as for run")
    e.add_argument("--strength", type=_strength, default=1.0, help="as for run (default: 1)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", type=Path, help="write the results as JSON")
