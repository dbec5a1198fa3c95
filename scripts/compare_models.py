#!/usr/bin/env python3
"""Compare models on the sample photos: white Gaussian noise (sigma given and blind), camera noise
(blind), and clean photos (what a blind run does to a photo without noise).

The sample photos (``sample_images/``) are never used in training; the noise is drawn as
``denoise eval`` draws it (seed 0, one stream per image), so its figures match that command's.
Prints one markdown table, a row per model, mean PSNR in dB; the clean column is the lowest
PSNR of output against input over the photos. Models trained with camera noise given its std
(``--condition std``) get two more columns: camera and clean photos with the blind estimate
multiplied by the model's ``camera_gain``, as for photos declared to carry camera noise.

Usage::

    python scripts/compare_models.py default runs/default-estimated.ckpt.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import denoise
from denoise.imagefile import list_images, read_float
from denoise.metrics import psnr
from denoise.noise import parse
from denoise.pipeline import image_sigma

ROOT = Path(__file__).resolve().parent.parent
GAUSSIAN = (15, 25, 50)
CAMERA = (40, 65, 90)


def mean_psnr(model, photos, spec: str, sigma, gain: float = 1.0) -> float:
    """Mean PSNR of ``model`` on ``photos`` under noise ``spec``; ``sigma`` None: blind, the
    estimate multiplied by ``gain``."""
    noise = parse(spec)
    values = []
    for i, clean in enumerate(photos):
        noisy = noise.add(clean, np.random.default_rng([0, i]))
        level = sigma if sigma is not None or gain == 1.0 else gain * image_sigma(noisy)
        values.append(psnr(clean, denoise.denoise_image(model, noisy, level)))
    return float(np.mean(values))


def row(model, photos) -> list[str]:
    known = [mean_psnr(model, photos, f"gaussian:{s}", s / 255) for s in GAUSSIAN]
    blind = [mean_psnr(model, photos, f"gaussian:{s}", None) for s in GAUSSIAN]
    camera = [mean_psnr(model, photos, f"camera:{level}", None) for level in CAMERA]
    clean = min(psnr(p, denoise.denoise_image(model, p)) for p in photos)
    cells = [" / ".join(f"{v:.2f}" for v in part) for part in (known, blind, camera)] + [f"{clean:.1f}"]
    gain = model.meta.get("camera_gain")
    if gain:  # as a run told the photos carry camera noise: the estimate scaled by the model's camera gain
        scaled = [mean_psnr(model, photos, f"camera:{level}", None, gain) for level in CAMERA]
        clean = min(psnr(p, denoise.denoise_image(model, p, gain * image_sigma(p))) for p in photos)
        cells += [" / ".join(f"{v:.2f}" for v in scaled), f"{clean:.1f}"]
    return cells + [""] * (6 - len(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="shipped model names or model files")
    ap.add_argument("--photos", type=Path, default=ROOT / "sample_images")
    args = ap.parse_args()
    photos = [read_float(f) for f in list_images(args.photos)]
    print(f"{len(photos)} photos in {args.photos}; PSNR dB, mean over the photos")
    print()
    print(f"| model | gaussian {' / '.join(map(str, GAUSSIAN))}, known | blind | camera:{' / '.join(map(str, CAMERA))}, blind "
          "| clean photos, output vs input (min) | camera, estimate x the model's camera gain | clean, likewise |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    inputs = [np.mean([psnr(c, parse(f"camera:{level}").add(c, np.random.default_rng([0, i]))) for i, c in enumerate(photos)])
              for level in CAMERA]
    print(f"| noisy input | | | {' / '.join(f'{v:.2f}' for v in inputs)} | | | |")
    for name in args.models:
        print(f"| {name} | " + " | ".join(row(denoise.load_model(name), photos)) + " |", flush=True)


if __name__ == "__main__":
    main()
