import numpy as np
import pytest

from denoise import patches as P
from denoise import surround
from denoise.architecture import Architecture
from denoise.folders.tiling import denoise_in_tiles
from denoise.model import Autoencoder
from denoise.noise import parse
from denoise.pipeline import denoise_image
from denoise.training.sampler import PatchSampler

ARCH = Architecture(patch=8, context=4, hidden=(24, 12, 24), noise_input=True, surround=(4, 8))


def brute_row(arch: Architecture, image: np.ndarray, y: int, x: int) -> np.ndarray:
    """The input row of the patch whose output starts at (y, x) of an (H, W, C) image, by definition."""
    k, p, g = arch.context, arch.patch, arch.surround_grid
    parts = [image[y - k : y + p + k, x - k : x + p + k].ravel()]
    for s in arch.surround:
        o = arch.surround_offset(s)
        blocks = [[image[y + o + a * s : y + o + (a + 1) * s, x + o + b * s : x + o + (b + 1) * s].mean(axis=(0, 1))
                   for b in range(g)] for a in range(g)]
        parts.append(np.asarray(blocks).ravel())
    return np.concatenate(parts)


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


@pytest.mark.parametrize("channels", [1, 3])
def test_input_rows_match_their_definition(channels):
    arch = Architecture(patch=8, context=4, channels=channels, hidden=(8, 4, 8), surround=(4, 8))
    x = np.random.default_rng(channels).random((37, 45, channels)).astype(np.float32)
    g = P.grid(x.shape, arch.patch, 4)
    padded = P.pad(x, g, arch.reach)
    rows = surround.input_rows(arch, padded, [surround.box_means(padded, s) for s in arch.surround], g, slice(2, 6))
    assert rows.shape == (4 * g.count[1], arch.in_size)
    shift = arch.reach - g.start[0]  # where image pixel (0, 0) lies in the padded image
    for i in (0, 3):
        for j in (0, g.count[1] // 2, g.count[1] - 1):
            y, xx = g.start[0] + (2 + i) * 4 + shift, g.start[1] + j * 4 + shift
            np.testing.assert_allclose(rows[i * g.count[1] + j], brute_row(arch, padded, y, xx), atol=1e-5)


def test_tiled_equals_untiled_and_the_ensemble_is_equivariant():
    model = Autoencoder(ARCH, seed=3)
    rng = np.random.default_rng(1)
    x = rng.random((150, 130, 1)).astype(np.float32)
    whole = denoise_image(model, x, 0.1, stride=4)
    np.testing.assert_array_equal(denoise_in_tiles(model, x, 48 * 48, 0.1, dict(stride=4)), whole)
    square = x[:128, :128]
    turned = denoise_image(model, np.ascontiguousarray(np.rot90(square)), 0.1, stride=4, ensemble=8)
    np.testing.assert_allclose(turned, np.rot90(denoise_image(model, square, 0.1, stride=4, ensemble=8)), atol=1e-5)


def test_sampled_rows_are_rows_of_a_turned_image():
    """With noise of level 0, each training row is some patch's input row in one of
    the image's 8 flips and turns: the surround turns with its patch."""
    rng = np.random.default_rng(2)
    img = rng.random((70, 67, 1)).astype(np.float32)
    rows, sigma, target = PatchSampler([img], ARCH, parse("gaussian:0")).sample(40, rng)
    r = ARCH.reach
    reference = []
    for t in range(8):
        im = P.dihedral(img[None], t)[0]
        h, w = im.shape[:2]
        reference += [brute_row(ARCH, im, y, x) for y in range(r, h - r - 7) for x in range(r, w - r - 7)]
    reference = np.asarray(reference, np.float32)
    for row, tgt in zip(rows, target):
        best = np.abs(reference - row).max(axis=1).argmin()
        np.testing.assert_allclose(reference[best], row, atol=1e-5)
        np.testing.assert_allclose(reference[best][:256].reshape(16, 16)[4:12, 4:12].ravel(), tgt, atol=1e-6)
    assert not sigma.any()


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


def test_what_a_surround_model_cannot_train_on_is_refused():
    img = [np.random.default_rng(0).random((80, 80, 1)).astype(np.float32)]
    with pytest.raises(ValueError, match="white Gaussian noise"):
        PatchSampler(img, ARCH, parse("poisson:30"))
    with pytest.raises(ValueError, match="64x64"):
        PatchSampler([np.zeros((60, 90, 1), np.float32)], ARCH, parse("gaussian:25"))
    with pytest.raises(ValueError, match="without one"):
        PatchSampler(img, ARCH, parse("gaussian:25")).draw(4, np.random.default_rng(0))


def test_real_noisy_pairs_give_their_own_block_means():
    rng = np.random.default_rng(5)
    clean = rng.random((80, 80, 1)).astype(np.float32)
    pair = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    rows, sigma, _ = PatchSampler([clean], ARCH, parse("gaussian:0"), noisy=[pair]).sample(20, np.random.default_rng(6))
    reference = np.asarray([brute_row(ARCH, pair, y, x) for y in range(28, 45) for x in range(28, 45)], np.float32)
    for row in rows:  # rows of the noisy image, up to a flip or turn: compare sorted blocks
        best = np.abs(np.sort(reference[:, 256:320], axis=1) - np.sort(row[256:320])).max(axis=1).min()
        assert best < 1e-5
    np.testing.assert_allclose(sigma, np.std(pair - clean), rtol=1e-5)
