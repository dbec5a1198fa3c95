import numpy as np
import pytest

import denoise
from denoise.noise import parse
from denoise.patches import DIHEDRAL, dihedral
from denoise.training import PatchSampler

from ..conftest import TINY, small_config


def test_sampler_shapes_and_augmentation(training_photos):
    s = PatchSampler(training_photos, TINY, parse("gaussian:25"))
    x, sig, y = s.sample(32, np.random.default_rng(0))
    assert x.shape == (32, 64) and y.shape == (32, 16) and sig.shape == (32,)
    np.testing.assert_allclose(sig, 25 / 255, rtol=1e-6)
    # the clean target is the centre of the noisy input, up to the noise
    centre = x.reshape(32, 8, 8)[:, 2:6, 2:6].reshape(32, 16)
    assert np.std(centre - y) == pytest.approx(25 / 255, rel=0.15)


def _windows(images, size, channels):
    """Every (size, size, channels) window of the images (one channel at a
    time for one-channel patches), as a set of bytes."""
    found = set()
    for img in images:
        win = np.lib.stride_tricks.sliding_window_view(img, (size, size), axis=(0, 1))  # (h', w', 3, s, s)
        win = win.transpose(0, 1, 3, 4, 2) if channels == 3 else np.moveaxis(win, 2, 0)[..., None]
        found.update(w.tobytes() for w in np.ascontiguousarray(win).reshape(-1, size, size, channels))
    return found


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("augment", [False, True])
def test_sampled_patches_are_windows_of_the_images(training_photos, channels, augment):
    arch = denoise.Architecture(patch=4, context=2, channels=channels, hidden=(8,))
    rgb = [np.stack([p, 0.8 * p, 0.6 * p], axis=2) if p.ndim == 2 else p for p in training_photos]
    rgb[1] = rgb[1][:150, :120]  # images of different widths index through different offset tables
    paired = [2 * img for img in rgb]  # "noisy" = 2 x clean, exactly: shows the pairing
    s = PatchSampler(rgb, arch, parse("gaussian:25"), noisy=paired, augment=augment)
    n = 200
    x, sig, y = s.sample(n, np.random.default_rng(3))
    assert set(sig) <= {np.float32(np.std(img)) for img in rgb}  # sigma = std(noisy - clean) of the image
    rows = x.reshape(n, 8, 8, channels) / 2
    # the target is the centre of the same patch, flipped or turned with it
    np.testing.assert_array_equal(rows[:, 2:6, 2:6].reshape(n, -1), y)
    windows = _windows(rgb, 8, channels)
    used = set()
    for r in rows:
        hits = [t for t in range(len(DIHEDRAL)) if np.ascontiguousarray(dihedral(r[None], t, inverse=True)[0]).tobytes() in windows]
        assert hits, "a sampled patch is no window of any image, under any flip or turn"
        used.add(hits[0])
    assert used == (set(range(len(DIHEDRAL))) if augment else {0})
    # positions and images vary
    assert len({r.tobytes() for r in rows}) > 0.95 * n  # (a flat or clipped patch may repeat)


def test_images_smaller_than_a_patch_are_refused():
    with pytest.raises(ValueError, match="at least"):
        denoise.train(TINY, [np.zeros((4, 4), np.float32)], small_config())


def test_poisson_patches_are_given_their_rms_noise_level(photo_gray):
    # what denoising then gives a noise-conditioned model: an estimate of the noise's std, not 0
    arch = denoise.Architecture(patch=4, context=2, hidden=(8, 4, 8), noise_input=True)
    s = PatchSampler([photo_gray[:, :, None]], arch, parse("poisson:20"))
    noisy, sigma, _ = s.sample(4000, np.random.default_rng(0))
    patches, _, _ = s.draw(4000, np.random.default_rng(0))  # the same draw: sample() begins with it
    err = noisy - patches.reshape(4000, -1)
    assert np.sqrt(np.mean(err**2)) == pytest.approx(np.sqrt(np.mean(sigma**2)), rel=0.05)
    assert sigma.min() > 0


def test_an_opponent_model_trains_on_opponent_planes():
    from denoise.imaging import to_opponent
    from denoise.noise import parse_mixture
    from denoise.training.sampler import make_sampler

    arch = denoise.Architecture(patch=4, context=2, channels=3, hidden=(8, 4, 8), noise_input=True, colour="opponent")
    img = np.random.default_rng(0).random((40, 40, 3)).astype(np.float32)
    rows, _, target = make_sampler([img], arch, parse_mixture("gaussian:0"), augment=False).sample(20, np.random.default_rng(1))
    planes = np.ascontiguousarray(to_opponent(img))
    windows = np.lib.stride_tricks.sliding_window_view(planes, (8, 8), axis=(0, 1)).transpose(0, 1, 3, 4, 2).reshape(-1, 192)
    for row in rows:
        assert np.abs(windows - row).max(axis=1).min() < 1e-6
