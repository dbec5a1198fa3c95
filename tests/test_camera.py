import numpy as np
import pytest

from denoise.camera import (
    add_camera_noise,
    camera_pair,
    demosaic,
    draw_params,
    linear_to_srgb,
    mosaic,
    srgb_to_linear,
)
from denoise.estimate import estimate_sigma
from denoise.noise import parse


def _no_jpeg(rng, level, **kw):
    p = draw_params(rng, level)
    return type(p)(**{**p.__dict__, "jpeg_quality": None, "sharpen": 0.0, **kw})


def test_the_tone_curve_and_the_mosaic_round_trip():
    x = np.random.default_rng(0).random((6, 8, 3), dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=2e-6)
    flat = np.broadcast_to(np.array([0.2, 0.5, 0.7], np.float32), (6, 8, 3))
    for phase in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        raw = mosaic(flat, phase)
        assert sorted(np.unique(np.round(raw, 6))) == [0.2, 0.5, 0.7]
        np.testing.assert_allclose(demosaic(raw, phase)[1:-1, 1:-1], flat[1:-1, 1:-1], atol=1e-6)


def test_camera_noise_is_seeded_and_grows_with_the_level():
    x = np.full((64, 64, 3), 0.4, np.float32)
    a = add_camera_noise(x, np.random.default_rng(1), 50)
    np.testing.assert_array_equal(a, add_camera_noise(x, np.random.default_rng(1), 50))
    assert not np.array_equal(a, add_camera_noise(x, np.random.default_rng(2), 50))
    stds = [np.std(add_camera_noise(x, np.random.default_rng(3), lv, _no_jpeg(np.random.default_rng(3), lv)) - x)
            for lv in (20, 60, 100)]
    assert stds[0] < stds[1] < stds[2], stds


def test_camera_noise_depends_on_brightness_and_colour_and_is_spatially_correlated():
    rng = np.random.default_rng(4)
    params = _no_jpeg(rng, 90)
    std = {}
    for level in (0.02, 0.1):
        x = np.full((64, 64, 3), level, np.float32)
        n = add_camera_noise(x, rng, 90, params) - x
        std[level] = n[4:-4, 4:-4].std(axis=(0, 1))
    assert np.all(std[0.02] < 0.85 * std[0.1]), std  # near black: less signal, less shot noise
    assert std[0.1][0] > 1.2 * std[0.1][1] and std[0.1][2] > 1.2 * std[0.1][1], std  # white balance gains
    g = n[4:-4, 4:-4, 1]
    assert np.corrcoef(g[:, :-1].ravel(), g[:, 1:].ravel())[0, 1] > 0.2  # demosaicked: neighbours share noise
    # which is why the finest wavelet band reads well below the noise's level
    assert estimate_sigma(np.clip(x + n, 0, 1)) < 0.8 * n.std()


def test_gray_images_and_the_spec():
    x = np.full((32, 40), 0.5, np.float32)
    y = parse("camera:40").add(x, np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.float32 and 0 < np.std(y - x) < 0.1
    assert np.all(np.round(y * 255) == y * 255)  # stored as 8-bit values, as a camera's file
    with pytest.raises(ValueError, match="camera noise levels run from 0 to 150"):
        parse("camera:20-200")
    with pytest.raises(ValueError, match="one whole image at a time"):
        parse("camera:20-80").add(np.zeros((4, 8, 8, 1), np.float32), np.random.default_rng(0), np.array([20.0] * 4))


@pytest.mark.parametrize("shape", [(48, 64, 3), (48, 64)])
def test_the_target_is_the_picture_as_the_camera_stores_it_without_the_noise(shape):
    x = np.random.default_rng(5).random(shape, dtype=np.float32)
    x = np.clip(x + np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 64, *[1] * (len(shape) - 2)), 0, 1) * 0.8  # a picture with detail and a gradient
    rng = np.random.default_rng(6)
    params = type(draw_params(rng, 60))(**{**draw_params(rng, 60).__dict__, "jpeg_quality": 75})
    noisy, target = camera_pair(x, np.random.default_rng(7), 60, params)
    np.testing.assert_array_equal(noisy, add_camera_noise(x, np.random.default_rng(7), 60, params))
    assert target.shape == x.shape and target.dtype == np.float32
    assert not np.array_equal(target, x) and np.abs(target - x).mean() < 0.1  # through the JPEG: near, not equal
    np.testing.assert_array_equal(target * 255, np.rint(target * 255))  # stored in 8 bits
    # without JPEG the target is the picture rounded to 8 bits, whatever the noise
    plain = _no_jpeg(rng, 60)
    _, rounded = camera_pair(x, np.random.default_rng(8), 60, plain)
    np.testing.assert_array_equal(rounded, np.rint(x * 255).astype(np.float32) / 255)
    # a camera with almost no noise records nearly its target, further from the picture itself
    quiet = type(params)(**{**params.__dict__, "shot": 1e-7, "read": 1e-9, "sharpen": 0.0})
    noisy, target = camera_pair(x, np.random.default_rng(9), 0, quiet)
    assert np.abs(noisy - target).mean() < 0.5 * np.abs(noisy - x).mean()
