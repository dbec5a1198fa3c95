import numpy as np
import pytest

import denoise
from denoise import imagefile
from denoise.imaging import to_float

SAMPLES = __import__("pathlib").Path(__file__).resolve().parent.parent / "sample_images"

#: One small architecture shared by the tests, so each backend compiles it once.
TINY = denoise.Architecture(patch=4, context=2, hidden=(32, 16, 32), noise_input=True)


def step_rows(arch, n, seed):
    """Random rows for a training step of ``arch``: ``(noisy, sigma, clean)``, in the step's order."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, arch.in_size - arch.noise_input), dtype=np.float32)
    y = rng.random((n, arch.out_size), dtype=np.float32)
    return x, np.full(n, 0.1, np.float32), y


def small_config(**kw):
    """A TrainConfig for the tests: a few small steps, seeded, quiet; ``kw`` overrides."""
    base = dict(noise="gaussian:10-40", steps=60, epoch_steps=30, batch_size=64, val_patches=512, progress=False, seed=5)
    base.update(kw)
    return denoise.TrainConfig(**base)


@pytest.fixture(scope="session")
def default_model():
    return denoise.load_model("default")


@pytest.fixture(scope="session")
def photo_gray():
    """A real 8-bit grayscale photo, float32 [0, 1], cropped small."""
    a, _ = imagefile.read_image(SAMPLES / "mountain_trail_gray.png")
    return to_float(a)[100:228, 200:360]


@pytest.fixture(scope="session")
def photo_rgb():
    a, _ = imagefile.read_image(SAMPLES / "honey_bee.jpg")
    return a[150:246, 250:378]


@pytest.fixture(scope="session")
def training_photos():
    """Small crops of two sample photos (for training tests only)."""
    out = []
    for name in ("dogs_gray.png", "citrus.jpg"):
        a, _ = imagefile.read_image(SAMPLES / name)
        x = to_float(a)
        out.append(x[:160, :160])
    return out


def noisy(x, sigma, seed=0):
    return (x + np.random.default_rng(seed).standard_normal(x.shape) * sigma).astype(np.float32)
