import denoise
from denoise import modelfile
from denoise.folders import Settings, tasks


def test_a_worker_keeps_a_bounded_number_of_compiled_models(tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "_models", type(tasks._models)())
    files = []
    for seed in range(tasks.MODEL_CACHE_SIZE + 2):
        path = tmp_path / f"m{seed}.npz"
        modelfile.save_model(denoise.Autoencoder(denoise.Architecture(patch=2, hidden=(4,)), seed=seed), path)
        files.append((str(seed), path.read_bytes()))
    first = tasks._model(*files[0])
    assert tasks._model(*files[0]) is first  # compiled once, then reused
    for sha, data in files[1:]:
        tasks._model(sha, data)
    assert list(tasks._models) == [sha for sha, _ in files[-tasks.MODEL_CACHE_SIZE:]]
    assert tasks._model(*files[0]) is not first  # evicted, loaded again


def test_a_task_returns_its_error_as_a_value(tmp_path):
    path = tmp_path / "m.npz"
    modelfile.save_model(denoise.Autoencoder(denoise.Architecture(patch=2, hidden=(4,))), path)
    ok, (reason, details) = tasks.denoise_bytes("1" * 64, path.read_bytes(), "broken.png", b"not an image", ".png",
                                                Settings())
    assert not ok
    assert reason == "ValueError: not an image file Pillow can read (unknown format or damaged header)"
    assert "Traceback" in details


def test_a_batch_fails_only_its_bad_files_and_writes_the_rest(tmp_path):
    import numpy as np
    from PIL import Image

    path = tmp_path / "m.npz"
    model = denoise.Autoencoder(denoise.Architecture(patch=2, hidden=(4,)))
    modelfile.save_model(model, path)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    rng = np.random.default_rng(0)
    images = {}
    for name in ("a.png", "c.png", "d.png"):
        images[name] = rng.integers(0, 256, (20, 24), dtype=np.uint8)
        Image.fromarray(images[name]).save(src / name)
    (src / "b.png").write_bytes(b"not an image")
    (out / "d.png").mkdir(parents=True)  # a folder where d.png's output should go: its write fails
    items = [(src / n, out / n, out, None) for n in ("a.png", "b.png", "c.png", "d.png", "missing.png")]
    records = tasks.denoise_files("2" * 64, path.read_bytes(), items, Settings(sigma=0.1), None)
    assert [r["ok"] for r in records] == [True, False, True, False, False]
    assert "not an image file" in records[1]["reason"] and "No such file" in records[4]["reason"]
    assert "directory" in records[3]["reason"].lower(), records[3]["reason"]
    for i, name in ((0, "a.png"), (2, "c.png")):
        rec = records[i]
        assert rec["written"]["bytes"] == (out / name).stat().st_size
        st = (src / name).stat()
        assert rec["source"] == [st.st_size, st.st_mtime_ns] and rec["changed"] is False
        got, _ = denoise.imagefile.read_image(out / name)
        np.testing.assert_array_equal(got, denoise.denoise_image(model, images[name], 0.1))
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png", "d.png"]  # no temporaries left
