import json

import numpy as np
import pytest
from PIL import Image

import denoise
from denoise import io

from .conftest import TINY


@pytest.fixture
def model():
    m = denoise.Autoencoder(TINY, seed=9, meta={"noise": "gaussian:5-50", "stride": 2})
    return m


def test_save_load_identical_outputs(model, tmp_path):
    p = tmp_path / "m.npz"
    io.save_model(model, p)
    back = io.load_model(p)
    x = np.random.default_rng(0).random((10, 64), dtype=np.float32)
    np.testing.assert_array_equal(back.reconstruct(x, 0.1), model.reconstruct(x, 0.1))
    assert back.arch == model.arch and back.stride == 2 and back.meta["noise"] == "gaussian:5-50"


def test_half_storage_is_close(model, tmp_path):
    p = tmp_path / "h.npz"
    io.save_model(model, p, half=True)
    back = io.load_model(p)
    x = np.random.default_rng(0).random((10, 64), dtype=np.float32)
    np.testing.assert_allclose(back.reconstruct(x, 0.1), model.reconstruct(x, 0.1), atol=2e-3)


def test_shipped_models():
    assert "default" in io.list_models()
    m = io.load_model("default")
    assert m.meta.get("provenance") and m.meta.get("noise")
    with pytest.raises(ValueError, match="no shipped model named 'nope'"):
        io.load_model("nope")


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _meta(model, **over):
    d = {"format": 1, "architecture": model.arch.to_dict(), "noise": "gaussian:25"}
    d.update(over)
    return np.array(json.dumps(d))


def test_damaged_and_foreign_files_get_one_line_errors(model, tmp_path):
    good = tmp_path / "good.npz"
    io.save_model(model, good)
    w = model.get_weights()
    cases = {
        "truncated.npz": lambda p: p.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2]),
        "text.npz": lambda p: p.write_text("hello"),
        "empty.npz": lambda p: p.write_bytes(b""),
        "nometa.npz": lambda p: _npz(p, **w),
        "badjson.npz": lambda p: _npz(p, meta=np.array("{nope"), **w),
        "future.npz": lambda p: _npz(p, meta=_meta(model, format=99), **w),
        "shapes.npz": lambda p: _npz(p, meta=_meta(model), **{**w, "encoder.0.W": np.zeros((3, 3), np.float32)}),
        "missing.npz": lambda p: _npz(p, meta=_meta(model), **{k: v for k, v in w.items() if k != "decoder.0.b"}),
        "pickle.npz": lambda p: np.savez(p, meta=_meta(model), **{**w, "encoder.0.W": np.array([{"a": 1}], dtype=object)}),
        "ints.npz": lambda p: _npz(p, meta=_meta(model), **{**w, "encoder.0.b": np.zeros(32, np.int64)}),
        "arch.npz": lambda p: _npz(p, meta=_meta(model, architecture={"patch": 4, "bogus": 1}), **w),
        "stride0.npz": lambda p: _npz(p, meta=_meta(model, stride=0), **w),
        "stridebig.npz": lambda p: _npz(p, meta=_meta(model, stride=model.arch.patch + 1), **w),
        "stridetext.npz": lambda p: _npz(p, meta=_meta(model, stride="four"), **w),
        "window.npz": lambda p: _npz(p, meta=_meta(model, window="hann"), **w),
    }
    for name, make in cases.items():
        p = tmp_path / name
        make(p)
        with pytest.raises(io.ModelFileError) as e:
            io.load_model(p)
        msg = str(e.value)
        assert str(p) in msg and "\n" not in msg, (name, msg)
        if name.startswith(("stride", "window")):  # the file's default stride or window, named
            assert f"its default {name[:6]} must be" in msg, msg
    with pytest.raises(io.ModelFileError, match="no such file"):
        io.load_model(tmp_path / "absent.npz")


def test_pickled_object_arrays_never_run(tmp_path, model):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (marker.write_text, ("x",))

    p = tmp_path / "evil.npz"
    np.savez(p, meta=_meta(model), evil=np.array([Evil()], dtype=object))
    with pytest.raises(io.ModelFileError):
        io.load_model(p)
    assert not marker.exists()


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):
        io.atomic_write(target, object())  # fails while writing
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


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
        io.write_image(p, a)
    back, _ = io.read_image(p)
    assert back.dtype == a.dtype
    np.testing.assert_array_equal(back, a)


def test_palette_exif_icc_dpi_and_orientation(tmp_path):
    im = Image.new("P", (6, 4))
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((1, 1), 1)
    p = tmp_path / "pal.png"
    im.save(p)
    arr, info = io.read_image(p)
    assert arr.shape == (4, 6, 3) and tuple(arr[1, 1]) == (255, 0, 0) and "palette" in info["converted"]

    rgb = Image.new("RGB", (6, 4), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    exif[0x010F] = "TestCam"
    icc = b"\0" * 128  # stored and carried verbatim
    p = tmp_path / "o.jpg"
    rgb.save(p, exif=exif.tobytes(), icc_profile=icc, dpi=(300, 300), quality=95)
    arr, info = io.read_image(p)
    assert arr.shape == (6, 4, 3)  # orientation applied
    out = tmp_path / "out.jpg"
    io.write_image(out, arr, info)
    with Image.open(out) as back:
        assert back.getexif().get(0x010F) == "TestCam" and 0x0112 not in back.getexif()
        assert back.info.get("icc_profile") == icc
        assert tuple(round(v) for v in back.info["dpi"]) == (300, 300)


def test_unsupported_images_are_refused(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (4, 4)).save(p)
    with pytest.raises(ValueError, match="mode"):
        io.read_image(p)
    with pytest.raises(ValueError, match="alpha"):
        io.write_image(tmp_path / "a.jpg", np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="format"):
        io.write_image(tmp_path / "a.xyz", np.zeros((4, 4), np.uint8))
