import io

import numpy as np
import pytest
from PIL import Image

from denoise import imagefile


@pytest.mark.parametrize("channels", [2, 3, 4])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_colour_keeps_16_bits(tmp_path, channels, suffix):
    a = np.random.default_rng(channels).integers(0, 65536, (9, 11, channels)).astype(np.uint16)
    p = tmp_path / f"deep{suffix}"
    imagefile.write_image(p, a)
    back, _ = imagefile.read_image(p)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, a)
    assert imagefile.image_work(p) == 9 * 11 * (1 if channels == 2 else 3)


def test_16_bit_colour_written_by_other_tools_is_read_as_16_bit(tmp_path):
    import imagecodecs
    import tifffile

    a = np.random.default_rng(1).integers(0, 65536, (6, 5, 3)).astype(np.uint16)
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(a))
    tifffile.imwrite(tmp_path / "a.tif", a, photometric="rgb")
    for name in ("a.png", "a.tif"):
        back, _ = imagefile.read_image(tmp_path / name)
        np.testing.assert_array_equal(back, a)


def test_16_bit_colour_is_refused_by_8_bit_formats():
    a = np.zeros((4, 4, 3), np.uint16)
    for suffix in (".jpg", ".webp", ".bmp"):
        with pytest.raises(ValueError, match="holds 8 bits per channel; write 16-bit colour as PNG or TIFF"):
            imagefile.encode_image(a, suffix)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_to_16_bit_colour_as_pillow_applies_it(tmp_path, orientation):
    from PIL import ImageOps

    a8 = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(_with_exif(Image.fromarray(a8), exif)))
    p = tmp_path / "o.png"
    p.write_bytes(imagefile.encode_image(a8.astype(np.uint16) * 257, ".png", {"exif": exif.tobytes()}))
    back, info = imagefile.read_image(p)
    np.testing.assert_array_equal(back, expected.astype(np.uint16) * 257)
    left = Image.Exif()
    if info.get("exif"):
        left.load(info["exif"])
    assert left.get(0x0112) is None  # applied, so no longer recorded


def _with_exif(im, exif):
    buf = io.BytesIO()
    im.save(buf, format="PNG", exif=exif.tobytes())
    return Image.open(io.BytesIO(buf.getvalue()))
