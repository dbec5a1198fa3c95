"""Regenerate the measured parts of the model card, ``denoise/models/MODELS.md``.

Between ``<!-- model_card.py: NAME -->`` and ``<!-- end -->`` the card holds
what this script computes: for each shipped model, its shape (architecture,
weights, FLOPs, file size, from the model file) and its PSNR/SSIM on
``sample_images/`` (``denoise eval``'s numbers, known and estimated sigma,
Gaussian noise with seed 0). The rest of the card is written by hand::

    python scripts/model_card.py              # shapes and the eval tables
    python scripts/model_card.py --ensemble   # also the ensemble=8 line (8x the time)
    python scripts/model_card.py --check      # are the shapes up to date? (what the tests run)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import tempfile
from pathlib import Path

import denoise
from denoise.cli import main as cli
from denoise.imagefile import list_images
from denoise.modelfile import model_path

ROOT = Path(__file__).resolve().parent.parent
CARD = ROOT / "denoise" / "models" / "MODELS.md"
SAMPLES = ROOT / "sample_images"
SIGMAS = (15, 25, 50)


def evaluate(model: str, sigma: int, known: bool, ensemble: int = 1) -> dict:
    """``denoise eval``'s mean scores on the sample photos."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "e.json"
        args = ["eval", "--model", model, "--clean", str(SAMPLES), "--noise", f"gaussian:{sigma}", "--json", str(out),
                "--ensemble", str(ensemble)] + (["--sigma", str(sigma)] if known else [])
        with contextlib.redirect_stdout(io.StringIO()):  # its per-image table; the JSON holds the means
            code = cli(args)
        if code != 0:
            raise SystemExit(f"denoise {' '.join(args)} failed")
        return json.loads(out.read_text())["mean"]


def shape_table(name: str) -> str:
    m = denoise.load_model(name)
    a = m.arch
    size = model_path(name).stat().st_size
    flops = a.flops_per_patch()
    per_pixel = a.flops_per_pixel(m.stride)
    hidden = "-".join(map(str, a.hidden))
    rows = [
        ("architecture", f"residual patch MLP (encoder/decoder), {a.in_patch}×{a.in_patch} input patch ({a.patch}×{a.patch} "
                         f"output + {a.context} pixels of context each side){' plus the noise level' if a.noise_input else ''}; "
                         f"hidden {hidden}, {a.activation}; per-patch mean removed, ×{a.scale:g} scale"),
        ("parameters", f"{a.n_parameters:,} (float16 on disk, float32 in use; {size / 2**20:.2f} MiB file)"),
        ("FLOPs", f"{flops / 1e6:.3g} MFLOP per patch; at the default stride {m.stride}: {per_pixel / 1e3:.3g} kFLOP per "
                  f"pixel per plane ({3 * per_pixel / 1e3:.3g} kFLOP per RGB pixel)"),
    ]
    return "| | |\n| --- | --- |\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)


def eval_table(name: str) -> str:
    known = {s: evaluate(name, s, True) for s in SIGMAS}
    blind = {s: evaluate(name, s, False) for s in SIGMAS}
    photos = list_images(SAMPLES)
    lines = [f"Measured PSNR on `sample_images/` ({len(photos)} clean photos never used in training), Gaussian noise "
             f"with seed 0, `denoise eval --model {name} --clean sample_images --noise gaussian:S [--sigma S]`:", "",
             "| sigma | noisy | known sigma | blind (sigma estimated) | SSIM (known) |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {s} | {known[s]['noisy_psnr']:.2f} dB | {known[s]['psnr']:.2f} dB | {blind[s]['psnr']:.2f} dB | "
              f"{known[s]['ssim']:.3f} |" for s in SIGMAS]
    return "\n".join(lines) + "\n"


def ensemble_line(name: str) -> str:
    ens = [evaluate(name, s, True, ensemble=8)["psnr"] for s in SIGMAS]
    return f"With `--ensemble 8`: {' / '.join(f'{p:.2f}' for p in ens)} dB (known sigma).\n"


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- model_card.py: {re.escape(name)} -->\n).*?(<!-- end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{CARD} has no block '<!-- model_card.py: {name} -->'")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ensemble", action="store_true", help="also measure ensemble=8 (8x the time)")
    ap.add_argument("--models", default=",".join(denoise.list_models()))
    ap.add_argument("--check", action="store_true",
                    help="only check that the card's shape blocks match the model files (exit 1 if not); writes nothing")
    args = ap.parse_args(argv)
    text = CARD.read_text(encoding="utf-8")
    if args.check:
        stale = [name for name in args.models.split(",")
                 if replace_block(text, f"{name}-shape", shape_table(name)) != text]
        if stale:
            raise SystemExit(f"the model card's shape of {', '.join(stale)} is stale: run python scripts/model_card.py")
        return
    for name in args.models.split(","):
        text = replace_block(text, f"{name}-shape", shape_table(name))
        text = replace_block(text, f"{name}-eval", eval_table(name))
        if args.ensemble:
            text = replace_block(text, f"{name}-ensemble", ensemble_line(name))
        print(f"{name}: done", file=sys.stderr)
    CARD.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
