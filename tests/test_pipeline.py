import dataclasses

import numpy as np
import pytest

import denoise
from denoise import imaging, pipeline
from denoise.estimate import estimate_sigma
from denoise.imaging import from_float, to_float
from denoise.metrics import psnr
from denoise.pipeline import denoise_image, resolve_sigma

from .conftest import noisy


def test_lowers_error_at_sigma_25_gray(default_model, photo_gray):
    x = noisy(photo_gray, 25 / 255)
    out = denoise_image(default_model, x, 25 / 255)
    assert psnr(photo_gray, out) > psnr(photo_gray, x) + 5.0


def test_lowers_error_at_sigma_25_rgb_uint8(default_model, photo_rgb):
    clean = to_float(photo_rgb)
    x = from_float(noisy(clean, 25 / 255, seed=1), np.uint8)
    out = denoise_image(default_model, x)  # sigma estimated
    assert out.dtype == np.uint8 and out.shape == photo_rgb.shape
    assert psnr(clean, to_float(out)) > psnr(clean, to_float(x)) + 5.0


@pytest.mark.parametrize("name", denoise.list_models())
@pytest.mark.parametrize("level", [15, 25, 50])
def test_every_shipped_model_denoises_blind_and_known(name, level, photo_gray):
    model = denoise.load_model(name)
    x = noisy(photo_gray, level / 255, seed=level)
    known = psnr(photo_gray, denoise_image(model, x, level / 255))
    blind = psnr(photo_gray, denoise_image(model, x))
    assert known > psnr(photo_gray, x) + 5.0
    assert abs(blind - known) < 0.5, (blind, known)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_resolve_sigma_equals_the_estimate_denoise_image_makes(default_model, photo_rgb, dtype, monkeypatch):
    # tiles of a huge image share the sigma resolve_sigma estimates from the whole image
    x = from_float(noisy(to_float(photo_rgb), 20 / 255, seed=4), dtype)
    rgba = np.concatenate([x, np.full(x.shape[:2] + (1,), x.max(), dtype)], axis=2)
    expected = estimate_sigma(x)
    assert expected == pytest.approx(estimate_sigma(to_float(x)), rel=1e-5)
    assert resolve_sigma(default_model, rgba, None) == expected
    assert resolve_sigma(default_model, x[:, :, 0], None) == estimate_sigma(x[:, :, 0])
    assert resolve_sigma(default_model, x, 0.1) == 0.1
    # denoise_image estimates from the image as given (integers take the exact, faster path), not a float copy
    crop = x[:48, :40]
    known = denoise_image(default_model, crop, estimate_sigma(crop))
    seen = []
    monkeypatch.setattr(pipeline, "estimate_sigma", lambda a: seen.append(a.dtype) or estimate_sigma(a))
    np.testing.assert_array_equal(denoise_image(default_model, crop), known)
    assert seen == [np.dtype(dtype)]


@pytest.mark.parametrize(
    "dtype, shape",
    [(np.uint8, (20, 17)), (np.uint8, (20, 17, 3)), (np.uint8, (20, 17, 4)), (np.uint8, (20, 17, 2)),
     (np.uint16, (20, 17)), (np.float32, (20, 17, 3)), (np.float64, (20, 17)), (np.uint8, (20, 17, 1))],
)
def test_dtype_shape_and_alpha_are_preserved(default_model, dtype, shape):
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind == "u":
        img = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    else:
        img = rng.random(shape).astype(dtype)
    out = denoise_image(default_model, img, 0.1)
    assert out.dtype == img.dtype and out.shape == img.shape
    if shape[-1] in (2, 4) and len(shape) == 3:
        np.testing.assert_array_equal(out[..., -1], img[..., -1])


def test_float_input_is_not_clipped(default_model):
    x = np.full((24, 24), 1.2, np.float32)  # a bright noisy float image strays above 1
    out = denoise_image(default_model, x, 0.05)
    assert out.mean() > 1.1


