import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from denoise.training.clipping import clipped_mean, clipped_moments, clipped_noise_variance, level_noise_gain, local_level
from denoise.training.step import as_targets


@pytest.mark.parametrize("x, s", [(0.02, 0.1), (0.5, 0.2), (0.95, 0.1), (1.0, 0.3), (0.3, 0.01)])
def test_clipped_moments_match_sampled_clipped_noise(x, s):
    u = np.clip(x + s * np.random.default_rng(0).standard_normal(1_000_000), 0, 1)
    mean, var = clipped_moments(x, s)
    assert mean == pytest.approx(u.mean(), abs=5e-4)
    assert var == pytest.approx(u.var(), rel=0.01)


def test_the_training_graph_clips_as_the_validation_does():
    out, spread = pt.matrix("out", dtype="float32"), pt.vector("spread", dtype="float32")
    f = pytensor.function([out, spread], as_targets(out, spread))
    o = np.linspace(-0.2, 1.2, 24, dtype=np.float32).reshape(3, 8)
    s = np.array([0.1, 0.0, 0.3], np.float32)
    got = f(o, s)
    np.testing.assert_allclose(got[0], clipped_mean(o[0].astype(np.float64), 0.1), atol=1e-6)
    np.testing.assert_array_equal(got[1], o[1])  # spread 0: unchanged
    np.testing.assert_allclose(got[2], clipped_mean(o[2].astype(np.float64), 0.3), atol=1e-6)


def test_the_local_level_ignores_the_pixel_itself():
    a = np.random.default_rng(0).random((32, 32, 1)).astype(np.float32)
    b = a.copy()
    b[16, 16] += 5.0
    la, lb = local_level(a), local_level(b)
    assert la[16, 16, 0] == pytest.approx(lb[16, 16, 0], abs=1e-5)
    assert lb[16, 17, 0] > la[16, 17, 0] + 0.01  # its neighbours see it
    # and the residual's noise is the pixel's plus the level's
    n = np.random.default_rng(1).standard_normal((256, 256, 1)).astype(np.float32)
    assert np.var(n - local_level(n)) == pytest.approx(level_noise_gain(), rel=0.03)


def test_clipped_noise_variance_reads_the_clean_level_through_the_clipping():
    rng = np.random.default_rng(0)
    for x in (0.0, 0.05, 0.5, 0.97):
        y = np.clip(x + 0.1 * rng.standard_normal((96, 96, 1)), 0, 1).astype(np.float32)
        want = clipped_moments(x, 0.1)[1]
        assert np.median(clipped_noise_variance(y, 0.1)) == pytest.approx(want, rel=0.15)
