"""The scripts that run where no test can: kept working here, on small sizes.

``scripts/gpu_check.py`` is meant for a machine with an NVIDIA GPU, which the
test machine does not have; its JAX path runs the same code on JAX's CPU
device, so a change that breaks it fails here rather than on the GPU.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_trains_and_denoises_on_jax():
    pytest.importorskip("jax")
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--steps", "80", "--batch-size", "128", "--megapixels", "0.25"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert re.search(r"^jax \S+, devices: \[Cpu", out, re.M), out
    assert re.search(r"^training: 80 steps of 128 in [\d.]+ s .*: [\d.]+ steps/s, \d+ GFLOP/s$", out, re.M), out
    assert re.search(r"^inference: 0\.2 MP in [\d.]+ s: [\d.]+ Mpix/s, \d+ GFLOP/s \(forward only\)$", out, re.M), out
    history = [float(v) for v in re.search(r"^validation PSNR by epoch: \[(.*)\]$", out, re.M).group(1).split(",")]
    assert len(history) == 5 and history[-1] > history[0] + 0.5, out  # it learns...
    noisy, denoised = map(float, re.search(r"noisy ([\d.]+) dB -> ([\d.]+) dB", out).groups())
    assert denoised > noisy + 1, out  # ...and denoises (80 small steps: 20.2 -> 22.0 dB here)


def test_the_noisy_sample_images_are_what_their_script_makes(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_noisy_samples.py"), "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == sorted(p.name for p in (ROOT / "sample_images" / "noisy").iterdir()) and made
    for name in made:
        assert (tmp_path / name).read_bytes() == (ROOT / "sample_images" / "noisy" / name).read_bytes(), name


def test_the_model_cards_shapes_match_the_shipped_model_files():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "model_card.py"), "--check"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_the_grid_cnn_of_the_shared_work_ablation_is_the_convolution_it_says(monkeypatch):
    pytest.importorskip("jax")
    import numpy as np
    import pytensor
    import pytensor.tensor as pt

    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import ablate_grid as ag
    from denoise.backends import compile_mode

    rng = np.random.default_rng(0)
    model = ag.GridCNN(width=5, layers=1, rng=rng)
    for p in model.params:  # random weights everywhere, the last layer's and the biases too
        p.set_value(rng.standard_normal(p.get_value().shape).astype(np.float32) * 0.3)
    shape = (2, 40, 36)
    x = pt.tensor3("x", dtype="float32", shape=shape)
    s = pt.vector("s", dtype="float32", shape=(2,))
    forward = pytensor.function([x, s], model.output(x, s, shape), mode=compile_mode("jax"))
    img = rng.random(shape, dtype=np.float32)
    sigma = np.array([0.1, 0.2], np.float32)
    got = ag.patches_of(np.asarray(forward(img, sigma)))
    # by hand: each grid position's 16x16 window, mean removed and scaled, through the first layer; a 3x3 layer
    # over neighbouring positions; each output patch the noisy centre less the predicted noise
    W = [w.get_value() for w in model.W]
    b = [v.get_value() for v in model.b]
    relu = lambda z: np.maximum(z, 0)  # noqa: E731
    for n in range(2):
        gy, gx = shape[1] // 4 - 3, shape[2] // 4 - 3
        first = np.zeros((gy, gx, 5), np.float32)
        for i in range(gy):
            for j in range(gx):
                win = img[n, 4 * i : 4 * i + 16, 4 * j : 4 * j + 16]
                blocks = win.reshape(4, 4, 4, 4).transpose(0, 2, 1, 3).reshape(-1)  # the window block by block
                first[i, j] = relu(4 * (blocks - blocks.mean()) @ W[0] + b[0] + 4 * sigma[n] * model.w_sigma.get_value())
        for i in range(gy - 2):
            for j in range(gx - 2):
                h = relu(first[i : i + 3, j : j + 3].reshape(-1) @ W[1] + b[1])
                noise = ag.patches_of((h @ W[2] + b[2]) / 4)
                y, x0 = 4 * (i + 2), 4 * (j + 2)  # the patch lies at the reach, 8 px, below and right of the window
                np.testing.assert_allclose(got[n, i, j], img[n, y : y + 8, x0 : x0 + 8] - noise, rtol=1e-4, atol=1e-4)
    assert model.reach == 8 and got.shape == (2, gy - 2, gx - 2, 8, 8)
