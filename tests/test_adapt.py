import logging

import numpy as np
import pytest

import denoise
from denoise.metrics import psnr

from .conftest import TINY, noisy, small_config

SIGMA = 25 / 255


def _stripes(seed: int, size=96) -> np.ndarray:
    """Sharp-edged bars at random angles: nothing like the photos the model learnt from."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    t = rng.uniform(0, np.pi)
    phase = (np.cos(t) * xx + np.sin(t) * yy) / rng.uniform(4, 9)
    return np.where(np.sin(phase) > 0, 0.85, 0.15).astype(np.float32)


@pytest.fixture(scope="module")
def photo_model(training_photos):
    """A small model trained on photos: mismatched to bar patterns."""
    return denoise.train(TINY, training_photos, small_config(steps=300, epoch_steps=300, lr=3e-3))


@pytest.fixture(scope="module")
def bars():
    clean = [_stripes(s) for s in range(4)]
    return clean, [noisy(c, SIGMA, seed=10 + i) for i, c in enumerate(clean)]


def _score(model, clean, images):
    return float(np.mean([psnr(c, denoise.denoise_image(model, n, SIGMA)) for c, n in zip(clean, images)]))


@pytest.mark.slow
def test_adaptation_improves_a_mismatched_model_and_leaves_it_unchanged(photo_model, bars):
    clean, images = bars
    weights = photo_model.get_weights()
    adapted = denoise.adapt(photo_model, images, seconds=8, sigma=SIGMA)
    report = adapted.meta["adaptation"]
    assert report["used"] and report["loss_after"] < report["loss_before"] and report["steps"] > 50
    assert report["seconds"] <= 8 * 1.25
    assert _score(adapted, clean, images) > _score(photo_model, clean, images) + 0.3
    for k, w in photo_model.get_weights().items():
        np.testing.assert_array_equal(w, weights[k])  # the model given is not changed


@pytest.mark.slow
def test_adaptation_that_does_not_help_keeps_the_weights_and_says_so(photo_model, bars, caplog):
    # a zero learning rate cannot lower the loss: the original weights come back, flagged
    with caplog.at_level(logging.WARNING, logger="denoise.adapt"):
        adapted = denoise.adapt(photo_model, bars[1], seconds=3, sigma=SIGMA, lr=0.0)
    report = adapted.meta["adaptation"]
    assert report["used"] is False and report["loss_after"] == report["loss_before"]
    assert "did not lower" in caplog.text
    for k, w in photo_model.get_weights().items():
        np.testing.assert_array_equal(adapted.get_weights()[k], w)


def test_adapt_checks_its_arguments(photo_model, bars):
    with pytest.raises(ValueError, match="seconds"):
        denoise.adapt(photo_model, bars[1], seconds=0)
    with pytest.raises(ValueError, match="not both"):
        denoise.adapt(photo_model, bars[1], seconds=1, sigma=0.1, noise="poisson")
    with pytest.raises(ValueError, match="no images"):
        denoise.adapt(photo_model, [], seconds=1)
    with pytest.raises(ValueError, match="at least"):
        denoise.adapt(photo_model, [np.zeros((3, 3), np.float32)], seconds=1)


@pytest.mark.slow
def test_adaptation_learns_the_clipped_noise_of_dark_frames(photo_model, bars):
    # frames clipped at black: their noise is not zero-mean there, which the model trained on
    # unclipped noise does not know; the clip-aware objective teaches it
    clean, images = bars
    dark_clean = [np.clip(c - 0.2, 0, 1) for c in clean]
    dark = [np.clip(n - 0.2, 0, 1) for n in images]
    adapted = denoise.adapt(photo_model, dark, seconds=10, sigma=SIGMA)
    assert adapted.meta["adaptation"]["used"]
    assert _score(adapted, dark_clean, dark) > _score(photo_model, dark_clean, dark) + 0.25


def test_colour_clipped_under_a_one_channel_model_is_not_adapted_to(photo_model, bars, caplog):
    # RGB clipped at black, seen as opponent planes: that clipping is not modelled, and the
    # objective's targets would teach the model to keep the noise there
    _, images = bars
    dark = [np.clip(np.dstack([n - 0.2, n - 0.1, n - 0.2]), 0, 1) for n in images]
    from denoise.adapt import CLIPPED_LIMIT
    from denoise.training.selfsupervised import SelfNoise, recorruption_samplers

    share = lambda ims: recorruption_samplers(photo_model, ims, SelfNoise("gaussian", 25.0))[3]
    assert share(dark) > CLIPPED_LIMIT and share([np.dstack([n] * 3) for n in images]) < CLIPPED_LIMIT
    assert share([np.clip(n - 0.2, 0, 1) for n in images]) == 0  # gray: modelled
    with caplog.at_level(logging.WARNING, logger="denoise.adapt"):
        kept = denoise.adapt(photo_model, dark, seconds=5, sigma=SIGMA)
    assert kept.meta["adaptation"]["used"] is False and "clipped" in kept.meta["adaptation"]["reason"]
    assert "not adapting" in caplog.text
    for k, w in photo_model.get_weights().items():
        np.testing.assert_array_equal(kept.get_weights()[k], w)


def test_a_model_with_a_surround_and_neighbours_adapts(bars):
    import dataclasses

    arch = dataclasses.replace(TINY, surround=(4,), surround_grid=4, neighbours=2, search=4)
    model = denoise.Autoencoder(arch, seed=0)
    adapted = denoise.adapt(model, bars[1], seconds=6, sigma=SIGMA)
    report = adapted.meta["adaptation"]
    assert adapted.arch == arch and report["steps"] > 50 and report["used"]
    assert report["loss_after"] < report["loss_before"]
