import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import denoise
from denoise import io
from denoise.distributed import WORKER_MALLOC, Settings, connect, denoise_folder, largest_first, tiles
from denoise.files import Job
from denoise.memory import peak_rss_mb

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"


@pytest.fixture(scope="module")
def client():
    c, cluster = connect(workers=2)
    yield c
    c.close()
    cluster.close()


def test_local_workers_start_with_our_malloc_settings(client):
    # set before each worker process starts, where glibc reads them (Dask's own default would pin the
    # mmap threshold at 128 KiB: a folder of photos took 1.35x as long with the fast model)
    wanted = {key.rsplit(".", 1)[1]: str(value) for key, value in WORKER_MALLOC.items()}
    seen = client.run(lambda: {k: os.environ.get(k) for k in wanted})
    assert len(seen) == 2 and all(env == wanted for env in seen.values()), seen


def test_local_workers_run_no_statistical_profiler(client):
    # Dask's default samples each task's stack every 10 ms (see WORKER_CONFIG); the rest of a worker's
    # periodic work (heartbeats, memory monitor) still runs
    running = client.run(lambda dask_worker: sorted(name for name, pc in dask_worker.periodic_callbacks.items() if pc.is_running()))
    assert len(running) == 2
    for names in running.values():
        assert not any(name.startswith("profile") for name in names) and "heartbeat" in names, names