def test_batch_size_does_not_change_the_result(default_model, photo_gray):
    x = noisy(photo_gray[:40, :50], 0.1)
    a = denoise_image(default_model, x, 0.1, batch_size=7)
    b = denoise_image(default_model, x, 0.1, batch_size=100000)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_smaller_stride_is_no_worse(default_model, photo_gray):
    x = noisy(photo_gray, 25 / 255, seed=3)
    coarse = psnr(photo_gray, denoise_image(default_model, x, 25 / 255, stride=8))
    fine = psnr(photo_gray, denoise_image(default_model, x, 25 / 255, stride=2))
    assert fine > coarse - 0.05


def test_tiny_images(default_model):
    for shape in [(1, 1), (1, 7), (3, 2, 3)]:
        img = np.full(shape, 0.5, np.float32)
        out = denoise_image(default_model, img, 0.1)
        assert out.shape == shape and np.all(np.isfinite(out))


def test_fixed_level_model_accepts_other_sigmas(training_photos):
    arch = denoise.Architecture(patch=4, context=2, hidden=(32, 16, 32))
    model = denoise.train(arch, training_photos, denoise.TrainConfig(noise="gaussian:25", steps=5, progress=False))
    assert model.meta["noise"] == "gaussian:25"
    img = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    assert denoise_image(model, img).shape == (16, 16)
    assert denoise_image(model, img, 0.05).shape == (16, 16)


@pytest.mark.parametrize(
    "image, kw, match",
    [(np.full((8, 8), np.nan, np.float32), {}, "NaN"), (np.dstack([np.zeros((8, 8)), np.full((8, 8), np.inf)]), {}, "NaN"), (np.zeros((8, 8, 5), np.float32), {}, "shape"),
     (np.zeros((8, 8), np.int32), {}, "dtype"), (np.zeros((0, 8), np.float32), {}, "no pixels"),
     (np.zeros((8, 8), np.float32), dict(stride=0), "stride"), (np.zeros((8, 8), np.float32), dict(sigma=-1.0), "sigma"),
     (np.zeros((8, 8), np.float32), dict(batch_size=0), "batch_size"),
     (np.zeros((8, 8), np.uint8), dict(sigma=25), r"sigma is in the image's \[0, 1\] units; got 25: did you mean 25/255\?")],
)
def test_bad_input_raises_valueerror(default_model, image, kw, match):
    with pytest.raises(ValueError, match=match):
        denoise_image(default_model, image, **kw)


@pytest.mark.slow
def test_three_channel_model_on_gray(training_photos):
    arch = denoise.Architecture(patch=2, context=1, channels=3, hidden=(8,))
    model = denoise.Autoencoder(arch)
    model.meta["noise"] = "gaussian:25"
    out = denoise_image(model, np.random.default_rng(0).random((9, 9)).astype(np.float32))
    assert out.shape == (9, 9)
    with pytest.raises(ValueError, match="channel"):
        denoise.pipeline.denoise_planes(model, np.zeros((4, 4, 2), np.float32), 0.1, stride=1)


# ---------------------------------------------------------------------------
# fuzzing: every call returns a valid image or raises a documented ValueError

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

_FUZZ_MODEL = denoise.Autoencoder(denoise.Architecture(patch=3, context=1, hidden=(8,), noise_input=True), seed=0)


@st.composite
def _images(draw):
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int16, np.bool_]))
    ndim = draw(st.sampled_from([1, 2, 3, 4]))
    shape = draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=0, max_side=9))
    if np.dtype(dtype).kind == "f":
        elements = st.floats(-2, 3, width=np.dtype(dtype).itemsize * 8) | st.sampled_from([np.nan, np.inf, -np.inf, 0.0])
        return draw(hnp.arrays(dtype, shape, elements=elements))
    return draw(hnp.arrays(dtype, shape))


