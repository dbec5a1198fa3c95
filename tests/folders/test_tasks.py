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
