from pathlib import Path

import numpy as np
import pytest

import denoise
from denoise.folders.tiling import tiles

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


@pytest.mark.parametrize("stride", [1, 3, 4])
def test_tiles_cover_the_image_and_reproduce_it(default_model, stride):
    rng = np.random.default_rng(stride)
    img = rng.random((57, 43, 3)).astype(np.float32)
    whole = denoise.denoise_image(default_model, img, 0.1, stride=stride)
    out = np.full_like(img, np.nan)
    a = default_model.arch
    parts = tiles(img.shape[:2], 300, stride, a.patch + a.context - 1)
    assert len(parts) > 4
    for ((y0, y1), (x0, x1)), ((cy0, cy1), (cx0, cx1)) in parts:
        assert y0 % stride == 0 and x0 % stride == 0
        t = denoise.denoise_image(default_model, img[y0:y1, x0:x1], 0.1, stride=stride)
        out[y0 + cy0 : y0 + cy1, x0 + cx0 : x0 + cx1] = t[cy0:cy1, cx0:cx1]
    assert not np.isnan(out).any()
    np.testing.assert_allclose(out, whole, atol=2e-5)
