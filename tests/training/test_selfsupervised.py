import numpy as np
import pytest

import denoise
from denoise.imaging import OPPONENT
from denoise.training.selfsupervised import (
    ALPHA,
    RecorruptionSampler,
    SelfNoise,
    holdout_strips,
    model_planes,
    poisson_variance,
    recorruption_samplers,
)

from ..conftest import TINY, noisy, small_config

RGB_TINY = denoise.Architecture(patch=4, context=2, hidden=(32, 16, 32), noise_input=True, channels=3)


@pytest.mark.parametrize("spec, kind, level", [
    ("gaussian:25", "gaussian", 25.0), ("unknown", "gaussian", None), (None, "gaussian", None),
    ("poisson", "poisson", None), ("poisson:30", "poisson", 30.0),
])
def test_noise_specs(spec, kind, level):
    n = SelfNoise.parse(spec)
    assert (n.kind, n.level) == (kind, level)
    assert SelfNoise.parse(n.spec) == n


@pytest.mark.parametrize("spec", ["gaussian:5-50", "camera:40", "speckle:25", "gaussian", "loud"])
def test_noise_the_objective_cannot_model_is_refused(spec):
    with pytest.raises(ValueError, match="self-supervised"):
        SelfNoise.parse(spec)


def test_recorrupted_inputs_and_targets_carry_independent_noise_of_the_stated_levels():
    # what makes R2R work: given the clean image, the input's noise and the target's are
    # uncorrelated, the input's has std sigma sqrt(1 + a^2) (the level the model is told)
    # and the target's sigma sqrt(1 + 1/a^2)
    rng = np.random.default_rng(0)
    clean = np.full((64, 64, 1), 0.5, np.float32)
    sigma = 0.1
    y = clean + sigma * rng.standard_normal(clean.shape).astype(np.float32)
    s = RecorruptionSampler([y], TINY, [sigma], augment=False)
    rows, level, target = s.sample(20000, np.random.default_rng(1))
    p, k, q = TINY.in_patch, TINY.context, TINY.patch
    centre = rows.reshape(-1, p, p, 1)[:, k : k + q, k : k + q, :].reshape(len(rows), -1)
    e_in, e_out = centre[:, 0] - 0.5, target[:, 0] - 0.5
    assert np.allclose(level, sigma * np.sqrt(1 + ALPHA**2))
    assert np.std(e_in) == pytest.approx(sigma * np.sqrt(1 + ALPHA**2), rel=0.05)
    assert np.std(e_out) == pytest.approx(sigma * np.sqrt(1 + 1 / ALPHA**2), rel=0.05)
    # positions repeat across draws of the small image, so the noise n is shared; its
    # contributions cancel: cov(n + a z, n - z / a) = sigma^2 - sigma^2 = 0
    assert abs(np.corrcoef(e_in, e_out)[0, 1]) < 0.03


def test_poisson_variance_follows_the_values_through_the_opponent_planes():
    model = denoise.Autoencoder(TINY, seed=0)
    peak, colour = 40.0, np.array([0.8, 0.4, 0.1], np.float32)
    shots = (np.random.default_rng(2).poisson(colour * peak, (80, 80, 3)) / peak).astype(np.float32)
    planes = model_planes(model, shots)
    stated = poisson_variance(planes, True, peak).mean(axis=(0, 1))
    assert stated == pytest.approx(np.var(planes.reshape(-1, 3), axis=0), rel=0.1)
    assert stated == pytest.approx(OPPONENT**2 @ (colour / peak), rel=0.05)
    gray = shots[:, :, :1]
    assert poisson_variance(gray, False, peak).mean() == pytest.approx(np.var(gray), rel=0.1)


def test_held_back_strips_do_not_overlap_the_training_part():
    a = np.arange(80 * 30, dtype=np.float32).reshape(80, 30, 1)
    small = np.zeros((9, 9, 1), np.float32)
    train, val = holdout_strips([a, small], rows=8)
    assert train[0].shape[0] + val[0].shape[0] == 80 and val[0].shape[0] == 10
    assert not np.intersect1d(train[0], val[0]).size
    assert train[1] is small and val[1] is small  # too small to split: both


def test_a_three_channel_model_needs_rgb():
    with pytest.raises(ValueError, match="RGB"):
        model_planes(denoise.Autoencoder(RGB_TINY, seed=0), np.zeros((20, 20), np.float32))


def test_noisy_only_training_lowers_the_error_against_the_unseen_clean_image(training_photos):
    sigma = 25 / 255
    noisy_photos = [noisy(p, sigma, seed=i) for i, p in enumerate(training_photos)]  # not clipped: see clipped()
    model = denoise.train_noisy(TINY, noisy_photos, small_config(steps=300, epoch_steps=100, lr=3e-3),
                                noise="gaussian:25")
    first = denoise.Autoencoder(TINY, seed=5)
    ref, seen = training_photos[0], noisy_photos[0]  # gray
    before = denoise.metrics.psnr(ref, denoise.denoise_image(first, seen, sigma))
    after = denoise.metrics.psnr(ref, denoise.denoise_image(model, seen, sigma))
    assert after > before + 1.0, (before, after)
    assert after > denoise.metrics.psnr(ref, seen) + 1.0, after
    assert model.meta["self_supervised"]["noise"] == "gaussian:25"


