#!/usr/bin/env python3
"""PNG writing: denoise.png against Pillow's encoder, and the deflate step
alone with zlib-ng against Python's zlib, on denoised 2 MP photos (RGB and
gray, 1 thread). Each round times every variant once, in turn; the table
shows the median time, the median of per-round ratios to ours, and the file
size.

Usage::

    python scripts/bench_png.py [--megapixels 2] [--rounds 9]
"""

from __future__ import annotations

import argparse
import sys
import zlib
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image
from zlib_ng import zlib_ng

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import denoise  # noqa: E402
from bench_speed import once, photo  # noqa: E402
from denoise import png  # noqa: E402


def pillow(a, **kw):
    buf = BytesIO()
    Image.fromarray(a).save(buf, format="PNG", **kw)
    return buf.getvalue()


def deflate(module, data):
    z = module.compressobj(png.COMPRESS_LEVEL, module.DEFLATED, 15, 9, png.STRATEGY)
    return z.compress(data) + z.flush()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--megapixels", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args(argv)
    model = denoise.load_model("fast")
    for gray in (False, True):
        a = denoise.denoise_image(model, photo(args.megapixels, gray=gray, seed=1))
        rows = png._paeth_rows(a.reshape(a.shape[0], -1), 1 if gray else 3)
        variants = {
            "denoise.png.encode_png (Paeth + zlib-ng level 1, RLE)": lambda: png.encode_png(a),
            "Pillow, zlib level 1, RLE (denoise before this module)": lambda: pillow(a, compress_level=1, compress_type=zlib.Z_RLE),
            "Pillow's default (zlib level 6)": lambda: pillow(a),
            "  deflate alone, zlib-ng (as in encode_png)": lambda: deflate(zlib_ng, rows),
            "  deflate alone, Python's zlib": lambda: deflate(zlib, rows),
        }
        sizes = {k: len(fn()) for k, fn in variants.items()}  # also the warm-up
        times = np.array([[once(fn) for fn in variants.values()] for _ in range(args.rounds)])
        print(f"{'gray' if gray else 'RGB'} {a.shape}, {args.rounds} rounds")
        for i, name in enumerate(variants):
            ratio = np.median(times[:, i] / times[:, 0])
            print(f"  {name:56s} {np.median(times[:, i]) * 1e3:7.1f} ms  {ratio:5.2f}x ours  {sizes[name]:>9d} bytes")


if __name__ == "__main__":
    main()
