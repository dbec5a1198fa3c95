import numpy as np
import pytest

from denoise.noise import _normal_quantiles, parse, standard_normal


@pytest.mark.parametrize(
    "spec, kind, low, high",
    [("gaussian:25", "gaussian", 25, 25), ("gaussian:5-50", "gaussian", 5, 50), ("Poisson:30", "poisson", 30, 30),
     ("saltpepper:0.05", "saltpepper", 0.05, 0.05), ("speckle:10", "speckle", 10, 10), (" gaussian : 0.5 ", "gaussian", 0.5, 0.5)],
)
def test_parse(spec, kind, low, high):
    n = parse(spec)
    assert (n.kind, n.low, n.high) == (kind, low, high)
    assert parse(n.spec) == n


@pytest.mark.parametrize("spec", ["", "gaussian", "gauss:25", "gaussian:-5", "gaussian:50-5", "saltpepper:2", "poisson:0", "gaussian:abc"])
def test_bad_specs_list_the_valid_forms(spec):
    with pytest.raises(ValueError, match="gaussian:SIGMA|fraction|positive|high end") as e:
        parse(spec)
    assert repr(spec) in str(e.value)


def test_gaussian_has_the_asked_sigma_and_is_seeded():
    n = parse("gaussian:25")
    x = np.full((200, 200), 0.5, np.float32)
    a = n.add(x, np.random.default_rng(7))
    b = n.add(x, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert abs(np.std(a - x) - 25 / 255) < 0.002


@pytest.mark.parametrize("shape", [(1,), (3, 5, 7), (2_000_001,)])
def test_standard_normal_is_a_seeded_unit_gaussian(shape):
    z = standard_normal(np.random.default_rng(11), shape)
    assert z.shape == shape and z.dtype == np.float32
    np.testing.assert_array_equal(z, standard_normal(np.random.default_rng(11), shape))
    if z.size > 1000:
        # the moments and the mass within 1, 2 and 3 sigma of N(0, 1), to about 5 standard errors
        assert abs(z.mean()) < 0.004 and abs(z.std() - 1) < 0.003
        assert abs(np.mean(z.astype(np.float64) ** 3)) < 0.02 and abs(np.mean(z.astype(np.float64) ** 4) - 3) < 0.03
        for k, mass in ((1, 0.682689), (2, 0.954500), (3, 0.997300)):
            assert abs(np.mean(np.abs(z) < k) - mass) < 0.0017
        # and the four values made from each 64-bit draw are not correlated
        quads = z[: z.size // 4 * 4].reshape(-1, 4).T
        corr = np.corrcoef(quads)[np.triu_indices(4, 1)]
        assert np.all(np.abs(corr) < 0.006), corr


def test_normal_quantiles():
    z = _normal_quantiles().astype(np.float64)
    assert z.shape == (65536,) and np.all(np.diff(z) > 0)
    np.testing.assert_array_equal(z, -z[::-1])  # symmetric: mean 0, no skew
    assert abs(np.mean(z**2) - 1) < 1e-6 and abs(np.mean(z**4) - 3) < 0.001
    assert 4.3 < z[-1] < 4.35
    # the midpoints of 65536 equal-probability bins: the quartiles lie between the 16384th and the
    # 16385th, and between the 49152nd and the 49153rd
    assert z[16383] < -0.6744897 < z[16384] and z[49151] < 0.6744897 < z[49152]


def test_range_draws_levels_inside_and_per_row():
    n = parse("gaussian:5-50")
    levels = n.draw_levels(1000, np.random.default_rng(0))
    assert levels.min() >= 5 and levels.max() <= 50 and levels.std() > 5
    x = np.zeros((1000, 64), np.float32)
    out = n.add(x, np.random.default_rng(0), levels)
    np.testing.assert_allclose(out.std(axis=1) * 255, levels, rtol=0.35)


def test_other_models_behave():
    rng = np.random.default_rng(0)
    x = np.full((100, 100), 0.5, np.float32)
    sp = parse("saltpepper:0.1").add(x, rng)
    assert 0.08 < np.mean((sp == 0) | (sp == 1)) < 0.12
    po = parse("poisson:30").add(x, rng)
    assert abs(po.mean() - 0.5) < 0.01 and abs(po.std() - np.sqrt(0.5 * 30) / 30) < 0.01
    sk = parse("speckle:25").add(x, rng)
    assert abs(sk.std() - 0.5 * 25 / 255) < 0.003