def test_noisy_only_training_is_seeded_and_resumes(training_photos, tmp_path):
    photos = [noisy(p, 0.1, seed=i) for i, p in enumerate(training_photos)]
    cfg = dict(steps=40, epoch_steps=20, lr_decay="none")
    a = denoise.train_noisy(TINY, photos, small_config(**cfg)).get_weights()
    ck = tmp_path / "m.npz"
    denoise.train_noisy(TINY, photos, small_config(**{**cfg, "steps": 20}), checkpoint=ck)
    b = denoise.train_noisy(TINY, photos, small_config(**cfg), checkpoint=ck).get_weights()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-6, atol=1e-7)


def test_clipped_pixels_of_opponent_planes_get_no_recorruption():
    # at black or white the noisy value is known, so where the clipping is not modelled
    # (RGB under a one-channel model) a recorruption could be read off the input and its
    # target predicted: those pixels keep their value in input and target
    from denoise.training.selfsupervised import clipped

    img = np.full((40, 40), 128, np.uint8)
    img[:, :20] = 0
    rgb = np.dstack([img, img, img])
    assert clipped(img)[:, :20].all() and not clipped(img)[:, 20:].any()
    assert clipped(np.dstack([img, np.full_like(img, 90), img]))[:, :20].all()  # any channel
    model = denoise.Autoencoder(TINY, seed=0)
    train, _, _, share = recorruption_samplers(model, [rgb], SelfNoise("gaussian", 25.0), augment=False)
    assert share == pytest.approx(0.5) and not train.clipped_targets
    rows, _, target = train.sample(4000, np.random.default_rng(0))
    p = TINY.in_patch
    first = rows.reshape(-1, p, p)[:, :, 0]  # the left column of each patch
    black = np.isclose(target.reshape(-1, TINY.patch, TINY.patch)[:, :, 0], 0)
    assert (first == 0).mean() > 0.3 and black.mean() > 0.3  # black columns arrive untouched


def test_clipped_gray_noise_is_recorrupted_at_its_own_variance_and_compared_clipped():
    # a gray frame clipped at black: every pixel is recorrupted, at the clipped noise's own
    # (smaller) variance near black, and the rows carry the spread the loss clips the output at
    rng = np.random.default_rng(0)
    clean = np.full((64, 64), 0.02, np.float32)
    clean[:, 32:] = 0.5
    y = (np.clip(clean + 0.1 * rng.standard_normal(clean.shape), 0, 1) * 255).round().astype(np.uint8)
    model = denoise.Autoencoder(TINY, seed=0)
    train, _, _, share = recorruption_samplers(model, [y], SelfNoise("gaussian", 25.5), augment=False)
    assert share == 0 and train.clipped_targets
    rows, level, target, spread = train.sample(20000, np.random.default_rng(1))
    assert np.allclose(spread, 0.1)
    var = train.base._noisy_buffer.reshape(-1, 64)  # the variance map of the training part
    dark, mid = np.median(var[8:48, 4:28]), np.median(var[8:48, 36:60])
    assert mid == pytest.approx(0.01, rel=0.1)
    assert 0.003 < dark < 0.006  # clip(0.02 + N(0, 0.1^2), 0, 1) has variance 0.0044


def test_thinned_poisson_halves_are_independent_unbiased_copies_even_at_low_counts():
    rng = np.random.default_rng(0)
    peak, x = 30.0, 1.5 / 30  # one and a half photons
    y = (rng.poisson(x * peak, (200000, 1, 1, 1)) / peak).astype(np.float32)
    from denoise.training.selfsupervised import thin

    inp, tgt = thin(y, np.full(len(y), peak), 0.8, np.random.default_rng(1))
    assert inp.mean() == pytest.approx(x, rel=0.02) and tgt.mean() == pytest.approx(x, rel=0.02)
    assert inp.var() == pytest.approx(x / (0.8 * peak), rel=0.03)
    assert abs(np.corrcoef(inp.ravel(), tgt.ravel())[0, 1]) < 0.01


def test_poisson_images_are_thinned_at_their_fitted_peak():
    # the peak fitted from the noise-level function, and thinning instead of recorruption
    from denoise.training.selfsupervised import fitted_peak

    yy, xx = np.mgrid[:128, :128]
    discs = ((xx - 40) ** 2 + (yy - 40) ** 2 < 300) | ((xx - 90) ** 2 + (yy - 80) ** 2 < 200)
    clean = (0.05 + 0.6 * xx / 128 + 0.3 * discs).astype(np.float32)  # a ramp from dark, two bright discs
    y = (np.random.default_rng(2).poisson(clean * 40.0) / 40.0).astype(np.float32)
    assert fitted_peak(y[:, :, None], False) == pytest.approx(40, rel=0.1)
    model = denoise.Autoencoder(TINY, seed=0)
    train, _, _, _ = recorruption_samplers(model, [y], SelfNoise("poisson"), augment=False)
    assert train.peaks[0] == pytest.approx(40, rel=0.1)
    rows, _, target = train.sample(64, np.random.default_rng(3))
    step = 1 / (0.8 * train.peaks[0])
    assert np.allclose(rows / step, np.rint(rows / step), atol=1e-3)  # inputs are whole thinned counts
