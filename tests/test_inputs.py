import numpy as np
import pytest

from denoise import inputs
from denoise import patches as P
from denoise.architecture import Architecture
from denoise.folders.tiling import denoise_in_tiles
from denoise.model import Autoencoder
from denoise.noise import parse
from denoise.pipeline import denoise_image
from denoise.training.sampler import PatchSampler

from .test_matching import brute_means

SURROUND = Architecture(patch=8, context=4, hidden=(24, 12, 24), noise_input=True, surround=(4, 8))
NEIGHBOURS = Architecture(patch=8, context=4, hidden=(24, 12, 24), noise_input=True, neighbours=4, search=6)
BOTH = Architecture(patch=8, context=4, hidden=(24, 12, 24), noise_input=True, surround=(4,), neighbours=4, search=6)
ARCHS = [SURROUND, NEIGHBOURS, BOTH]


def brute_row(arch: Architecture, image: np.ndarray, y: int, x: int) -> np.ndarray:
    """The input row of the patch whose output starts at (y, x) of an (H, W, C) image, by definition."""
    k, p, g = arch.context, arch.patch, arch.surround_grid
    parts = [image[y - k : y + p + k, x - k : x + p + k].ravel()]
    for s in arch.surround:
        o = arch.surround_offset(s)
        blocks = [[image[y + o + a * s : y + o + (a + 1) * s, x + o + b * s : x + o + (b + 1) * s].mean(axis=(0, 1))
                   for b in range(g)] for a in range(g)]
        parts.append(np.asarray(blocks).ravel())
    if arch.neighbours:
        parts.append(brute_means(arch, image, y, x))
    return np.concatenate(parts)


def all_rows(arch: Architecture, image: np.ndarray, stride: int):
    """``(rows, grid, where image pixel (0, 0) lies in the padded image)`` of the whole image."""
    g = P.grid(image.shape, arch.patch, stride)
    padded = P.pad(image, g, arch.reach)
    return inputs.input_rows(arch, padded, inputs.prepare(arch, padded), g, None), g, padded, arch.reach - g.start[0]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("channels", [1, 3])
