import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

import denoise
from denoise import modelfile
from denoise.memory import peak_rss_mb

from .conftest import TINY


@pytest.fixture
def model():
    m = denoise.Autoencoder(TINY, seed=9, meta={"noise": "gaussian:5-50", "stride": 2})
    return m


def test_save_load_identical_outputs(model, tmp_path):
    p = tmp_path / "m.npz"
    modelfile.save_model(model, p)
    back = modelfile.load_model(p)
    x = np.random.default_rng(0).random((10, 64), dtype=np.float32)
    np.testing.assert_array_equal(back.reconstruct(x, 0.1), model.reconstruct(x, 0.1))
    assert back.arch == model.arch and back.stride == 2 and back.meta["noise"] == "gaussian:5-50"


def test_half_storage_is_close(model, tmp_path):
    p = tmp_path / "h.npz"
    modelfile.save_model(model, p, half=True)
    back = modelfile.load_model(p)
    x = np.random.default_rng(0).random((10, 64), dtype=np.float32)
    np.testing.assert_allclose(back.reconstruct(x, 0.1), model.reconstruct(x, 0.1), atol=2e-3)


def test_shipped_models():
    assert "default" in modelfile.list_models()
    m = modelfile.load_model("default")
    assert m.meta.get("provenance") and m.meta.get("noise")
    with pytest.raises(ValueError, match="no shipped model named 'nope'"):
        modelfile.load_model("nope")


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _meta(model, **over):
    d = {"format": 1, "architecture": model.arch.to_dict(), "noise": "gaussian:25"}
    d.update(over)
    return np.array(json.dumps(d))


def test_damaged_and_foreign_files_get_one_line_errors(model, tmp_path):
    good = tmp_path / "good.npz"
    modelfile.save_model(model, good)
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
        with pytest.raises(modelfile.ModelFileError) as e:
            modelfile.load_model(p)
        msg = str(e.value)
        assert str(p) in msg and "\n" not in msg, (name, msg)
        if name.startswith(("stride", "window")):  # the file's default stride or window, named
            assert f"its default {name[:6]} must be" in msg, msg
    with pytest.raises(modelfile.ModelFileError, match="no such file"):
        modelfile.load_model(tmp_path / "absent.npz")


def test_pickled_object_arrays_never_run(tmp_path, model):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (marker.write_text, ("x",))

    p = tmp_path / "evil.npz"
    np.savez(p, meta=_meta(model), evil=np.array([Evil()], dtype=object))
    with pytest.raises(modelfile.ModelFileError):
        modelfile.load_model(p)
    assert not marker.exists()


def _zip(path, members: dict):
    """An .npz-like archive of raw members (name -> bytes, or a callable writing to the open member)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in members.items():
            with z.open(name, "w", force_zip64=True) as f:
                content(f) if callable(content) else f.write(content)
    return path


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_a_zip_bomb_is_refused_before_it_is_inflated(model, tmp_path):
    # 256 MiB of zeros declared where the architecture needs a few kB: refused by the declared size
    def zeros(f):
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (64, 2**20)})
        f.write(header.getvalue())
        block = bytes(1 << 24)
        for _ in range(16):
            f.write(block)

    weights = {f"{k}.npy": _npy(v) for k, v in model.get_weights().items()}
    bomb = _zip(tmp_path / "bomb.npz", {"meta.npy": _npy(_meta(model)), **weights, "encoder.0.W.npy": zeros})
    assert bomb.stat().st_size < 2**20
    before = peak_rss_mb()
    with pytest.raises(modelfile.ModelFileError, match=r"'encoder.0.W' declares 268,435,\d+ bytes; at most 8,320 fit"):
        modelfile.load_model(bomb)
    assert peak_rss_mb() - before < 100


def test_an_array_header_declaring_more_than_it_may_is_refused(model, tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**13,)})
    weights = {f"{k}.npy": _npy(v) for k, v in model.get_weights().items()}
    p = _zip(tmp_path / "huge.npz", {"meta.npy": _npy(_meta(model)), **weights, "state.step.npy": header.getvalue()})
    with pytest.raises(modelfile.ModelFileError, match=r"'state.step' declares shape \(10000000000000,\)"):
        modelfile.load_model(p)


@pytest.mark.parametrize("arch, message", [
    (dict(patch=10**6), "patch \\+ 2 \\* context must be at most 128"),
    (dict(hidden=[10**9]), "the architecture has 82,000,000,016 weights; at most 50,000,000 are allowed"),
    (dict(scale=float("nan")), "scale must be a positive finite number; got nan"),
    (dict(scale=0), "scale must be a positive finite number; got 0"),
    (dict(patch="8"), "patch must be an integer; got '8'"),
    (dict(residual="yes"), "residual must be true or false"),
])
def test_absurd_architectures_are_refused_as_model_file_errors(model, tmp_path, arch, message):
    d = {**model.arch.to_dict(), **arch}
    p = _npz(tmp_path / "absurd.npz", meta=_meta(model, architecture=d), **model.get_weights())
    with pytest.raises(modelfile.ModelFileError, match=f"bad architecture: {message}"):
        modelfile.load_model(p)


def test_an_image_is_not_a_model_file(tmp_path):
    p = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(p)
    with pytest.raises(modelfile.ModelFileError) as e:
        modelfile.load_model(p)
    assert str(e.value) == f"model file {p}: not a denoise model file (not an .npz archive)"
