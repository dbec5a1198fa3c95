import io as _io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from denoise.png import encode_png

from .conftest import SAMPLES


def _decode(data: bytes):
    with Image.open(_io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im), dict(im.info), im.getexif()


def _chunks(data: bytes) -> list[bytes]:
    kinds, i = [], 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        kinds.append(data[i + 4 : i + 8])
        i += 12 + n
    return kinds


@pytest.mark.parametrize(
    "dtype, shape",
    [(np.uint8, (9, 7)), (np.uint8, (9, 7, 2)), (np.uint8, (9, 7, 3)), (np.uint8, (9, 7, 4)), (np.uint16, (9, 7)),
     (np.uint8, (1, 1)), (np.uint8, (1, 5, 3)), (np.uint16, (6, 1))],
)
def test_pillow_decodes_what_was_encoded(dtype, shape):
    # every byte value next to every other (random), where Paeth's three predictors all get picked
    a = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    back, _, _ = _decode(encode_png(a))
    assert back.shape == a.shape
    np.testing.assert_array_equal(back.astype(dtype), a)


def test_a_photo_decodes_exactly_and_is_no_bigger_than_pillows():
    with Image.open(SAMPLES / "honey_bee.jpg") as im:
        a = np.asarray(im.convert("RGB"))
    ours = encode_png(a)
    np.testing.assert_array_equal(_decode(ours)[0], a)
    pillows = _io.BytesIO()
    Image.fromarray(a).save(pillows, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    assert len(ours) <= 1.02 * len(pillows.getvalue())  # Paeth on every row against Pillow's choice per row


def test_metadata_reads_back_as_pillow_writes_it():
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    icc = bytes(range(256)) * 2
    a = np.zeros((4, 6, 3), np.uint8)
    for raw in (exif.tobytes(), b"Exif\0\0" + exif.tobytes()):  # as Pillow's JPEG reader gives it, and bare
        ours = encode_png(a, exif=raw, icc_profile=icc, dpi=(300, 150))
        pillows = _io.BytesIO()
        Image.fromarray(a).save(pillows, format="PNG", exif=raw, icc_profile=icc, dpi=(300, 150))
        _, info, got = _decode(ours)
        _, want_info, want = _decode(pillows.getvalue())
        assert got.get(0x010F) == "TestCam" and dict(got) == dict(want)
        assert info["icc_profile"] == icc == want_info["icc_profile"]
        assert info["dpi"] == want_info["dpi"] and tuple(round(v) for v in info["dpi"]) == (300, 150)
    assert _chunks(ours) == [b"IHDR", b"iCCP", b"pHYs", b"eXIf", b"IDAT", b"IEND"]
    assert _chunks(encode_png(a)) == [b"IHDR", b"IDAT", b"IEND"]


def test_large_streams_split_into_several_idat_chunks(monkeypatch):
    import denoise.png as png

    monkeypatch.setattr(png, "_IDAT_BYTES", 100)
    a = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    data = encode_png(a)
    assert _chunks(data).count(b"IDAT") > 10
    np.testing.assert_array_equal(_decode(data)[0], a)


@pytest.mark.parametrize(
    "a", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 3), np.int16), np.zeros((4, 4, 5), np.uint8),
          np.zeros((0, 4), np.uint8), np.zeros(4, np.uint8)],
)
def test_what_png_cannot_hold_is_refused(a):
    with pytest.raises(ValueError, match="PNG cannot store"):
        encode_png(a)
