import json

import numpy as np
import pytest

import denoise
from denoise import modelfile

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