def test_input_rows_match_their_definition(arch, channels):
    arch = Architecture.from_dict({**arch.to_dict(), "channels": channels})
    x = np.random.default_rng(channels).random((37, 45, channels)).astype(np.float32)
    g = P.grid(x.shape, arch.patch, 4)
    padded = P.pad(x, g, arch.reach)
    rows = inputs.input_rows(arch, padded, inputs.prepare(arch, padded), g, slice(2, 6))
    assert rows.shape == (4 * g.count[1], arch.in_size - 1)
    shift = arch.reach - g.start[0]
    for i in (0, 3):
        for j in (0, g.count[1] // 2, g.count[1] - 1):
            y, xx = g.start[0] + (2 + i) * 4 + shift, g.start[1] + j * 4 + shift
            np.testing.assert_allclose(rows[i * g.count[1] + j], brute_row(arch, padded, y, xx), atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_tiled_equals_untiled_and_the_ensemble_is_equivariant(arch):
    model = Autoencoder(arch, seed=3)
    x = np.random.default_rng(1).random((150, 130, 1)).astype(np.float32)
    whole = denoise_image(model, x, 0.1, stride=4)
    np.testing.assert_array_equal(denoise_in_tiles(model, x, 48 * 48, 0.1, dict(stride=4)), whole)
    square = x[:128, :128]
    turned = denoise_image(model, np.ascontiguousarray(np.rot90(square)), 0.1, stride=4, ensemble=8)
    np.testing.assert_allclose(turned, np.rot90(denoise_image(model, square, 0.1, stride=4, ensemble=8)), atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_sampled_rows_are_rows_of_a_turned_image(arch):
    """With noise of level 0, each training row is some patch's input row in one of the
    image's 8 flips and turns: the surround and the neighbours turn with their patch."""
    rng = np.random.default_rng(2)
    img = rng.random((arch.extent + 6, arch.extent + 3, 1)).astype(np.float32)
    rows, sigma, target = PatchSampler([img], arch, parse("gaussian:0")).sample(40, rng)
    r, reference, centres = arch.reach, [], []
    for t in range(8):
        im = np.ascontiguousarray(P.dihedral(img[None], t)[0])
        full, g, _, _ = all_rows(arch, im, 1)
        h, w = im.shape[:2]
        for i in range(g.count[0]):
            for j in range(g.count[1]):
                y, x = g.start[0] + i, g.start[1] + j
                if r <= y <= h - r - arch.patch and r <= x <= w - r - arch.patch:  # the whole footprint inside
                    reference.append(full[i * g.count[1] + j])
                    centres.append(im[y : y + arch.patch, x : x + arch.patch].ravel())
    reference, centres = np.asarray(reference), np.asarray(centres)
    for row, tgt in zip(rows, target):
        best = np.abs(reference - row).max(axis=1).argmin()
        np.testing.assert_allclose(reference[best], row, atol=1e-5)
        np.testing.assert_allclose(centres[best], tgt, atol=1e-6)
    assert not sigma.any()


def test_real_noisy_pairs_give_their_own_block_means():
    rng = np.random.default_rng(5)
    clean = rng.random((80, 80, 1)).astype(np.float32)
    pair = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    rows, sigma, _ = PatchSampler([clean], SURROUND, parse("gaussian:0"), noisy=[pair]).sample(20, np.random.default_rng(6))
    reference = np.asarray([brute_row(SURROUND, pair, y, x) for y in range(28, 45) for x in range(28, 45)], np.float32)
    for row in rows:  # rows of the noisy image, up to a flip or turn: compare sorted blocks
        best = np.abs(np.sort(reference[:, 256:320], axis=1) - np.sort(row[256:320])).max(axis=1).min()
        assert best < 1e-5
    np.testing.assert_allclose(sigma, np.std(pair - clean), rtol=1e-5)


def test_neighbours_see_the_noise_their_footprint_carries():
    """Training rows of a neighbours model are made from noisy footprints: on a flat image the
    neighbours' mean carries noise, less than the patch's own."""
    flat = np.full((60, 60, 1), 0.5, np.float32)
    rows, _, _ = PatchSampler([flat], NEIGHBOURS, parse("poisson:20")).sample(2000, np.random.default_rng(7))
    own, mean = rows[:, :256].std(), rows[:, 256:].std()
    assert abs(own - np.sqrt(0.5 / 20)) < 0.01
    assert own / 2.5 < mean < own / 1.2


@pytest.mark.parametrize("arch", ARCHS)
def test_recorruption_and_camera_noise_build_rows_from_whole_footprints(arch):
    from denoise.noise import parse as parse_noise
    from denoise.training.crops import NoisyCrops
    from denoise.training.selfsupervised import RecorruptionSampler

    # recorruption: input = y + a z and target = y - z / a over the whole footprint, so on a flat
    # image y the input's centre and the target give y back exactly, and the surround and
    # neighbours carry the recorrupting noise
    flat = [np.full((80, 80, 1), 0.5, np.float32)]
    sampler = RecorruptionSampler(flat, arch, [0.1])
    rows, level, target = sampler.sample(256, np.random.default_rng(0))
    a = sampler.alpha
    centre = rows[:, :256].reshape(-1, 16, 16)[:, 4:12, 4:12].reshape(-1, 64)
    np.testing.assert_allclose((centre + a * a * target) / (1 + a * a), 0.5, atol=1e-5)
    assert rows.shape == (256, arch.in_size - 1) and 0.05 * 0.1 * a < rows[:, 256:].std() < 0.1 * a
    big = [np.random.default_rng(0).random((120, 120, 3)).astype(np.float32)]
    rows, sigma, target = NoisyCrops(big, arch, parse_noise("camera:50"), pool=4).sample(32, np.random.default_rng(1))
    assert rows.shape == (32, arch.in_size - 1) and target.shape == (32, 64) and (sigma > 0).all()
