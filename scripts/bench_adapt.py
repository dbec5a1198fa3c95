"""Learning from noisy images alone: ``--adapt`` and ``train --noisy-only`` against the shipped model.

Sections:

- ``adapt``: out-of-domain sets built here from freely licensed material
  (rendered text pages in the font Pillow ships, a simulated star field,
  microscopy-like 16-bit frames of cells) and in-domain photos (the clean
  sample photos), each with Gaussian noise (sigma 15 / 25 / 50, given) and
  Poisson noise (peak 30 at white; not given, ``noise="poisson"``). Rows:
  the noisy input, the shipped model, :func:`denoise.adapt` for each budget
  on the set's own noisy images, and the upper bound of fine-tuning for the
  middle budget on the same images' clean versions (supervised). PSNR in dB
  over the set, each image scored against its clean version. The noisy
  files are clipped to their dtype's range, as saved files are; the
  supervised fine-tuning adds unclipped noise, as the shipped model was
  trained, so where clipping matters (dark frames, white paper) it is not an
  upper bound: the adaptation models the clipping, and it does not.
- ``scratch``: a model of the shipped architecture trained from scratch on
  noisy photos alone (``train_noisy``) and on their clean versions
  (``train``), the same time each, scored on held-out photos.

For orientation: Noise2Void (Krull et al. 2019), trained on noisy images
alone, reports about 27.8 dB on BSD68 at sigma 25, some 1.4 dB below the
supervised DnCNN.

Usage::

    python scripts/bench_adapt.py --quick --no-record
    python scripts/bench_adapt.py --section adapt --budgets 30 60 120
    python scripts/bench_adapt.py --section scratch --minutes 10
"""

from __future__ import annotations

import time

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import benchkit as bk
import denoise
from denoise.adapt import ADAPT_BATCH, ADAPT_LR
from denoise.imagefile import list_images, read_image
from denoise.imaging import to_float
from denoise.metrics import psnr
from denoise.training.selfsupervised import model_planes

PEAK = 30.0
WORDS = ("denoise patch model image noise level photon frame scan archive page line sensor shot read "
         "pixel grain detail contrast folder cluster worker bucket the of and to in is").split()


