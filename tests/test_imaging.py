import numpy as np

from denoise import imaging


def test_opponent_planes_are_an_orthonormal_transform_and_planar():
    rgb = np.random.default_rng(0).random((5, 7, 3), dtype=np.float32)
    planes = imaging.to_opponent(rgb)
    assert planes.shape == (5, 7, 3) and np.moveaxis(planes, 2, 0).flags.c_contiguous  # planar in memory
    np.testing.assert_allclose(planes[..., 0], rgb.sum(axis=2) / np.sqrt(3), rtol=1e-6)  # luma
    np.testing.assert_allclose(planes[..., 1], (rgb[..., 0] - rgb[..., 2]) / np.sqrt(2), atol=1e-6)
    np.testing.assert_allclose(np.sum(planes**2, axis=2), np.sum(rgb**2, axis=2), rtol=1e-5)  # lengths kept
    back = imaging.from_opponent(planes)
    assert back.flags.c_contiguous
    np.testing.assert_allclose(back, rgb, atol=1e-6)
    np.testing.assert_allclose(imaging.from_opponent(np.ascontiguousarray(planes)), rgb, atol=1e-6)  # any layout
