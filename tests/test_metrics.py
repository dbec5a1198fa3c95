import numpy as np
import pytest

from denoise.metrics import psnr, ssim


def test_psnr_known_values():
    a = np.zeros((4, 4))
    assert psnr(a, a + 0.1) == pytest.approx(20.0)
    assert psnr(a, a + 10, data_range=255) == pytest.approx(20 * np.log10(25.5))
    assert psnr(a, a) == float("inf")
    with pytest.raises(ValueError, match="shape"):
        psnr(a, np.zeros((4, 5)))


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    a = rng.random((40, 50))
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
    ref = metrics.structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=True)
    assert ssim(a, b) == pytest.approx(ref, abs=1e-6)
    c = rng.random((30, 30, 3))
    d = np.clip(c + 0.05, 0, 1)
    ref = metrics.structural_similarity(c, d, data_range=1.0, gaussian_weights=True, sigma=1.5, channel_axis=2)
    assert ssim(c, d) == pytest.approx(ref, abs=1e-6)
    assert ssim(a, a) == pytest.approx(1.0)
