import numpy as np
import pytest

from denoise import patches as P

SHAPES = [(1, 1), (2, 3), (7, 5), (8, 8), (9, 16, 3), (13, 10, 2), (31, 17)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
def test_round_trip_every_stride(shape, size):
    x = np.random.default_rng(sum(shape) + size).random(shape).astype(np.float32)
    for stride in range(1, size + 1):
        for kind in ("flat", "gaussian"):
            rows = P.extract(x, size, stride)
            y = P.stitch(rows, x.shape, size, stride, window_kind=kind)
            assert y.shape == x.shape
            np.testing.assert_allclose(y, x, atol=1e-5, err_msg=f"size={size} stride={stride} {kind}")


def test_rows_follow_the_grid_and_layout():
    x = np.arange(5 * 6 * 2, dtype=np.float32).reshape(5, 6, 2)
    g = P.grid(x.shape, 3, 2)
    rows = P.extract(x, 3, 2)
    assert rows.shape == (g.n_patches, 3 * 3 * 2)
    # the grid starts where the first patch still overlaps pixel 0 and is a multiple of the stride
    assert g.start == (-2, -2)
    # patch at grid position (1, 1) starts at image pixel (0, 0)
    patch = rows[1 * g.count[1] + 1].reshape(3, 3, 2)
    np.testing.assert_array_equal(patch, x[0:3, 0:3])


def test_every_pixel_is_covered_equally_far_from_edges():
    w = P.weight_sum((20, 20), P.grid((20, 20), 4, 2), "flat")
    assert np.all(w == 4)  # (4/2)**2 patches on every pixel, edges included


def test_context_rows_hold_the_plain_patch_in_their_centre():
    x = np.random.default_rng(1).random((11, 9, 3)).astype(np.float32)
    plain = P.extract(x, 4, 3)
    wide = P.extract(x, 4, 3, context=2)
    centre = wide.reshape(-1, 8, 8, 3)[:, 2:6, 2:6, :].reshape(plain.shape)
    np.testing.assert_array_equal(centre, plain)


def test_row_bands_concatenate_to_all_rows():
    x = np.random.default_rng(2).random((23, 14)).astype(np.float32)
    g = P.grid(x.shape, 5, 2)
    bands = [P.extract(x, 5, 2, rows=slice(r, r + 3)) for r in range(0, g.count[0], 3)]
    np.testing.assert_array_equal(np.concatenate(bands), P.extract(x, 5, 2))


def test_tile_on_the_global_grid_sees_the_same_patches():
    x = np.random.default_rng(3).random((40, 30)).astype(np.float32)
    size, stride = 6, 3
    whole = P.extract(x, size, stride)
    g = P.grid(x.shape, size, stride)
    tile = x[12:, :]  # origin is a multiple of the stride
    t = P.extract(tile, size, stride)
    gt = P.grid(tile.shape, size, stride)
    # rows of the tile that lie entirely inside it equal the whole image's rows
    first_inside_tile = -gt.start[0] // stride
    rows_t = t.reshape(gt.count[0], gt.count[1], -1)[first_inside_tile:first_inside_tile + 3]
    rows_w = whole.reshape(g.count[0], g.count[1], -1)[first_inside_tile + 12 // stride:first_inside_tile + 12 // stride + 3]
    np.testing.assert_array_equal(rows_t, rows_w)


@pytest.mark.parametrize("size, stride, channels", [(8, 4, 1), (5, 3, 3), (4, 4, 2), (3, 1, 1)])
def test_overlap_add_matches_a_per_patch_loop(size, stride, channels):
    rng = np.random.default_rng(size * 10 + stride)
    shape = (23, 19, channels)
    g = P.grid(shape, size, stride)
    first, last = 1, g.count[0] - 1  # a band of grid rows, not starting at the top
    patches = rng.random(((last - first) * g.count[1], size * size * channels), dtype=np.float32)
    weights = P.window(size, "gaussian")
    acc = P.accumulator(shape, g)
    acc[:] = rng.random(acc.shape, dtype=np.float32)  # adds to what is there
    expected = acc.copy()
    blocks = patches.reshape(last - first, g.count[1], size, size, channels)
    for i in range(last - first):
        for j in range(g.count[1]):
            y, x = (first + i) * stride, j * stride
            expected[y : y + size, x : x + size] += blocks[i, j] * weights[:, :, None]
    P.overlap_add(acc, patches, g, first, weights)
    np.testing.assert_allclose(acc, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="do not fit"):  # the kernel does not bound-check: overlap_add must
        P.overlap_add(acc[:-1], patches, g, first + 1, weights)
    with pytest.raises(ValueError, match="do not fit"):
        P.overlap_add(acc, patches[:, :-1], g, first, weights)
    with pytest.raises(ValueError, match="contiguous"):  # it adds through a flat view of the accumulator
        P.overlap_add(np.asfortranarray(acc), patches, g, first, weights)


@pytest.mark.parametrize("kind", ["flat", "gaussian"])
@pytest.mark.parametrize("shape, size, stride", [((23, 19, 1), 8, 4), ((7, 30, 3), 5, 3), ((1, 1, 2), 4, 4), ((9, 2, 1), 3, 1)])
def test_crop_divides_by_the_weight_sum(shape, size, stride, kind):
    g = P.grid(shape, size, stride)
    acc = P.accumulator(shape, g)
    acc[:] = np.random.default_rng(shape[0]).random(acc.shape, dtype=np.float32) * 4
    y, x = -g.start[0], -g.start[1]
    # each pixel's total over the window weights of the patches covering it, summed here one patch at a time
    w1 = P.window1d(size, kind).astype(np.float64)
    weights = np.zeros(acc.shape[:2])
    for i in range(g.count[0]):
        for j in range(g.count[1]):
            weights[i * stride : i * stride + size, j * stride : j * stride + size] += np.outer(w1, w1)
    expected = acc[y : y + shape[0], x : x + shape[1]].astype(np.float64) / weights[y : y + shape[0], x : x + shape[1], None]
    np.testing.assert_allclose(P.crop(acc, shape, g, kind), expected, rtol=2e-6)
    short = (acc[: y + shape[0] - 1], np.ascontiguousarray(acc[:, : x + shape[1] - 1]), np.repeat(acc, 2, axis=2))
    for bad in short:
        with pytest.raises(ValueError, match="does not fit"):
            P.crop(bad, shape, g, kind)


@pytest.mark.parametrize(
    "args, match",
    [((0, 1), "patch size"), ((4, 0), "stride"), ((4, 5), "stride"), ((4, 2.5), "stride")],
)
def test_bad_sizes_are_refused(args, match):
    with pytest.raises(ValueError, match=match):
        P.extract(np.zeros((8, 8), np.float32), *args)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="shape"):
        P.extract(np.zeros((2, 2, 2, 2)), 2, 1)
    with pytest.raises(ValueError, match="need"):
        P.stitch(np.zeros((3, 4)), (4, 4), 2, 2)
    with pytest.raises(ValueError, match="window"):
        P.window(4, "hann")


def test_dihedral_elements_are_the_eight_symmetries_and_invert():
    blocks = np.random.default_rng(3).random((2, 5, 5, 3)).astype(np.float32)
    seen = []
    for t in range(len(P.DIHEDRAL)):
        turned = P.dihedral(blocks, t)
        np.testing.assert_array_equal(P.dihedral(turned, t, inverse=True), blocks)
        seen.append(turned.tobytes())
    assert len(set(seen)) == 8  # all distinct
    np.testing.assert_array_equal(P.dihedral(blocks, 1), blocks.transpose(0, 2, 1, 3))
    np.testing.assert_array_equal(P.dihedral(blocks, 2), blocks[:, ::-1, ::-1])
    # the first 2 and 4 elements are closed under composition (subgroups)
    for n in (2, 4):
        for a in range(n):
            for b in range(n):
                both = P.dihedral(P.dihedral(blocks, a), b).tobytes()
                assert seen.index(both) < n
