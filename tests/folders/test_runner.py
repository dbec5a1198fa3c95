import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import denoise
from denoise import imagefile, modelfile
from denoise.folders import denoise_folder
from denoise.folders.plan import Job
from denoise.folders.runner import largest_first

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


def test_results_lost_with_a_worker_and_forgotten_by_dask_are_submitted_again(client, tmp_path, monkeypatch):
    # a task that finished on a worker killed before its result was fetched: Dask may forget it, and
    # Future.result raises "cancelled for reason: already forgotten" (seen once in CI). Simulated here
    # for the first two results fetched (a whole file, then a tile), and for every result of one more run.
    from distributed import Future
    from distributed.client import FutureCancelledError

    a, _ = imagefile.read_image(SAMPLES / "mountain_trail_gray.png")
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(a[:200, :260]).save(src / "big.png")  # tiled below
    Image.fromarray(a[200:260, :80]).save(src / "small.png")
    real, fetched = Future.result, []

    def result(self, timeout=None):
        fetched.append(self.key)
        if len(fetched) <= lost:
            raise FutureCancelledError(self.key, reason="already forgotten")
        return real(self, timeout)

    monkeypatch.setattr(Future, "result", result)
    lost = 2
    entries = denoise_folder([src], tmp_path / "out", sigma=25 / 255, tile_megapixels=0.01, client=client, progress=False)
    assert [e["status"] for e in entries] == ["done", "done"], entries
    for name in ("big.png", "small.png"):
        got, _ = imagefile.read_image(tmp_path / "out" / name)
        ref, _ = imagefile.read_image(src / name)
        expected = denoise.denoise_image(denoise.load_model("default"), ref, 25 / 255)
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1, name
    fetched.clear()
    lost = 10**6  # lost every time: given up after RESUBMITS tries, each file failed with the reason
    entries = denoise_folder([src], tmp_path / "out2", sigma=25 / 255, tile_megapixels=0.01, client=client, progress=False)
    assert [e["status"] for e in entries] == ["failed", "failed"] and all("forgotten" in e["reason"] for e in entries), entries


@pytest.mark.slow
def test_a_runs_last_files_are_split_among_the_workers(client, tmp_path, monkeypatch):
    # fewer files left than workers (and than ENDGAME_FILES): each goes out as tiles (down to
    # ENDGAME_TILE_PIXELS a tile), so that no worker waits on another's whole file; the output is the
    # same as from one whole-file task
    from denoise.folders import runner as D

    model = tmp_path / "tiny.npz"
    arch = denoise.Architecture(patch=8, context=2, hidden=(16,), noise_input=True)
    modelfile.save_model(denoise.Autoencoder(arch, meta={"noise": "gaussian:0-50", "stride": 4}), model)
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (1000, 1100), dtype=np.uint8)).save(src / "big.png")  # 2 tiles' worth
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(src / "small.png")  # under 1 tile
    submitted = []
    real = D.Runner._add

    def add(self, img, box, fn, *args, **kw):
        submitted.append((img.job.src.name, fn.__name__))
        return real(self, img, box, fn, *args, **kw)

    monkeypatch.setattr(D.Runner, "_add", add)
    split = denoise_folder([src], tmp_path / "split", model=model, client=client, progress=False)  # blind
    tasks = sorted(set(submitted))
    submitted.clear()
    monkeypatch.setattr(D, "ENDGAME_FILES", 1)  # only the last file may be split: big.png, before it, goes whole
    whole = denoise_folder([src], tmp_path / "whole", model=model, client=client, progress=False)
    assert [e["status"] for e in split + whole] == ["done"] * 4, split + whole
    assert tasks == [("big.png", "denoise_tile"), ("small.png", "denoise_bytes")]
    assert sum(name == "big.png" for name, _ in submitted) == 1 and len(submitted) == 2
    for name in ("big.png", "small.png"):
        assert (tmp_path / "split" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_large_files_and_tiles_travel_without_dask_warnings(client, tmp_path):
    # Dask warns about task graphs over 10 MB; a 12 MB file and 24 MB tiles are expected here
    import warnings

    arch = denoise.Architecture(patch=8, context=2, hidden=(16,), noise_input=True)
    model = tmp_path / "tiny.npz"
    modelfile.save_model(denoise.Autoencoder(arch, meta={"noise": "gaussian:0-50", "stride": 8}), model)
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (2000, 2000, 3), dtype=np.uint8)).save(src / "whole.bmp")  # 12 MB, one task
    Image.fromarray(rng.integers(0, 256, (3000, 3000, 3), dtype=np.uint8)).save(src / "tiled.png", compress_level=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entries = denoise_folder([src], tmp_path / "out", model=model, sigma=0.05, tile_megapixels=8,
                                 client=client, progress=False)
    assert [e["status"] for e in entries] == ["done", "done"], entries
    assert not [w for w in caught if "large graph" in str(w.message)], [str(w.message) for w in caught]


@pytest.mark.slow
def test_two_thousand_small_images_keep_the_scheduler_small(client, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2000):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(src / f"t{i:04d}.png")
    seen = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)))
            time.sleep(0.05)

    w = threading.Thread(target=watch)
    w.start()
    try:
        entries = denoise_folder([src], tmp_path / "out", sigma=0.05, client=client, progress=False)
    finally:
        stop.set()
        w.join()
    assert len(entries) == 2000 and {e["status"] for e in entries} == {"done"}
    # in flight: 2 per worker, plus the scattered model
    assert max(seen) <= 2 * len(client.scheduler_info()["workers"]) + 2


def test_largest_first_orders_files_by_pixels_times_colour_planes(tmp_path):
    rng = np.random.default_rng(0)
    files = {
        "gray10.png": Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8)),  # 100
        "rgb10.jpg": Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)),  # 300
        "gray20.png": Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)),  # 400
        "rgba10.png": Image.fromarray(rng.integers(0, 256, (10, 10, 4), dtype=np.uint8)),  # 300, alpha is free
        "palette8.png": Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).quantize(16),  # 192: becomes RGB
        "gray16_12.png": Image.fromarray(rng.integers(0, 65536, (12, 12), dtype=np.uint16)),  # 144
    }
    jobs = []
    for name, im in files.items():
        im.save(tmp_path / name)
        jobs.append(Job(tmp_path / name, tmp_path / "out" / name))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    jobs.insert(0, Job(tmp_path / "broken.png", tmp_path / "out" / "broken.png"))
    order = [j.src.name for j in largest_first(jobs)[0]]
    assert order == ["gray20.png", "rgb10.jpg", "rgba10.png", "palette8.png", "gray16_12.png", "gray10.png", "broken.png"]
