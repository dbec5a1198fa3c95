import numpy as np
import pytest

from denoise import surround
from denoise.architecture import Architecture
from denoise.noise import parse
from denoise.training.sampler import PatchSampler

ARCH = Architecture(patch=8, context=4, hidden=(24, 12, 24), noise_input=True, surround=(4, 8))


def test_architecture_sizes_and_reach():
    assert ARCH.fine_size == 256 and ARCH.surround_size == 128 and ARCH.in_size == 385
    assert ARCH.surround_offset(4) == -12 and ARCH.surround_offset(8) == -28
    assert ARCH.reach == 28 and ARCH.extent == 64
    plain = Architecture(patch=8, context=4)
    assert plain.reach == 4 and plain.extent == 16 and "surround" not in plain.to_dict()
    assert Architecture.from_dict(ARCH.to_dict()) == ARCH
    with pytest.raises(ValueError, match="share a centre"):
        Architecture(patch=8, surround=(3,), surround_grid=5)
    with pytest.raises(ValueError, match="positive integer scales"):
        Architecture(patch=8, surround=(0,))


def test_box_means_match_their_definition():
    x = np.random.default_rng(0).random((13, 11, 2)).astype(np.float32)
    b = surround.box_means(x, 4)
    for y in range(10):
        for xx in range(8):
            np.testing.assert_allclose(b[y, xx], x[y : y + 4, xx : xx + 4].mean(axis=(0, 1)), atol=1e-6)
    assert not b[10:].any() and not b[:, 8:].any()
    stack = np.stack([x, x[::-1].copy()])
    np.testing.assert_array_equal(surround.box_means(stack, 4)[1], surround.box_means(stack[1], 4))


def test_block_noise_has_the_block_means_statistics():
    flat = np.full((80, 80, 1), 0.5, np.float32)
    rows, sigma, _ = PatchSampler([flat], ARCH, parse("gaussian:25")).sample(3000, np.random.default_rng(4))
    noise = (rows - 0.5) * 255
    assert abs(noise[:, :256].std() - 25) < 0.5
    assert abs(noise[:, 256:320].std() - 25 / 4) < 0.15
    assert abs(noise[:, 320:].std() - 25 / 8) < 0.08
    fine = noise[:, :256].reshape(-1, 16, 16)
    blocks4, blocks8 = noise[:, 256:320].reshape(-1, 8, 8), noise[:, 320:].reshape(-1, 8, 8)
    # blocks inside the input patch are its own noise averaged; the ones outside are fresh
    np.testing.assert_allclose(blocks4[:, 3, 4], fine[:, 4:8, 8:12].mean(axis=(1, 2)), atol=1e-4)
    np.testing.assert_allclose(blocks8[:, 3, 3], fine[:, 0:8, 0:8].mean(axis=(1, 2)), atol=1e-4)
    assert abs(np.corrcoef(blocks4[:, 0, 0], fine[:, 0, 0])[0, 1]) < 0.1


def test_a_surround_sampler_refuses_small_images_and_draws_patches_with_their_surround():
    img = [np.random.default_rng(0).random((80, 80, 1)).astype(np.float32)]
    poisson = PatchSampler(img, ARCH, parse("poisson:30"))  # not in closed form: from whole noisy footprints
    assert poisson.footprints and not PatchSampler(img, ARCH, parse("gaussian:30")).footprints
    assert poisson.sample(8, np.random.default_rng(0))[0].shape == (8, 384)
    with pytest.raises(ValueError, match="64x64"):
        PatchSampler([np.zeros((60, 90, 1), np.float32)], ARCH, parse("gaussian:25"))
    with pytest.raises(ValueError, match="nothing beyond"):
        PatchSampler(img, ARCH, parse("gaussian:25")).draw(4, np.random.default_rng(0))
