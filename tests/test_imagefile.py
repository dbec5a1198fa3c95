

import numpy as np
import pytest
from PIL import Image

from denoise import imagefile


@pytest.mark.parametrize(
    "mode, dtype, shape, suffix",
    [("L", np.uint8, (9, 7), ".png"), ("RGB", np.uint8, (9, 7, 3), ".png"), ("RGBA", np.uint8, (9, 7, 4), ".png"),
     ("I;16", np.uint16, (9, 7), ".png"), ("I;16", np.uint16, (9, 7), ".tif"), ("RGB", np.uint8, (9, 7, 3), ".tif"),
     ("LA", np.uint8, (9, 7, 2), ".png"), ("RGB", np.uint8, (9, 7, 3), ".bmp"), ("RGB", np.uint8, (9, 7, 3), ".webp")],
)
def test_lossless_image_round_trips(tmp_path, mode, dtype, shape, suffix):
    rng = np.random.default_rng(0)
    a = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    p = tmp_path / f"x{suffix}"
    kw = {"lossless": True} if suffix == ".webp" else {}
    if suffix == ".webp":
        Image.fromarray(a).save(p, **kw)
    else:
        imagefile.write_image(p, a)
    back, _ = imagefile.read_image(p)
    assert back.dtype == a.dtype
    np.testing.assert_array_equal(back, a)


def test_palette_exif_icc_dpi_and_orientation(tmp_path):
    im = Image.new("P", (6, 4))
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((1, 1), 1)
    p = tmp_path / "pal.png"
    im.save(p)
    arr, info = imagefile.read_image(p)
    assert arr.shape == (4, 6, 3) and tuple(arr[1, 1]) == (255, 0, 0) and "palette" in info["converted"]

    rgb = Image.new("RGB", (6, 4), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    exif[0x010F] = "TestCam"
    icc = b"\0" * 128  # stored and carried verbatim
    p = tmp_path / "o.jpg"
    rgb.save(p, exif=exif.tobytes(), icc_profile=icc, dpi=(300, 300), quality=95)
    arr, info = imagefile.read_image(p)
    assert arr.shape == (6, 4, 3)  # orientation applied
    out = tmp_path / "out.jpg"
    imagefile.write_image(out, arr, info)
    with Image.open(out) as back:
        assert back.getexif().get(0x010F) == "TestCam" and 0x0112 not in back.getexif()
        assert back.info.get("icc_profile") == icc
        assert tuple(round(v) for v in back.info["dpi"]) == (300, 300)


def test_unsupported_images_are_refused(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (4, 4)).save(p)
    with pytest.raises(ValueError, match="mode"):
        imagefile.read_image(p)
    with pytest.raises(ValueError, match="alpha"):
        imagefile.write_image(tmp_path / "a.jpg", np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="format"):
        imagefile.write_image(tmp_path / "a.xyz", np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize("fmt, suffix", [("TIFF", ".tif"), ("PNG", ".png"), ("GIF", ".gif")])
def test_multi_frame_files_are_refused_not_cut_to_one_frame(tmp_path, fmt, suffix):
    frames = [Image.new("L", (8, 6), v) for v in (0, 100, 200)]
    p = tmp_path / f"three{suffix}"
    frames[0].save(p, format=fmt, save_all=True, append_images=frames[1:])
    with pytest.raises(ValueError, match="the file holds 3 frames"):
        imagefile.read_image(p)