def text_pages(n: int, size: int, seed: int) -> list[np.ndarray]:
    """Pages of dark words on a light, slightly uneven paper, float32 gray."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        im = Image.new("L", (size, size), 0)
        d = ImageDraw.Draw(im)
        font = ImageFont.load_default(size=int(rng.integers(10, 22)))
        y = int(rng.integers(2, 10))
        while y < size - font.size:
            d.text((int(rng.integers(2, 12)), y), " ".join(rng.choice(WORDS, 12)), fill=255, font=font)
            y += int(font.size * rng.uniform(1.2, 1.6))
        ink = np.asarray(im, np.float32) / 255
        paper = 0.9 + 0.04 * np.sin(np.arange(size) / rng.uniform(30, 90))[None, :]
        out.append((paper * (1 - ink) + rng.uniform(0.05, 0.2) * ink).astype(np.float32))
    return out


def star_fields(n: int, size: int, seed: int) -> list[np.ndarray]:
    """Point sources of power-law brightness through a Gaussian PSF on a faint sky, float32 gray."""
    out = []
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        sky = np.full((size, size), rng.uniform(0.03, 0.08), np.float32)
        for _ in range(int(size * size / 400)):
            y, x = rng.uniform(0, size, 2)
            flux = min(0.9, 0.02 * rng.pareto(1.5) + 0.02)
            w = rng.uniform(0.7, 1.8)
            r = int(4 * w) + 1
            y0, y1, x0, x1 = max(0, int(y) - r), min(size, int(y) + r + 1), max(0, int(x) - r), min(size, int(x) + r + 1)
            sky[y0:y1, x0:x1] += flux * np.exp(-((yy[y0:y1, x0:x1] - y) ** 2 + (xx[y0:y1, x0:x1] - x) ** 2) / (2 * w * w))
        out.append(np.clip(sky, 0, 1))
    return out


def cell_frames(n: int, size: int, seed: int) -> list[np.ndarray]:
    """Fluorescence-like frames: bright blurred blobs with nuclei on a dark field, uint16."""
    from scipy import ndimage

    out = []
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        f = np.zeros((size, size), np.float32)
        for _ in range(int(size * size / 1500)):
            cy, cx = rng.uniform(0, size, 2)
            a, b, t = rng.uniform(6, 18), rng.uniform(4, 12), rng.uniform(0, np.pi)
            u = ((xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)) / a
            v = (-(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)) / b
            r2 = u * u + v * v
            f += rng.uniform(0.2, 0.6) * (r2 < 1) + rng.uniform(0.1, 0.3) * (r2 < 0.2)
        f = ndimage.gaussian_filter(f, 1.2) + 0.04
        out.append((np.clip(f, 0, 1) * 65535).astype(np.uint16))
    return out


def photos(n: int, size: int, seed: int) -> list[np.ndarray]:
    """Centre crops of the clean sample photos (RGB or gray, uint8)."""
    files = [f for f in list_images(bk.SAMPLES) if "noisy" not in f.name]
    out = []
    for f in files[:n]:
        a = read_image(f)[0]
        h, w = a.shape[:2]
        s = min(size, h, w)
        out.append(a[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s])
    return out


SETS = {"text": text_pages, "stars": star_fields, "cells": cell_frames, "photos": photos}


def add_noise(image: np.ndarray, noise, seed: int) -> np.ndarray:
    """``image`` with Gaussian noise of ``noise`` 8-bit levels, or Poisson noise at PEAK, in its own dtype."""
    x = to_float(image)
    rng = np.random.default_rng(seed)
    if noise == "poisson":
        y = rng.poisson(np.clip(x, 0, 1) * PEAK) / PEAK
    else:
        y = x + noise / 255 * rng.standard_normal(x.shape)
    top = np.iinfo(image.dtype).max if image.dtype.kind == "u" else 1.0
    return (np.clip(y, 0, 1) * top + (0.5 if image.dtype.kind == "u" else 0)).astype(image.dtype)


def _score(model, clean, noisy, sigma) -> float:
    return float(np.mean([psnr(to_float(c), to_float(denoise.denoise_image(model, n, sigma)))
                          for c, n in zip(clean, noisy)]))


def _supervised(model, clean, noise, seconds: float):
    """Fine-tuning on the clean versions with synthetic noise of the same kind, for ``seconds``."""
    tuned = denoise.Autoencoder(model.arch, weights=model.get_weights(), backend=model.backend, meta=dict(model.meta))
    spec = f"poisson:{PEAK:g}" if noise == "poisson" else f"gaussian:{noise}"
    cfg = denoise.TrainConfig(noise=spec, minutes=seconds / 60, lr=ADAPT_LR, batch_size=ADAPT_BATCH,
                              epoch_steps=10**9, progress=False, val_patches=512)
    return denoise.train(tuned, [model_planes(tuned, c) for c in clean], cfg)


def adapt_section(args):
    base = denoise.load_model(args.model)
    n, size = (3, 160) if args.quick else (6, 256)
    noises = [25, "poisson"] if args.quick else [15, 25, 50, "poisson"]
    budgets = args.budgets or ([30] if args.quick else [30, 60, 120])
    mid = budgets[len(budgets) // 2]
    names = args.sets or list(SETS)
    lines = [f"model {args.model}; {n} images of {size} px per set; PSNR dB over the set; Poisson peak {PEAK:g}, "
             f"its level not given; adaptation on the set's own noisy images; {bk.machine()}", ""]
    header = "| set | noise | noisy | shipped | " + " | ".join(f"adapt {b} s" for b in budgets) + \
             f" | supervised {mid} s (clean versions) |"
    lines += [header, "|" + " --- |" * (5 + len(budgets))]
    print("\n".join(lines), flush=True)
    for name in names:
        clean = SETS[name](n, size, 7)
        for noise in noises:
            noisy = [add_noise(c, noise, 100 + i) for i, c in enumerate(clean)]
            sigma = None if noise == "poisson" else noise / 255
            how = dict(noise="poisson") if noise == "poisson" else dict(sigma=sigma)
            cells = [float(np.mean([psnr(to_float(c), to_float(y)) for c, y in zip(clean, noisy)])),
                     _score(base, clean, noisy, sigma)]
            notes = []
            for b in budgets:
                t = time.monotonic()
                adapted = denoise.adapt(base, noisy, b, **how)
                rep = adapted.meta["adaptation"]
                cells.append(_score(adapted, clean, noisy, sigma))
                notes.append(f"{b} s: {rep['steps']} steps in {time.monotonic() - t:.0f} s"
                             + ("" if rep["used"] else ", not used"))
            cells.append(_score(_supervised(base, clean, noise, mid), clean, noisy, sigma))
            label = "Poisson" if noise == "poisson" else f"sigma {noise}"
            row = f"| {name} | {label} | " + " | ".join(f"{c:.2f}" for c in cells) + " |"
            print(row + "   <!-- " + "; ".join(notes) + " -->", flush=True)


def scratch_section(args):
    minutes = args.minutes or (2 if args.quick else 10)
    base = denoise.load_model(args.model)
    every = photos(50, 256 if args.quick else 384, 0)
    train_clean, test_clean = every[1:], every[:1]
    sigma = 25
    noisy_train = [add_noise(c, sigma, 200 + i) for i, c in enumerate(train_clean)]
    noisy_test = [add_noise(c, sigma, 300 + i) for i, c in enumerate(test_clean)]
    cfg = dict(minutes=minutes, progress=False, val_patches=1024, epoch_steps=10**9)
    planes = [model_planes(base, c) for c in train_clean]
    sup = denoise.train(base.arch, planes, denoise.TrainConfig(noise=f"gaussian:{sigma}", **cfg))
    ss = denoise.train_noisy(base.arch, noisy_train, denoise.TrainConfig(**cfg), noise=f"gaussian:{sigma}")
    s = sigma / 255
    print(f"a new model of {args.model}'s architecture, {minutes:g} min each, sigma {sigma}, trained on "
          f"{len(train_clean)} sample photos and scored on {len(test_clean)} held out; {bk.machine()}\n")
    print("| training | steps | PSNR dB |\n| --- | --- | --- |")
    print(f"| supervised (clean versions) | {sup.meta['steps']} | {_score(sup, test_clean, noisy_test, s):.2f} |")
    print(f"| noisy only (recorrupted-to-recorrupted) | {ss.meta['steps']} | {_score(ss, test_clean, noisy_test, s):.2f} |")
    print(f"| the shipped {args.model}, for reference | - | {_score(base, test_clean, noisy_test, s):.2f} |")


def add_arguments(ap):
    ap.add_argument("--model", default="default")
    ap.add_argument("--budgets", type=float, nargs="+", help="adapt: seconds (default: 30 60 120; 30 with --quick)")
    ap.add_argument("--sets", nargs="+", choices=sorted(SETS), help="adapt: which sets (default: all)")
    ap.add_argument("--minutes", type=float, help="scratch: training minutes of each model (default: 10; 2 with --quick)")


SECTIONS = {"adapt": adapt_section, "scratch": scratch_section}

if __name__ == "__main__":
    bk.main(__doc__, SECTIONS, add_arguments=add_arguments, namespace=globals())
