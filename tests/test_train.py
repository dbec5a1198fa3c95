import numpy as np
import pytest

import denoise
from denoise.noise import parse
from denoise.train import PatchSampler

from .conftest import TINY


def _cfg(**kw):
    base = dict(noise="gaussian:10-40", steps=60, epoch_steps=30, batch_size=64, val_patches=512, progress=False, seed=5)
    base.update(kw)
    return denoise.TrainConfig(**base)


def test_training_lowers_validation_error(training_photos):
    model = denoise.train(TINY, training_photos[:1], _cfg(steps=300, epoch_steps=100, lr=3e-3), val_clean=training_photos[1:])
    hist = model.meta["history"]
    assert [h[0] for h in hist] == [0, 100, 200, 300]
    assert hist[-1][2] > hist[0][2] + 1.0, hist  # validation PSNR, dB


def test_same_seed_same_weights(training_photos):
    a = denoise.train(TINY, training_photos, _cfg()).get_weights()
    b = denoise.train(TINY, training_photos, _cfg()).get_weights()
    c = denoise.train(TINY, training_photos, _cfg(seed=6)).get_weights()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_resume_equals_uninterrupted(training_photos, tmp_path):
    # a constant learning rate, so that a first call with a budget of 30 steps is the
    # first half of the 60-step run (a cosine schedule follows each call's budget)
    full = denoise.train(TINY, training_photos, _cfg(steps=60, lr_decay="none")).get_weights()
    ck = tmp_path / "m.npz"
    denoise.train(TINY, training_photos, _cfg(steps=30, lr_decay="none"), checkpoint=ck)
    # a fresh model, as a new process would build; the checkpoint restores weights, optimiser and RNG
    resumed = denoise.train(TINY, training_photos, _cfg(steps=60, lr_decay="none"), checkpoint=ck)
    assert resumed.meta["steps"] == 60
    for k in full:
        np.testing.assert_allclose(resumed.get_weights()[k], full[k], rtol=1e-6, atol=1e-7)


def test_sgd_and_paired_images(training_photos):
    clean = training_photos[:1]
    rng = np.random.default_rng(0)
    noisy = [c + rng.standard_normal(c.shape).astype(np.float32) * 0.1 for c in clean]
    model = denoise.train(TINY, clean, _cfg(optimizer="sgd", lr=0.01, steps=200, epoch_steps=100), noisy=noisy)
    hist = model.meta["history"]
    assert hist[-1][2] > hist[0][2]


def test_sampler_shapes_and_augmentation(training_photos):
    s = PatchSampler(training_photos, TINY, parse("gaussian:25"))
    x, y, sig = s.sample(32, np.random.default_rng(0))
    assert x.shape == (32, 64) and y.shape == (32, 16) and sig.shape == (32,)
    np.testing.assert_allclose(sig, 25 / 255, rtol=1e-6)
    # the clean target is the centre of the noisy input, up to the noise
    centre = x.reshape(32, 8, 8)[:, 2:6, 2:6].reshape(32, 16)
    assert np.std(centre - y) == pytest.approx(25 / 255, rel=0.15)


@pytest.mark.parametrize("channels", [1, 3])
def test_sampled_patches_are_windows_of_the_images(training_photos, channels):
    arch = denoise.Architecture(patch=4, context=2, channels=channels, hidden=(8,))
    rgb = [np.stack([p, 0.8 * p, 0.6 * p], axis=2) if p.ndim == 2 else p for p in training_photos]
    s = PatchSampler(rgb, arch, parse("gaussian:25"), noisy=rgb, augment=False)  # noisy == clean: the raw windows
    x, y, sig = s.sample(40, np.random.default_rng(3))
    assert not sig.any()
    rows = x.reshape(40, 8, 8, channels)
    found = 0
    for img in rgb:
        win = np.lib.stride_tricks.sliding_window_view(img, (8, 8), axis=(0, 1))  # (h', w', 3, 8, 8)
        win = win.transpose(0, 1, 3, 4, 2) if channels == 3 else np.moveaxis(win, 2, 0)[..., None]
        flat = win.reshape(-1, 8 * 8 * channels)
        for r in rows.reshape(40, -1):
            found += bool(np.any(np.all(flat == r, axis=1)))
    assert found == 40
    # positions and images vary
    assert len({r.tobytes() for r in rows.reshape(40, -1)}) == 40


@pytest.mark.parametrize(
    "kw, match",
    [(dict(steps=None, epochs=None, minutes=None), "budget"), (dict(optimizer="rmsprop"), "optimizer"),
     (dict(noise="blur:3"), "noise"), (dict(batch_size=0), "batch_size")],
)
def test_bad_configs(kw, match):
    with pytest.raises(ValueError, match=match):
        _cfg(**kw)


def test_images_smaller_than_a_patch_are_refused():
    with pytest.raises(ValueError, match="at least"):
        denoise.train(TINY, [np.zeros((4, 4), np.float32)], _cfg())


@pytest.mark.parametrize("backend", ["c", "jax"])
def test_training_backends_agree_with_numba(training_photos, backend):
    if backend == "jax":
        pytest.importorskip("jax")
    ref = denoise.train(TINY, training_photos, _cfg(steps=20)).get_weights()
    other = denoise.train(TINY, training_photos, _cfg(steps=20, backend=backend))
    for k, v in other.get_weights().items():
        assert isinstance(v, np.ndarray)
        np.testing.assert_allclose(v, ref[k], rtol=1e-3, atol=1e-5)
    img = training_photos[0][:40, :40]
    ours = denoise.denoise_image(other, img, 0.1)
    np.testing.assert_allclose(ours, denoise.denoise_image(denoise.Autoencoder(TINY, weights=ref), img, 0.1), atol=1e-4)
