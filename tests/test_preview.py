import numpy as np
import pytest
from PIL import Image

from denoise import imagefile
from denoise.preview import PREVIEW_FILES, contact_sheet


def test_the_sheet_shows_each_pair_side_by_side(tmp_path):
    rng = np.random.default_rng(0)
    kinds = {"gray.png": rng.integers(0, 256, (40, 30), dtype=np.uint8),
             "deep.png": rng.integers(0, 65536, (300, 280, 3)).astype(np.uint16),
             "alpha.png": rng.integers(0, 256, (20, 50, 4), dtype=np.uint8)}
    pairs = []
    for name, a in kinds.items():
        imagefile.write_image(tmp_path / f"in_{name}", a)
        imagefile.write_image(tmp_path / f"out_{name}", a // 2)
        pairs.append((tmp_path / f"in_{name}", tmp_path / f"out_{name}"))
    assert contact_sheet(pairs, tmp_path / "sheet.png") == 3
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    # the first row: the gray pair, whole (under 256 px), before then after, below an 18 px caption
    gray = kinds["gray.png"]
    np.testing.assert_array_equal(sheet[18:58, :30, 0], gray)
    np.testing.assert_array_equal(sheet[18:58, 34:64, 1], gray // 2)
    # the 16-bit pair: its central 256 px, shown at 8 bits
    top = 18 + 40 + 4 + 18
    np.testing.assert_array_equal(sheet[top : top + 256, :256], (kinds["deep.png"][22:278, 12:268] >> 8).astype(np.uint8))


def test_the_sheet_is_bounded_and_refuses_nothing_to_show(tmp_path):
    a = np.zeros((8, 8), np.uint8)
    imagefile.write_image(tmp_path / "a.png", a)
    assert contact_sheet([(tmp_path / "a.png", tmp_path / "a.png")] * (PREVIEW_FILES + 5), tmp_path / "s.png") == PREVIEW_FILES
    with pytest.raises(ValueError, match="no finished files to preview"):
        contact_sheet([], tmp_path / "empty.png")
