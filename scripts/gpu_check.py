#!/usr/bin/env python3
"""GPU check: train a small model and denoise a large image with PyTensor's
JAX backend, on whatever device JAX picks (a GPU with a CUDA-enabled jax:
``pip install -e ".[gpu]"``). No code changes between CPU and GPU: only
``backend="jax"``.

Prints the JAX device, training steps/s and GFLOP/s, inference Mpix/s and
GFLOP/s, and the PSNR reached on a held-out sample photo. Self-contained
(uses ``sample_images/`` only: crops of four photos to train, another photo
to test; the check model is thrown away) and short (well under 3 minutes).

Usage::

    python scripts/gpu_check.py                 # 2000 steps, a 16 MP test image
    python scripts/gpu_check.py --steps 500 --megapixels 4
"""

from __future__ import annotations

import argparse
import time

import benchkit as bk
import numpy as np

import denoise
from denoise.imagefile import read_float
from denoise.metrics import psnr

TRAIN = ["bridge_night.jpg", "citrus.jpg", "fig_bowl.jpg", "dogs_gray.png"]
TEST = "mountain_trail_gray.png"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--megapixels", type=float, default=16.0, help="size of the image to denoise")
    ap.add_argument("--backend", default="jax")
    args = ap.parse_args(argv)

    if args.backend == "jax":
        import jax

        print(f"jax {jax.__version__}, devices: {jax.devices()}")
    clean = [read_float(bk.SAMPLES / n) for n in TRAIN]
    arch = denoise.Architecture(patch=8, context=4, hidden=(768, 384, 768), noise_input=True)
    cfg = denoise.TrainConfig(noise="gaussian:5-50", steps=args.steps, epoch_steps=max(1, args.steps // 4),
                              batch_size=args.batch_size, lr=1e-3, backend=args.backend, seed=0, progress=False)
    t = time.perf_counter()
    model = denoise.train(arch, clean, cfg)
    dt = time.perf_counter() - t
    flops = arch.training_flops_per_patch() * args.batch_size * args.steps
    print(f"training: {args.steps} steps of {args.batch_size} in {dt:.1f} s (compile included): "
          f"{args.steps / dt:.1f} steps/s, {flops / dt / 1e9:.0f} GFLOP/s")
    print(f"validation PSNR by epoch: {[h[2] for h in model.meta['history']]}")

    big = bk.tile_to(read_float(bk.SAMPLES / TEST)[:, :, 0], args.megapixels)
    noisy = big + np.random.default_rng(0).normal(0, 25 / 255, big.shape).astype(np.float32)
    denoise.denoise_image(model, noisy[:256, :256], 25 / 255, batch_size=65536)  # compile
    t = time.perf_counter()
    out = denoise.denoise_image(model, noisy, 25 / 255, batch_size=65536)
    dt = time.perf_counter() - t
    mp = big.size / 1e6
    print(f"inference: {mp:.1f} MP in {dt:.2f} s: {mp / dt:.2f} Mpix/s, "
          f"{arch.flops_per_pixel(model.stride) * big.size / dt / 1e9:.0f} GFLOP/s (forward only)")
    print(f"PSNR at sigma 25 on {TEST} (tiled to size): noisy {psnr(big, noisy):.2f} dB -> {psnr(big, out):.2f} dB")


if __name__ == "__main__":
    main()
