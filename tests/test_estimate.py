import numpy as np
import pytest

from denoise.estimate import estimate_sigma

from .conftest import noisy


@pytest.mark.parametrize("level", [15, 25, 50])
def test_estimate_sigma_on_a_real_photo(photo_gray, level):
    est = estimate_sigma(noisy(photo_gray, level / 255)) * 255
    assert abs(est - level) < 0.12 * level + 1.0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shape", [(64, 48, 3), (63, 47), (30, 42, 1), (2, 2)])
def test_estimate_sigma_reads_integer_images_in_0_1_units(dtype, shape):
    # integers go through an exact histogram; float64 of value / top takes the sorting path
    rng = np.random.default_rng(sum(shape))
    top = np.iinfo(dtype).max
    x = np.clip(top / 2 + top / 10 * rng.standard_normal(shape), 0, top).astype(dtype)
    assert estimate_sigma(x) == pytest.approx(estimate_sigma(x / top), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("shape", [(64, 48, 3), (63, 47), (30, 42, 1)])
def test_estimate_sigma_finds_the_level_of_white_noise(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    top = np.iinfo(dtype).max if dtype != np.float32 else 1
    x = np.clip(top / 2 + top / 10 * rng.standard_normal(shape), 0, top).astype(dtype)
    assert estimate_sigma(x) == pytest.approx(0.1, rel=0.2)


def test_estimate_sigma_refuses_tiny_or_empty_images():
    with pytest.raises(ValueError, match="at least 2x2 pixels; got shape"):
        estimate_sigma(np.zeros((1, 5)))
    with pytest.raises(ValueError, match="finite"):
        estimate_sigma(np.full((4, 4), np.nan))
