import numpy as np
import pytest

import denoise
from denoise.noise import parse, parse_mixture
from denoise.training.crops import NoisyCrops
from denoise.training.sampler import MixedSampler, PatchSampler, make_sampler

from ..conftest import TINY, small_config


def test_camera_patches_are_windows_of_noisy_and_clean_crops(training_photos):
    kw = dict(crop=48, pool=6, refresh=2, augment=False)  # unturned, so that patches are windows as they lie
    s = NoisyCrops(training_photos, TINY, parse("camera:30-90"), **kw)
    a = s.sample(200, np.random.default_rng(0))
    b = NoisyCrops(training_photos, TINY, parse("camera:30-90"), **kw).sample(200, np.random.default_rng(0))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)  # seeded
    noisy, sigma, clean = a
    p, k, q = TINY.in_patch, TINY.context, TINY.patch
    assert noisy.shape == (200, p * p) and clean.shape == (200, q * q) and sigma.shape == (200,)
    assert np.all(np.isin(sigma, s.sigma)) and len(np.unique(sigma)) > 1  # each patch: its crop's estimate
    # every clean target is the centre of a window of one of the pool's clean planes, and noisy differs from it
    centre = noisy.reshape(-1, p, p)[:, k : k + q, k : k + q].reshape(-1, q * q)
    assert np.abs(centre - clean).mean() > 0.005
    windows = np.lib.stride_tricks.sliding_window_view(s.clean, (q, q), axis=(2, 3)).reshape(-1, q * q)
    found = {tuple(np.round(w, 6)) for w in windows}
    assert sum(tuple(np.round(c, 6)) in found for c in clean[:20]) == 20


def test_a_crops_sigma_is_the_blind_estimate_of_it(training_photos):
    s = NoisyCrops(training_photos, TINY, parse("camera:60"), crop=64, pool=3, refresh=1)
    s.sample(8, np.random.default_rng(1))
    assert s.sigma.min() > 0 and s.sigma.max() < 0.2


def test_a_mixture_shares_each_batch_among_its_noises(training_photos):
    sampler = make_sampler(training_photos, TINY, parse_mixture("gaussian:10-40+camera:0-100"))
    assert isinstance(sampler, MixedSampler)
    assert [type(s) for s in sampler.samplers] == [PatchSampler, NoisyCrops]
    noisy, sigma, clean = sampler.sample(101, np.random.default_rng(2))
    assert noisy.shape[0] == sigma.shape[0] == clean.shape[0] == 101
    # the first 51 rows carry white noise at the drawn levels, 10 to 40 of 255
    assert np.all((sigma[:51] >= 10 / 255) & (sigma[:51] <= 40 / 255))
    with pytest.raises(ValueError, match="join noise specs with"):
        parse_mixture("gaussian:25+")


@pytest.mark.slow
def test_training_on_camera_noise_lowers_its_validation_error(training_photos):
    model = denoise.train(TINY, training_photos, small_config(noise="gaussian:0-50+camera:0-100", steps=240,
                                                              epoch_steps=80, lr=3e-3))
    hist = model.meta["history"]
    assert model.meta["noise"] == "gaussian:0-50+camera:0-100"
    assert hist[-1][2] > hist[0][2] + 1.0, hist


def test_conditioned_on_the_estimate_white_noise_comes_from_crops_at_their_estimate(training_photos):
    sampler = make_sampler(training_photos, TINY, parse_mixture("gaussian:30+camera:0-100"), condition="estimate")
    assert [type(s) for s in sampler.samplers] == [NoisyCrops, NoisyCrops]
    gaussian = sampler.samplers[0]
    noisy, sigma, clean = gaussian.sample(64, np.random.default_rng(3))
    # each patch's level is its crop's blind estimate: near the true 30 of 255, never exactly it, not all alike
    assert np.all(np.abs(sigma * 255 - 30) < 4) and not np.any(sigma * 255 == 30) and len(np.unique(sigma)) > 1
    p, k, q = TINY.in_patch, TINY.context, TINY.patch
    centre = noisy.reshape(-1, p, p)[:, k : k + q, k : k + q].reshape(-1, q * q)
    assert 20 < np.std(centre - clean) * 255 < 40  # white noise of the level asked for
    with pytest.raises(ValueError, match="condition must be one of"):
        make_sampler(training_photos, TINY, parse_mixture("gaussian:30"), condition="guess")
    with pytest.raises(ValueError, match="condition must be .true., .estimate. or .std."):
        denoise.TrainConfig(steps=1, condition="guess")


def test_the_camera_gain_is_how_much_of_its_noise_the_estimate_misses(training_photos):
    from denoise.training.crops import camera_gain

    camera = camera_gain(training_photos, TINY, parse("camera:60-100"), np.random.default_rng(4), crops=24)
    white = camera_gain(training_photos, TINY, parse("gaussian:20-40"), np.random.default_rng(4), crops=24)
    assert camera > 1.3 and abs(white - 1) < 0.1, (camera, white)  # demosaicked, compressed noise reads low; white does not
    s = NoisyCrops(training_photos, TINY, parse("camera:80"), crop=64, pool=4, level="std")
    noisy, sigma, clean = s.sample(16, np.random.default_rng(5))
    assert np.all(np.isin(sigma, s.sigma)) and np.all(s.sigma > s.estimate)  # each patch: its crop's noise std
    with pytest.raises(ValueError, match="level must be"):
        NoisyCrops(training_photos, TINY, parse("camera:80"), level="true")


@pytest.mark.slow
def test_a_model_given_camera_noise_std_records_its_camera_gain(training_photos):
    model = denoise.train(TINY, training_photos, small_config(noise="gaussian:0-50+camera:0-100", steps=4, epoch_steps=2,
                                                              condition="std"))
    assert model.meta["condition"] == "std" and model.meta["camera_gain"] > 1.3
    plain = denoise.train(TINY, training_photos, small_config(noise="gaussian:0-50+camera:0-100", steps=2, epoch_steps=2))
    assert "camera_gain" not in plain.meta and "condition" not in plain.meta
