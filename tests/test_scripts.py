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