def _problems(image, sigma, stride, batch, window) -> list[str]:
    """What is wrong with a call, as the start of each message denoise_image may refuse it with."""
    out = []
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        out.append("expected an image of shape")
    elif 0 in image.shape[:2]:
        out.append("image has no pixels")
    if image.dtype not in (np.uint8, np.uint16) and image.dtype.kind != "f":
        out.append("unsupported image dtype")
    elif image.dtype.kind == "f" and not np.all(np.isfinite(image)):
        out.append("image contains NaN or Inf")
    if stride is not None and not 1 <= stride <= _FUZZ_MODEL.arch.patch:
        out.append("stride must be an integer from 1")
    if batch < 1:
        out.append("batch_size must be positive")
    if window not in ("flat", "gaussian"):
        out.append("window must be 'flat' or 'gaussian'")
    if sigma is not None and not (np.isfinite(sigma) and sigma >= 0):
        out.append("sigma must be a non-negative number")
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    image=_images(),
    sigma=st.none() | st.floats(0, 1) | st.sampled_from([-0.1, np.nan, np.inf]),
    stride=st.none() | st.integers(-1, 5),
    batch=st.integers(0, 50),
    window=st.sampled_from(["flat", "gaussian", "box"]),
)
def test_fuzz_denoise_image(image, sigma, stride, batch, window):
    # an input with a problem must be refused for (one of) its problems; any other must be denoised
    problems = _problems(image, sigma, stride, batch, window)
    if problems:
        with pytest.raises(ValueError, match="|".join(problems)):
            denoise_image(_FUZZ_MODEL, image, sigma, stride=stride, batch_size=batch, window=window)
        return
    out = denoise_image(_FUZZ_MODEL, image, sigma, stride=stride, batch_size=batch, window=window)
    assert out.shape == image.shape and out.dtype == image.dtype
    if out.dtype.kind == "f":
        assert np.all(np.isfinite(out))


@pytest.mark.parametrize("ensemble, turn", [(8, lambda x: np.rot90(x)), (2, lambda x: x.T), (4, lambda x: x[::-1, ::-1])])
def test_ensemble_makes_the_output_equivariant(default_model, photo_gray, ensemble, turn):
    # 32x32 with patch 8 / stride 4: the patch grid is symmetric, so averaging over a
    # group of patch symmetries makes denoising commute with that symmetry of the image
    x = noisy(photo_gray[:32, :32], 25 / 255, seed=5)
    single = np.abs(turn(denoise_image(default_model, x, 25 / 255)) - denoise_image(default_model, turn(x), 25 / 255))
    assert single.max() > 1e-3  # the model alone is not equivariant
    out = turn(denoise_image(default_model, x, 25 / 255, ensemble=ensemble))
    np.testing.assert_allclose(out, denoise_image(default_model, turn(x), 25 / 255, ensemble=ensemble), atol=2e-6)


def test_ensemble_averages_the_turned_patches(default_model, photo_gray):
    # ensemble=2 is the mean of the model on each patch and on its transpose, turned back
    x = noisy(photo_gray[:24, :20], 25 / 255, seed=6)
    a = default_model.arch
    full = a.patch + 2 * a.context
    rows = denoise.patches.extract(x, a.patch, 4, context=a.context)
    plain = default_model.reconstruct(rows, 0.1).reshape(-1, a.patch, a.patch)
    flipped = rows.reshape(-1, full, full).transpose(0, 2, 1).reshape(len(rows), -1)
    back = default_model.reconstruct(flipped, 0.1).reshape(-1, a.patch, a.patch).transpose(0, 2, 1)
    expected = denoise.patches.stitch(((plain + back) / 2).reshape(len(rows), -1), x.shape, a.patch, 4, window_kind="gaussian")
    np.testing.assert_allclose(denoise_image(default_model, x, 0.1, ensemble=2), expected, atol=1e-6)


@pytest.mark.parametrize("bad", [0, 3, 16, 2.0, "8"])
def test_ensemble_must_be_1_2_4_or_8(default_model, photo_gray, bad):
    with pytest.raises(ValueError, match="ensemble must be one of"):
        denoise_image(default_model, photo_gray[:16, :16], 0.1, ensemble=bad)


