#!/usr/bin/env python3
"""PNG writing: ``denoise.png`` against Pillow's encoder, its deflate settings
against others, on denoised 2 MP photos (RGB and gray) and on a drawing (a
rendered page of text), one thread. Each round times every variant once, in
turn; the tables show the median time, the median of per-round ratios to
ours, and the file size.

Sections (``--section NAME``, repeatable; default: all):

writer    encode_png against Pillow at level 1 with our run-length strategy,
          at level 1, and at its default (level 6), on denoised photos.
deflate   the deflate step alone on our filtered rows: zlib-ng against
          Python's zlib, and level 1 RLE against level 1 and level 6.
drawing   file sizes and times on a page of text, where run-length deflate
          does worst.

What the writer buys in a folder run: ``scripts/bench_speed.py --section
kernels``. Every section's output goes to ``docs/performance.md``
(``--no-record``: print only).

Usage::

    python scripts/bench_png.py [--megapixels 2] [--rounds 9]
"""

from __future__ import annotations

import functools
import zlib

import benchkit as bk
import numpy as np
from PIL import Image, ImageDraw
from zlib_ng import zlib_ng

import denoise
from denoise import png


def add_arguments(ap):
    ap.add_argument("--megapixels", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, help="rounds (default: 9, 3 with --quick)")


def deflate(module, data, level=png.COMPRESS_LEVEL, strategy=png.STRATEGY):
    z = module.compressobj(level, module.DEFLATED, 15, 9, strategy)
    return z.compress(data) + z.flush()


def denoised_photos(megapixels: float) -> dict:
    model = denoise.load_model("fast")
    return {kind: denoise.denoise_image(model, bk.noisy_photo(megapixels, gray=kind == "gray", seed=1)) for kind in ("RGB", "gray")}


def drawing(megapixels: float) -> np.ndarray:
    """A white page of black text, gray, about ``megapixels``."""
    side = int(np.sqrt(megapixels * 1e6))
    page = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(page)
    words = "the quick brown fox jumps over the lazy dog 0123456789 "
    for y in range(4, side - 12, 14):
        draw.text((4, y), (words * (side // 200 + 1))[: side // 6], fill=0)
    return np.asarray(page)


def table(label: str, variants: dict, rounds: int) -> None:
    sizes = {k: len(fn()) for k, fn in variants.items()}  # also the warm-up
    times = bk.alternating(variants, rounds)
    ours = times[next(iter(variants))]
    print(f"{label}, {rounds} rounds")
    for name, t in times.items():
        print(f"  {name:58s} {np.median(t) * 1e3:7.1f} ms  {np.median(t / ours):5.2f}x ours  {sizes[name]:>9d} bytes")


def writers(a) -> dict:
    return {
        "denoise.png.encode_png (Paeth + zlib-ng level 1, RLE)": lambda: png.encode_png(a),
        "Pillow, zlib level 1, RLE (our deflate settings)": lambda: bk.pillow_png(a, compress_level=1, compress_type=zlib.Z_RLE),
        "Pillow, zlib level 1": lambda: bk.pillow_png(a, compress_level=1),
        "Pillow's default (zlib level 6)": lambda: bk.pillow_png(a),
    }


def rounds(args) -> int:
    return args.rounds or (3 if args.quick else 9)


def writer(args):
    for kind, a in denoised_photos(args.megapixels).items():
        table(f"denoised {kind} photo {a.shape}", writers(a), rounds(args))


def deflate_section(args):
    for kind, a in denoised_photos(args.megapixels).items():
        rows = png._paeth_rows(a.reshape(a.shape[0], -1), 1 if kind == "gray" else 3)
        table(f"deflate alone, Paeth-filtered rows of the denoised {kind} photo", {
            "zlib-ng level 1, RLE (as encode_png)": functools.partial(deflate, zlib_ng, rows),
            "Python's zlib level 1, RLE": functools.partial(deflate, zlib, rows),
            "zlib-ng level 1, default strategy": functools.partial(deflate, zlib_ng, rows, strategy=zlib_ng.Z_DEFAULT_STRATEGY),
            "zlib-ng level 6, default strategy": functools.partial(deflate, zlib_ng, rows, 6, zlib_ng.Z_DEFAULT_STRATEGY),
        }, rounds(args))


def drawing_section(args):
    a = drawing(args.megapixels)
    table(f"a rendered page of text {a.shape}", writers(a), rounds(args))


SECTIONS = {"writer": writer, "deflate": deflate_section, "drawing": drawing_section}

if __name__ == "__main__":
    bk.main(__doc__, SECTIONS, add_arguments=add_arguments, namespace=globals())
