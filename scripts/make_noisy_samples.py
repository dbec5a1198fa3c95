"""Make the noisy sample images the quick start denoises (``sample_images/noisy/``).

Each is a crop of one of the clean sample photos (see ``sample_images/SOURCES.md``
for their sources and licences) with seeded white Gaussian noise added, rounded
to 8 bits. Rerunning this script reproduces the files byte for byte::

    python scripts/make_noisy_samples.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from denoise.imagefile import read_image, write_image
from denoise.imaging import from_float, to_float

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"

#: output name -> (clean sample, crop (y, x, height, width), sigma in 8-bit levels, seed)
NOISY = {
    "honey_bee.png": ("honey_bee.jpg", (100, 150, 288, 384), 25, 1),
    "mountain_trail_gray.png": ("mountain_trail_gray.png", (96, 128, 288, 384), 20, 2),
}


def make(name: str) -> np.ndarray:
    source, (y, x, h, w), sigma, seed = NOISY[name]
    clean, _ = read_image(SAMPLES / source)
    crop = to_float(clean[y : y + h, x : x + w])
    noise = np.random.default_rng(seed).standard_normal(crop.shape).astype(np.float32) * np.float32(sigma / 255)
    return from_float(crop + noise, np.uint8)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=SAMPLES / "noisy", help="folder to write to (default: sample_images/noisy/)")
    out = ap.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    for name in NOISY:
        write_image(out / name, make(name))
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