def test_colour_images_are_denoised_as_opponent_planes(default_model, photo_rgb):
    # A one-channel model denoises an RGB image as three opponent planes (imaging.OPPONENT, orthonormal),
    # each like a gray image, and turns the result back: check against that done with numpy's products.
    x = noisy(to_float(photo_rgb)[:48, :56], 20 / 255, seed=2)
    planes = x.reshape(-1, 3) @ imaging.OPPONENT.T
    each = [denoise_image(default_model, np.ascontiguousarray(planes[:, k].reshape(48, 56)), 20 / 255) for k in range(3)]
    expected = (np.stack(each, axis=2).reshape(-1, 3) @ imaging.OPPONENT).reshape(x.shape)
    np.testing.assert_allclose(denoise_image(default_model, x, 20 / 255), expected, atol=2e-6)




def test_strength_scales_the_noise_level_given_to_the_model(default_model, photo_gray):
    x = noisy(photo_gray[:48, :48], 20 / 255, seed=3)
    sigma = 20 / 255
    np.testing.assert_array_equal(denoise_image(default_model, x, sigma, strength=1.5),
                                  denoise_image(default_model, x, sigma * 1.5))
    # blind: the estimate, scaled
    est = resolve_sigma(default_model, x, None)
    np.testing.assert_array_equal(denoise_image(default_model, x, strength=0.5), denoise_image(default_model, x, est * 0.5))
    # more strength, smoother output: less left of the noisy input's fine detail
    rough = [np.std(np.diff(denoise_image(default_model, x, sigma, strength=s), axis=1)) for s in (0.5, 1, 2)]
    assert rough[0] > rough[1] > rough[2], rough


def test_camera_photos_get_the_estimate_scaled_by_the_models_camera_gain(default_model, photo_gray):
    from denoise.folders.tiling import denoise_in_tiles

    x = noisy(photo_gray[:40, :44], 10 / 255, seed=4)
    with pytest.raises(ValueError, match="not trained on camera noise"):
        denoise_image(default_model, x, camera=True)
    camera = denoise.Autoencoder(default_model.arch, weights=default_model.get_weights(),
                                 meta={**default_model.meta, "camera_gain": 2.5})
    est = resolve_sigma(default_model, x, None)
    assert resolve_sigma(camera, x, None, camera=True) == pytest.approx(2.5 * est)
    out = denoise_image(camera, x, camera=True)
    np.testing.assert_array_equal(out, denoise_image(camera, x, 2.5 * est))
    assert not np.array_equal(out, denoise_image(camera, x))  # without camera: the estimate as it reads
    np.testing.assert_array_equal(denoise_image(camera, x, 0.05, camera=True), denoise_image(camera, x, 0.05))  # a given sigma stays
    # tiles of one image share the scaled estimate of the whole
    np.testing.assert_array_equal(denoise_in_tiles(camera, x, 400, None, {"camera": True}), out)


@pytest.mark.parametrize("bad", [0, 0.05, 11, float("nan"), "2", True])
def test_strength_must_be_a_number_from_0_1_to_10(default_model, photo_gray, bad):
    with pytest.raises(ValueError, match="strength must be a number from 0.1 to 10"):
        denoise_image(default_model, photo_gray[:16, :16], 0.1, strength=bad)


def test_an_opponent_model_denoises_the_opponent_planes_of_colour_images():
    """A three-channel opponent model sees what a one-channel model sees, all planes at once:
    its output is its RGB model twin's, run on the opponent planes and turned back."""
    from denoise.imaging import from_opponent, to_opponent
    from denoise.pipeline import denoise_planes

    arch = denoise.Architecture(patch=4, context=2, channels=3, hidden=(16, 8, 16), noise_input=True, colour="opponent")
    model = denoise.Autoencoder(arch, seed=2)
    twin = denoise.Autoencoder(dataclasses.replace(arch, colour="rgb"), weights=model.get_weights())
    x = np.random.default_rng(3).random((21, 19, 3)).astype(np.float32)
    expected = from_opponent(denoise_planes(twin, np.ascontiguousarray(to_opponent(x)), 0.1, stride=2))
    np.testing.assert_allclose(denoise.denoise_image(model, x, 0.1), expected, atol=1e-5)
    assert denoise.denoise_image(model, x[:, :, 0], 0.1).shape == (21, 19)
    with pytest.raises(ValueError, match="colour must be"):
        denoise.Architecture(channels=3, colour="lab")
