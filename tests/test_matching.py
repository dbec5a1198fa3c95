import numpy as np
import pytest

from denoise import matching
from denoise.architecture import Architecture


def brute_means(arch: Architecture, image: np.ndarray, y: int, x: int) -> np.ndarray:
    """The mean input window of the k patches most like the one at (y, x), by definition."""
    p, k, st = arch.patch, arch.context, arch.search_step
    r = arch.search // st
    ref = image[y : y + p, x : x + p]
    found = []
    for oy in range(-r, r + 1):
        for ox in range(-r, r + 1):
            if oy or ox:
                dy, dx = oy * st, ox * st
                found.append((float(((ref - image[y + dy : y + dy + p, x + dx : x + dx + p]) ** 2).sum()), dy, dx))
    found.sort()
    return np.mean([image[y + dy - k : y + dy + p + k, x + dx - k : x + dx + p + k].ravel()
                    for _, dy, dx in found[: arch.neighbours]], axis=0)


@pytest.mark.parametrize("channels,step", [(1, 2), (3, 1), (1, 3)])
def test_neighbour_means_match_their_definition(channels, step):
    arch = Architecture(patch=4, context=2, channels=channels, hidden=(8, 4, 8), neighbours=3, search=6, search_step=step)
    rng = np.random.default_rng(channels + step)
    images = rng.random((2, 30, 34, channels)).astype(np.float32)
    which, ys, xs = np.array([0, 1, 1, 0]), np.array([8, 8, 14, 18]), np.array([8, 20, 11, 22])
    out = matching.neighbour_means(arch, images, which, ys, xs)
    assert out.shape == (4, 8 * 8 * channels) and out.dtype == np.float32
    for j in range(4):
        np.testing.assert_allclose(out[j], brute_means(arch, images[which[j]], ys[j], xs[j]), atol=1e-6)


def test_a_repeated_pattern_finds_its_copies():
    # a texture of period 4: the 8 closest patches are exact copies, so their mean is the patch's own input window
    tile = np.random.default_rng(0).random((4, 4, 1)).astype(np.float32)
    image = np.tile(tile, (10, 10, 1))[None]
    arch = Architecture(patch=8, context=4, hidden=(8, 4, 8), neighbours=8, search=8, search_step=2)
    out = matching.neighbour_means(arch, image, np.array([0]), np.array([16]), np.array([16]))
    np.testing.assert_allclose(out[0], image[0, 12:28, 12:28].ravel(), atol=1e-6)


def test_searches_that_leave_the_image_and_bad_architectures_are_refused():
    arch = Architecture(patch=4, context=2, hidden=(8, 4, 8), neighbours=3, search=6, search_step=2)
    images = np.zeros((1, 30, 30, 1), np.float32)
    with pytest.raises(ValueError, match="leaves its image"):
        matching.neighbour_means(arch, images, np.array([0]), np.array([7]), np.array([10]))
    with pytest.raises(ValueError, match="leaves its image"):
        matching.neighbour_means(arch, images, np.array([1]), np.array([10]), np.array([10]))
    with pytest.raises(ValueError, match="tries only 8 offsets"):
        Architecture(patch=4, neighbours=9, search=2, search_step=2)
    with pytest.raises(ValueError, match="neighbours must be"):
        Architecture(patch=4, neighbours=-1)
    assert arch.reach == 8 and Architecture.from_dict(arch.to_dict()) == arch
