#!/usr/bin/env python3
"""The "shared work" lever, measured before it is built into the package: a small CNN on the
stride-4 patch grid against a patch MLP trained for the same time.

The patch MLP computes its first layer afresh for every overlapping patch. The grid CNN computes
it once per grid position (the 16x16 input window at stride 4, with its mean removed, as the MLP's
first layer sees it), then mixes neighbouring positions with ``--layers`` 3x3 layers of
``--width`` features, so each output patch sees ``8 + 2 * 4 * (layers + 1)`` px across at a
fraction of the MLP's FLOPs; a linear layer predicts each 8x8 patch's noise, and patches are
averaged at stride 4 as the package stitches them. It trains on whole crops, Adam with a cosine
learning rate, white Gaussian noise of sigma 0-55 given to the model, on the same training photos
as ``scripts/train_models.py``, and is compiled by PyTensor's JAX backend, which needs the
graph's shapes fixed (one compile per crop shape).

Both models are scored on the centre 256 px of the held-back validation photos (gray), never
on the reserved evaluation photos, with sigma given.

Usage::

    python scripts/train_models.py ablate-base --minutes 12          # the MLP, same time
    python scripts/ablate_grid.py --minutes 12 --compare runs/ablate-base.ckpt.npz default
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt

import denoise
from denoise.backends import compile_mode
from denoise.imagefile import list_images, read_float
from denoise.metrics import psnr
from denoise.modelfile import read_model_file
from denoise.training.data import holdout_split

DATA = Path.home() / ".cache" / "denoise" / "training_data" / "photos"
BLOCK = 4  # grid stride; the input window is 4 x 4 blocks, the output patch the middle 2 x 2
SIGMAS = (15, 25, 50)


class GridCNN:
    """The model: shared weights, its graph for a fixed input shape, and its reach."""

    def __init__(self, width: int, layers: int, rng: np.random.Generator):
        self.layers, self.width = layers, width
        sizes = [(16 * 16, width)] + [(9 * width, width)] * layers + [(width, 64)]
        self.W = [pytensor.shared((rng.standard_normal(s) * np.sqrt(2 / s[0]) * (0.1 if i == len(sizes) - 1 else 1))
                                  .astype(np.float32)) for i, s in enumerate(sizes)]
        self.b = [pytensor.shared(np.zeros(s[1], np.float32)) for s in sizes]
        self.w_sigma = pytensor.shared(np.zeros(width, np.float32))
        self.params = self.W + self.b + [self.w_sigma]
        self.offset = 1 + layers  # blocks from the input's top left to the first output patch
        self.reach = BLOCK * self.offset

    def flops_per_pixel(self) -> float:
        return sum(2 * w.get_value().size for w in self.W) / BLOCK**2

    def output(self, x, sigma, shape):
        """Clean patches (B, n, n, 64), in (block y, block x, y, x) order, of noisy images ``x``
        of static ``shape`` (B, 4G, 4G)."""
        b, h, w = shape
        gy, gx = h // BLOCK, w // BLOCK
        blocks = x.reshape((b, gy, BLOCK, gx, BLOCK)).dimshuffle(0, 1, 3, 2, 4).reshape((b, gy, gx, 16))
        s = np.float32(4.0)
        w0 = s * (self.W[0] - pt.mean(self.W[0], axis=0, keepdims=True))  # each window's mean removed
        width = self.width
        f = _conv(blocks, w0, self.b[0], 4, (b, gy, gx, 16), width) + (sigma * s)[:, None, None, None] * self.w_sigma
        f, ny, nx = pt.maximum(f, 0), gy - 3, gx - 3
        for i in range(self.layers):
            f = pt.maximum(_conv(f, self.W[1 + i], self.b[1 + i], 3, (b, ny, nx, width), width), 0)
            ny, nx = ny - 2, nx - 2
        noise = _conv(f, self.W[-1], self.b[-1], 1, (b, ny, nx, width), 64) / s
        o = self.offset
        centre = pt.concatenate([blocks[:, o + dy : o + dy + ny, o + dx : o + dx + nx] for dy in (0, 1) for dx in (0, 1)], axis=3)
        return centre - noise


def _conv(f, w, b, k, shape, out):
    """A valid k x k convolution of (B, H, W, C) features of static ``shape`` into ``out`` features,
    as one matrix product (im2col by slices)."""
    n, h, wd, c = shape
    ho, wo = h - k + 1, wd - k + 1
    cols = pt.concatenate([f[:, dy : dy + ho, dx : dx + wo, :] for dy in range(k) for dx in range(k)], axis=3)
    return (pt.dot(cols.reshape((n * ho * wo, k * k * c)), w) + b).reshape((n, ho, wo, out))


def patches_of(blocks: np.ndarray) -> np.ndarray:
    """(..., 64) in (block y, block x, y, x) order -> (..., 8, 8)."""
    lead = blocks.shape[:-1]
    return blocks.reshape(*lead, 2, 2, 4, 4).swapaxes(-3, -2).reshape(*lead, 8, 8)


def train(model: GridCNN, photos, minutes: float, crops: int, grid: int, lr0: float, seed: int):
    side = BLOCK * grid
    shape = (crops, side, side)
    x = pt.tensor3("x", dtype="float32", shape=shape)
    sigma = pt.vector("sigma", dtype="float32", shape=(crops,))
    n = grid - 3 - 2 * model.layers
    target = pt.tensor4("target", dtype="float32", shape=(crops, n, n, 64))
    loss = pt.mean(pt.sqr(model.output(x, sigma, shape) - target))
    grads = pt.grad(loss, model.params)
    lr = pytensor.shared(np.float32(lr0))
    t = pytensor.shared(np.float32(0))
    b1, b2 = np.float32(0.9), np.float32(0.999)
    corr = pt.sqrt(1 - b2 ** (t + 1)) / (1 - b1 ** (t + 1))
    updates = [(t, t + 1)]
    for p, g in zip(model.params, grads):
        m, v = (pytensor.shared(np.zeros_like(p.get_value())) for _ in range(2))
        m1, v1 = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        updates += [(m, m1), (v, v1), (p, p - lr * corr * m1 / (pt.sqrt(v1) + np.float32(1e-8)))]
    step = pytensor.function([x, sigma, target], loss, updates=updates, mode=compile_mode("jax"))
    rng = np.random.default_rng(seed)
    o = model.offset
    t0, steps = time.monotonic(), 0
    while (elapsed := time.monotonic() - t0) < minutes * 60:
        lr.set_value(np.float32(lr0 * 0.5 * (1 + np.cos(np.pi * elapsed / (minutes * 60)))))
        clean = np.stack([_crop(photos, side, rng) for _ in range(crops)])
        s = (rng.random(crops) * 55 / 255).astype(np.float32)
        noisy = (clean + s[:, None, None] * rng.standard_normal(clean.shape)).astype(np.float32)
        blocks = clean.reshape(crops, grid, BLOCK, grid, BLOCK).transpose(0, 1, 3, 2, 4).reshape(crops, grid, grid, 16)
        tgt = np.concatenate([blocks[:, o + dy : o + dy + n, o + dx : o + dx + n] for dy in (0, 1) for dx in (0, 1)], axis=3)
        step(noisy, s, np.ascontiguousarray(tgt))
        steps += 1
    return steps, time.monotonic() - t0


def _crop(photos, side, rng):
    im = photos[rng.integers(len(photos))]
    y, x = rng.integers(im.shape[0] - side + 1), rng.integers(im.shape[1] - side + 1)
    c = im[y : y + side, x : x + side, rng.integers(im.shape[2])]
    t = rng.integers(8)
    return np.rot90(c.T if t & 4 else c, t & 3)


def cnn_denoiser(model: GridCNN):
    """``denoise(plane, sigma)`` with the trained grid CNN: pad by its reach, one forward pass,
    patches averaged at stride 4 (one compile per padded shape)."""
    compiled = {}

    def run(plane: np.ndarray, sigma: float) -> np.ndarray:
        h, w = plane.shape
        gy, gx = -(-(h - 8) // BLOCK) + 1, -(-(w - 8) // BLOCK) + 1
        hh, ww = (gy - 1) * BLOCK + 8, (gx - 1) * BLOCK + 8
        r = model.reach
        padded = np.pad(plane, ((r, r + hh - h), (r, r + ww - w)), mode="symmetric")[None].astype(np.float32)
        if padded.shape not in compiled:
            x = pt.tensor3("x", dtype="float32", shape=padded.shape)
            s = pt.vector("s", dtype="float32", shape=(1,))
            compiled[padded.shape] = pytensor.function([x, s], model.output(x, s, padded.shape), mode=compile_mode("jax"))
        out = patches_of(np.asarray(compiled[padded.shape](padded, np.array([sigma], np.float32)))[0])
        acc, count = np.zeros((hh, ww), np.float32), np.zeros((hh, ww), np.float32)
        for i in range(gy):
            for j in range(gx):
                acc[4 * i : 4 * i + 8, 4 * j : 4 * j + 8] += out[i, j]
                count[4 * i : 4 * i + 8, 4 * j : 4 * j + 8] += 1
        return (acc / count)[:h, :w]

    return run


def score(denoiser, crops) -> list[float]:
    """Mean PSNR over the validation crops at each sigma, the same noise for every method."""
    out = []
    for s in SIGMAS:
        rng = np.random.default_rng(7)
        values = []
        for c in crops:
            noisy = (c + s / 255 * rng.standard_normal(c.shape)).astype(np.float32)
            values.append(psnr(c, np.clip(denoiser(noisy, s / 255), 0, 1)))
        out.append(float(np.mean(values)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=12)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--crops", type=int, default=8, help="crops per step")
    ap.add_argument("--grid", type=int, default=20, help="crop side in grid positions (4 px each)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=20261204)
    ap.add_argument("--compare", nargs="*", default=[], help="model files or shipped names scored beside it")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    train_files, val_files = holdout_split(sorted(list_images(args.data)))
    photos = [p if p.ndim == 3 else p[:, :, None] for p in map(read_float, train_files)]
    crops = []
    for f in val_files:
        v = read_float(f)
        v = v if v.ndim == 3 else v[:, :, None]
        y, x = (v.shape[0] - 256) // 2, (v.shape[1] - 256) // 2
        crops.append(v[y : y + 256, x : x + 256].mean(axis=2).astype(np.float32))
    model = GridCNN(args.width, args.layers, np.random.default_rng(args.seed))
    steps, seconds = train(model, photos, args.minutes, args.crops, args.grid, args.lr, args.seed)
    print(f"{len(crops)} held-back photos, 256 px centre crops, gray; PSNR dB with sigma given, {' / '.join(map(str, SIGMAS))}")
    print()
    print("| model | FLOPs per pixel | training | PSNR |")
    print("| --- | --- | --- | --- |")
    psnrs = " / ".join(f"{v:.2f}" for v in score(cnn_denoiser(model), crops))
    print(f"| grid CNN, {args.layers} 3x3 layers of {args.width} | {model.flops_per_pixel() / 1e3:.0f} k | {steps} steps of "
          f"{args.crops} crops of {BLOCK * args.grid} px, {seconds:.0f} s | {psnrs} |", flush=True)
    for name in args.compare:
        m = denoise.load_model(name)
        psnrs = " / ".join(f"{v:.2f}" for v in score(lambda x, s, m=m: denoise.denoise_image(m, x, s), crops))
        print(f"| {name} | {m.arch.flops_per_pixel(m.stride) / 1e3:.0f} k | {_training(name)} | {psnrs} |", flush=True)


def _training(name: str) -> str:
    """What a checkpoint says of its training: steps and seconds ("shipped" for a shipped model)."""
    if not name.endswith(".npz"):
        return "shipped"
    state = read_model_file(name)[2]
    return f"{int(state['state.step'])} steps, {float(state['state.seconds']):.0f} s"


if __name__ == "__main__":
    main()