def _checksums(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def photos(tmp_path):
    """Small noisy crops of the sample photos in several formats and modes."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    a, _ = io.read_image(SAMPLES / "honey_bee.jpg")
    rgb = np.clip(a[:96, :128] + rng.normal(0, 20, (96, 128, 3)), 0, 255).astype(np.uint8)
    g, _ = io.read_image(SAMPLES / "dogs_gray.png")
    gray = np.clip(g[:80, :72] + rng.normal(0, 20, (80, 72)), 0, 255).astype(np.uint8)
    d, _ = io.read_image(SAMPLES / "dandelions_16bit.png")
    g16 = np.clip(d[:64, :96] + rng.normal(0, 5000, (64, 96)), 0, 65535).astype(np.uint16)
    Image.fromarray(rgb).save(src / "bee.png")
    Image.fromarray(gray).save(src / "dogs.jpg", quality=95)
    Image.fromarray(g16).save(src / "sub" / "dandelions16.png")
    rgba = np.dstack([rgb[:50, :60], rng.integers(0, 256, (50, 60), dtype=np.uint8)])
    Image.fromarray(rgba).save(src / "sub" / "alpha.png")
    Image.fromarray(rgb[:40, :40]).quantize(64).save(src / "palette.png")
    return src


def test_folder_equals_denoise_image_file_by_file(client, photos, tmp_path, default_model):
    before = _checksums(photos)
    out = tmp_path / "out"
    entries = denoise_folder([photos], out, recursive=True, sigma=20 / 255, client=client, progress=False)
    assert sorted(e["status"] for e in entries) == ["done"] * 5
    assert _checksums(photos) == before  # inputs untouched
    for src in io.list_images(photos, recursive=True):
        dst = out / src.relative_to(photos)
        image, info = io.read_image(src)
        expected = denoise.denoise_image(default_model, image, 20 / 255)
        if src.suffix == ".png":
            got, _ = io.read_image(dst)
            assert got.dtype == expected.dtype and got.shape == expected.shape
            np.testing.assert_array_equal(got, expected, err_msg=str(src))
        else:  # JPEG: the same pixels encode to the same bytes
            assert dst.read_bytes() == io.encode_image(expected, ".jpg", info)
    pal = next(e for e in entries if e["file"].endswith("palette.png"))
    assert "palette" in pal["note"]
    alpha_in, _ = io.read_image(photos / "sub" / "alpha.png")
    alpha_out, _ = io.read_image(out / "sub" / "alpha.png")
    np.testing.assert_array_equal(alpha_out[..., 3], alpha_in[..., 3])


def test_rerun_skips_finished_files_and_redoes_changed_ones(client, photos, tmp_path):
    out = tmp_path / "out"
    denoise_folder([photos], out, client=client, progress=False)
    stamp = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.suffix != ".jsonl"}
    again = denoise_folder([photos], out, client=client, progress=False)
    assert {e["status"] for e in again} == {"skipped"}
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.suffix != ".jsonl"} == stamp
    (out / "bee.png").unlink()  # a lost output is redone
    other = denoise_folder([photos], out, client=client, progress=False)
    assert {Path(e["file"]).name: e["status"] for e in other} == {"bee.png": "done", "dogs.jpg": "skipped", "palette.png": "skipped"}
    changed = denoise_folder([photos], out, sigma=0.1, client=client, progress=False)  # new settings: redo all
    assert {e["status"] for e in changed} == {"done"}
    forced = denoise_folder([photos], out, sigma=0.1, overwrite=True, client=client, progress=False)
    assert {e["status"] for e in forced} == {"done"}
    ensembled = denoise_folder([photos], out, sigma=0.1, ensemble=2, client=client, progress=False)
    assert {e["status"] for e in ensembled} == {"done"}
    assert {e["status"] for e in denoise_folder([photos], out, sigma=0.1, ensemble=2, client=client, progress=False)} == {"skipped"}


def test_bad_file_is_reported_and_the_rest_complete(client, photos, tmp_path):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (photos / "text.jpg").write_text("hello")
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    entries = denoise_folder([photos], out, client=client, progress=False, report=report)
    status = {Path(e["file"]).name: e["status"] for e in entries}
    assert status == {"bee.png": "done", "broken.png": "failed", "dogs.jpg": "done", "palette.png": "done", "text.jpg": "failed"}
    r = json.loads(report.read_text())
    assert r["summary"] == {"done": 3, "skipped": 0, "failed": 2}
    assert all(e["reason"] for e in r["files"] if e["status"] == "failed")
    assert not (out / "broken.png").exists() and not (out / "text.jpg").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("ensemble", [1, 4])
def test_tiled_equals_untiled(client, tmp_path, default_model, ensemble):
    a, _ = io.read_image(SAMPLES / "mountain_trail_gray.png")
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(a[:200, :260]).save(src / "big.png")
    out = tmp_path / "out"
    # 0.002 MP tiles: ~45x45 cores, 36 tiles for this image
    entries = denoise_folder([src], out, sigma=25 / 255, ensemble=ensemble, tile_megapixels=0.002, client=client, progress=False)
    assert entries[0]["status"] == "done"
    got, _ = io.read_image(out / "big.png")
    expected = denoise.denoise_image(default_model, a[:200, :260], 25 / 255, ensemble=ensemble)
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3


def test_results_lost_with_a_worker_and_forgotten_by_dask_are_submitted_again(client, tmp_path, monkeypatch):
    # a task that finished on a worker killed before its result was fetched: Dask may forget it, and
    # Future.result raises "cancelled for reason: already forgotten" (seen once in CI). Simulated here
    # for the first two results fetched (a whole file, then a tile), and for every result of one more run.
    from distributed import Future
    from distributed.client import FutureCancelledError

    a, _ = io.read_image(SAMPLES / "mountain_trail_gray.png")
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
        got, _ = io.read_image(tmp_path / "out" / name)
        ref, _ = io.read_image(src / name)
        expected = denoise.denoise_image(denoise.load_model("default"), ref, 25 / 255)
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1, name
    fetched.clear()
    lost = 10**6  # lost every time: given up after RESUBMITS tries, each file failed with the reason
    entries = denoise_folder([src], tmp_path / "out2", sigma=25 / 255, tile_megapixels=0.01, client=client, progress=False)
    assert [e["status"] for e in entries] == ["failed", "failed"] and all("forgotten" in e["reason"] for e in entries), entries


def test_a_runs_last_files_are_split_among_the_workers(client, tmp_path, monkeypatch):
    # fewer files left than workers (and than ENDGAME_FILES): each goes out as tiles (down to
    # ENDGAME_TILE_PIXELS a tile), so that no worker waits on another's whole file; the output is the
    # same as from one whole-file task
    import denoise.distributed as D

    model = tmp_path / "tiny.npz"
    arch = denoise.Architecture(patch=8, context=2, hidden=(16,), noise_input=True)
    io.save_model(denoise.Autoencoder(arch, meta={"noise": "gaussian:0-50", "stride": 4}), model)
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (1000, 1100), dtype=np.uint8)).save(src / "big.png")  # 2 tiles' worth
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(src / "small.png")  # under 1 tile
    submitted = []
    real = D._Runner._add

    def add(self, img, box, fn, *args, **kw):
        submitted.append((img.job.src.name, fn.__name__))
        return real(self, img, box, fn, *args, **kw)

    monkeypatch.setattr(D._Runner, "_add", add)
    split = denoise_folder([src], tmp_path / "split", model=model, client=client, progress=False)  # blind
    tasks = sorted(set(submitted))
    submitted.clear()
    monkeypatch.setattr(D, "ENDGAME_FILES", 1)  # only the last file may be split: big.png, before it, goes whole
    whole = denoise_folder([src], tmp_path / "whole", model=model, client=client, progress=False)
    assert [e["status"] for e in split + whole] == ["done"] * 4, split + whole
    assert tasks == [("big.png", "_denoise_tile"), ("small.png", "_denoise_bytes")]
    assert sum(name == "big.png" for name, _ in submitted) == 1 and len(submitted) == 2
    for name in ("big.png", "small.png"):
        assert (tmp_path / "split" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_large_files_and_tiles_travel_without_dask_warnings(client, tmp_path):
    # Dask warns about task graphs over 10 MB; a 12 MB file and 24 MB tiles are expected here
    import warnings

    arch = denoise.Architecture(patch=8, context=2, hidden=(16,), noise_input=True)
    model = tmp_path / "tiny.npz"
    io.save_model(denoise.Autoencoder(arch, meta={"noise": "gaussian:0-50", "stride": 8}), model)
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


@pytest.mark.parametrize("stride", [1, 3, 4])
def test_tiles_cover_the_image_and_reproduce_it(default_model, stride):
    rng = np.random.default_rng(stride)
    img = rng.random((57, 43, 3)).astype(np.float32)
    whole = denoise.denoise_image(default_model, img, 0.1, stride=stride)
    out = np.full_like(img, np.nan)
    a = default_model.arch
    parts = tiles(img.shape[:2], 300, stride, a.patch + a.context - 1)
    assert len(parts) > 4
    for ((y0, y1), (x0, x1)), ((cy0, cy1), (cx0, cx1)) in parts:
        assert y0 % stride == 0 and x0 % stride == 0
        t = denoise.denoise_image(default_model, img[y0:y1, x0:x1], 0.1, stride=stride)
        out[y0 + cy0 : y0 + cy1, x0 + cx0 : x0 + cx1] = t[cy0:cy1, cx0:cx1]
    assert not np.isnan(out).any()
    np.testing.assert_allclose(out, whole, atol=2e-5)


def test_external_scheduler_and_worker(photos, tmp_path):
    sched_file = tmp_path / "scheduler.json"
    bindir = Path(sys.executable).parent
    dask = str(bindir / "dask") if (bindir / "dask").exists() else "dask"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        from distributed import Client

        with Client(address, timeout="30s") as c:
            c.wait_for_workers(1, timeout=60)
        out = tmp_path / "out"
        entries = denoise_folder([photos], out, scheduler=address, sigma=20 / 255, progress=False)
        assert {e["status"] for e in entries} == {"done"}
        local = tmp_path / "local"
        denoise_folder([photos], local, sigma=20 / 255, workers=1, progress=False)
        for name in ("bee.png", "palette.png"):
            assert (out / name).read_bytes() == (local / name).read_bytes()
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_unreachable_scheduler_fails_fast(photos, tmp_path):
    t0 = time.time()
    with pytest.raises(ConnectionError, match="cannot reach"):
        denoise_folder([photos], tmp_path / "o", scheduler="tcp://127.0.0.1:9", progress=False)
    assert time.time() - t0 < 15


# ---------------------------------------------------------------------------
# reliability (docs/reliability.md)

import threading  # noqa: E402


def _grays(folder: Path, n: int, size=(120, 150)) -> Path:
    a, _ = io.read_image(SAMPLES / "mountain_trail_gray.png")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        y, x = (i * 31) % (a.shape[0] - size[0]), (i * 47) % (a.shape[1] - size[1])
        Image.fromarray(a[y : y + size[0], x : x + size[1]]).save(folder / f"g{i:04d}.png")
    return folder


def _start(cmd, env):
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def test_killed_worker_tasks_are_rerun(tmp_path):
    src = _grays(tmp_path / "in", 16)
    bindir = Path(sys.executable).parent
    dask = str(bindir / "dask") if (bindir / "dask").exists() else "dask"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    sched_file = tmp_path / "s.json"
    procs = [_start([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(sched_file)], env)]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        workers = [_start([dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"], env) for _ in range(2)]
        procs += workers
        from distributed import Client

        with Client(address, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
        out = tmp_path / "out"
        result = {}
        t = threading.Thread(target=lambda: result.update(entries=denoise_folder(
            [src], out, scheduler=address, sigma=20 / 255, progress=False, report=tmp_path / "r.json")))
        t.start()
        manifest = out / ".denoise-manifest.jsonl"
        while time.time() < deadline + 120 and (not manifest.exists() or len(manifest.read_text().splitlines()) < 2):
            time.sleep(0.05)
        workers[0].kill()  # SIGKILL, mid-run
        t.join(timeout=300)
        assert {e["status"] for e in result["entries"]} == {"done"}, [e for e in result["entries"] if e["status"] != "done"]
        report = json.loads((tmp_path / "r.json").read_text())
        assert len(report["workers_lost"]) == 1 and "re-ran" in report["note"]
        ref = tmp_path / "ref"
        denoise_folder([src], ref, sigma=20 / 255, workers=1, progress=False)
        for f in ref.glob("*.png"):
            assert (out / f.name).read_bytes() == f.read_bytes()
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=30)


def test_unreachable_scheduler_from_the_command_line(tmp_path):
    _grays(tmp_path / "in", 1)
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "denoise.cli", "run", str(tmp_path / "in"), "-o", str(tmp_path / "o"),
                        "--scheduler", "tcp://127.0.0.1:9"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "cannot reach the Dask scheduler" in r.stderr and "Traceback" not in r.stderr
    assert time.time() - t0 < 30


def test_full_disk_fails_files_cleanly(client, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        src = _grays(tmp_path / "in", 12, size=(160, 200))  # ~25 KB per PNG output
        entries = denoise_folder([src], mnt / "out", sigma=20 / 255, client=client, progress=False)
        done = [e for e in entries if e["status"] == "done"]
        failed = [e for e in entries if e["status"] == "failed"]
        assert done and failed
        assert all("No space left" in e["reason"] for e in failed)
        ref = tmp_path / "ref"
        denoise_folder([src], ref, sigma=20 / 255, client=client, progress=False)
        for e in done:  # finished outputs are whole and correct
            name = Path(e["output"]).name
            assert (mnt / "out" / name).read_bytes() == (ref / name).read_bytes()
        for e in failed:
            assert not (mnt / "out" / Path(e["file"]).name).exists()
        assert not list((mnt / "out").glob(".*.part"))
    finally:
        subprocess.run(["umount", str(mnt)])


def test_outputs_never_escape_the_output_folder(client, tmp_path):
    src = tmp_path / "in"
    _grays(src / "sub", 1)
    _grays(src, 1)
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    os.symlink(elsewhere, out / "sub")  # a planted absolute link inside the output folder
    entries = denoise_folder([src], out, recursive=True, client=client, progress=False)
    status = {e["file"]: e for e in entries}
    assert status[str(src / "g0000.png")]["status"] == "done"
    bad = status[str(src / "sub" / "g0000.png")]
    assert bad["status"] == "failed" and "outside the output folder" in bad["reason"]
    assert list(elsewhere.iterdir()) == []


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


def test_150_megapixel_image_stays_within_worker_memory(tmp_path):
    # a small, fast model: this test is about memory, not quality
    arch = denoise.Architecture(patch=8, context=2, hidden=(16,), noise_input=True)
    model = tmp_path / "fast.npz"
    io.save_model(denoise.Autoencoder(arch, meta={"noise": "gaussian:0-50", "stride": 8}), model)
    src = tmp_path / "in"
    src.mkdir()
    big = np.tile(np.arange(256, dtype=np.uint8), (12248, 48))[:, :12248]  # 150 MP gray
    Image.fromarray(big).save(src / "huge.png", compress_level=1)
    del big
    c, cluster = connect(workers=2)
    try:
        entries = denoise_folder([src], tmp_path / "out", model=model, sigma=0.05, client=c, progress=False)
        peaks = c.run(peak_rss_mb)
    finally:
        c.close()
        cluster.close()
    assert entries[0]["status"] == "done" and entries[0]["megapixels"] > 149
    assert max(peaks.values()) < 2048, peaks  # MB per worker


def test_plain_settings_keep_the_key_older_manifests_hold():
    # an output made before ensembles existed must still count as done with ensemble=1
    old = {"model": "abc", "sigma": None, "stride": None, "fmt": "keep", "q": 95}
    assert Settings().key("abc") == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]
    assert Settings(ensemble=2).key("abc") != Settings().key("abc")


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
    order = [j.src.name for j in largest_first(jobs)]
    assert order == ["gray20.png", "rgb10.jpg", "rgba10.png", "palette8.png", "gray16_12.png", "gray10.png", "broken.png"]


@pytest.mark.parametrize("bad, match", [(dict(ensemble=3), "ensemble must be one of"), (dict(stride=2.0), "stride must be an integer"),
                                        (dict(stride=0), "stride must be an integer"), (dict(stride=99), "patch size")])
def test_bad_settings_fail_before_any_cluster_starts(photos, tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        denoise_folder([photos], tmp_path / "out", progress=False, **bad)
    assert not (tmp_path / "out").exists()
