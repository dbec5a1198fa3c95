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
from denoise import imagefile, modelfile
from denoise.folders import connect, denoise_folder
from denoise.memory import peak_rss_mb

from .conftest import dask_cluster

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


def _checksums(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def photos(tmp_path):
    """Small noisy crops of the sample photos in several formats and modes."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    a, _ = imagefile.read_image(SAMPLES / "honey_bee.jpg")
    rgb = np.clip(a[:96, :128] + rng.normal(0, 20, (96, 128, 3)), 0, 255).astype(np.uint8)
    g, _ = imagefile.read_image(SAMPLES / "dogs_gray.png")
    gray = np.clip(g[:80, :72] + rng.normal(0, 20, (80, 72)), 0, 255).astype(np.uint8)
    d, _ = imagefile.read_image(SAMPLES / "dandelions_16bit.png")
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
    for src in imagefile.list_images(photos, recursive=True):
        dst = out / src.relative_to(photos)
        image, info = imagefile.read_image(src)
        expected = denoise.denoise_image(default_model, image, 20 / 255)
        if src.suffix == ".png":
            got, _ = imagefile.read_image(dst)
            assert got.dtype == expected.dtype and got.shape == expected.shape
            np.testing.assert_array_equal(got, expected, err_msg=str(src))
        else:  # JPEG: the same pixels encode to the same bytes
            assert dst.read_bytes() == imagefile.encode_image(expected, ".jpg", info)
    pal = next(e for e in entries if e["file"].endswith("palette.png"))
    assert "palette" in pal["note"]
    alpha_in, _ = imagefile.read_image(photos / "sub" / "alpha.png")
    alpha_out, _ = imagefile.read_image(out / "sub" / "alpha.png")
    np.testing.assert_array_equal(alpha_out[..., 3], alpha_in[..., 3])


def test_workers_reading_shared_files_write_what_the_client_would(client, photos, tmp_path):
    # the same cluster, once shipping bytes from the client and once with the workers doing the I/O
    shipped, shared = tmp_path / "shipped", tmp_path / "shared"
    a = denoise_folder([photos], shipped, recursive=True, sigma=20 / 255, client=client, progress=False)
    b = denoise_folder([photos], shared, recursive=True, sigma=20 / 255, client=client, progress=False,
                       shared_storage=True)
    assert [e["status"] for e in a] == [e["status"] for e in b] == ["done"] * 5
    assert [e.get("note") for e in a] == [e.get("note") for e in b]
    manifest = ".denoise-manifest.jsonl"
    assert {k: v for k, v in _checksums(shipped).items() if k != manifest} == {
        k: v for k, v in _checksums(shared).items() if k != manifest}
    again = denoise_folder([photos], shared, recursive=True, sigma=20 / 255, client=client, progress=False)
    assert {e["status"] for e in again} == {"skipped"}  # the workers' records resume a client-mode rerun


def test_rerun_skips_finished_files_and_redoes_changed_ones(client, photos, tmp_path):
    out = tmp_path / "out"
    denoise_folder([photos], out, client=client, progress=False)
    stamp = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if not p.name.startswith(".")}
    again = denoise_folder([photos], out, client=client, progress=False)
    assert {e["status"] for e in again} == {"skipped"}
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if not p.name.startswith(".")} == stamp
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
    strong = denoise_folder([photos], out, sigma=0.1, ensemble=2, strength=1.5, client=client, progress=False)
    assert {e["status"] for e in strong} == {"done"}  # another strength: redone
    got, _ = imagefile.read_image(out / "bee.png")
    src, _ = imagefile.read_image(photos / "bee.png")
    np.testing.assert_array_equal(got, denoise.denoise_image(modelfile.load_model("default"), src, 0.1, ensemble=2,
                                                             strength=1.5))


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
    a, _ = imagefile.read_image(SAMPLES / "mountain_trail_gray.png")
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(a[:200, :260]).save(src / "big.png")
    out = tmp_path / "out"
    # 0.002 MP tiles: ~45x45 cores, 36 tiles for this image
    entries = denoise_folder([src], out, sigma=25 / 255, ensemble=ensemble, tile_megapixels=0.002, client=client, progress=False)
    assert entries[0]["status"] == "done"
    got, _ = imagefile.read_image(out / "big.png")
    expected = denoise.denoise_image(default_model, a[:200, :260], 25 / 255, ensemble=ensemble)
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3


@pytest.mark.slow
def test_external_scheduler_and_worker(photos, tmp_path):
    with dask_cluster(1) as (address, _):
        out = tmp_path / "out"
        entries = denoise_folder([photos], out, scheduler=address, sigma=20 / 255, progress=False)
        assert {e["status"] for e in entries} == {"done"}
        local = tmp_path / "local"
        denoise_folder([photos], local, sigma=20 / 255, workers=1, progress=False)
        for name in ("bee.png", "palette.png"):
            assert (out / name).read_bytes() == (local / name).read_bytes()


@pytest.mark.slow
def test_unreachable_scheduler_fails_fast(photos, tmp_path):
    t0 = time.time()
    with pytest.raises(ConnectionError, match="cannot reach"):
        denoise_folder([photos], tmp_path / "o", scheduler="tcp://127.0.0.1:9", progress=False)
    assert time.time() - t0 < 15


# ---------------------------------------------------------------------------
# reliability (docs/reliability.md)

import threading  # noqa: E402


def _grays(folder: Path, n: int, size=(120, 150)) -> Path:
    a, _ = imagefile.read_image(SAMPLES / "mountain_trail_gray.png")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        y, x = (i * 31) % (a.shape[0] - size[0]), (i * 47) % (a.shape[1] - size[1])
        Image.fromarray(a[y : y + size[0], x : x + size[1]]).save(folder / f"g{i:04d}.png")
    return folder


@pytest.mark.slow
def test_killed_worker_tasks_are_rerun(tmp_path):
    src = _grays(tmp_path / "in", 16)
    with dask_cluster(2, nanny=False) as (address, workers):
        out = tmp_path / "out"
        result = {}
        t = threading.Thread(target=lambda: result.update(entries=denoise_folder(
            [src], out, scheduler=address, sigma=20 / 255, progress=False, report=tmp_path / "r.json")))
        t.start()
        manifest = out / ".denoise-manifest.jsonl"
        deadline = time.time() + 180
        while time.time() < deadline and (not manifest.exists() or len(manifest.read_text().splitlines()) < 2):
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_150_megapixel_image_stays_within_worker_memory(tmp_path):
    # a small, fast model: this test is about memory, not quality
    arch = denoise.Architecture(patch=8, context=2, hidden=(16,), noise_input=True)
    model = tmp_path / "fast.npz"
    modelfile.save_model(denoise.Autoencoder(arch, meta={"noise": "gaussian:0-50", "stride": 8}), model)
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


@pytest.mark.parametrize("bad, match", [(dict(ensemble=3), "ensemble must be one of"), (dict(stride=2.0), "stride must be an integer"),
                                        (dict(stride=0), "stride must be an integer"), (dict(stride=99), "patch size")])
def test_bad_settings_fail_before_any_cluster_starts(photos, tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        denoise_folder([photos], tmp_path / "out", progress=False, **bad)
    assert not (tmp_path / "out").exists()


def test_an_input_replaced_while_in_flight_is_redone_by_the_next_run(client, tmp_path, monkeypatch):
    # the manifest keys an output to the input as it was read, not as it is when the output is written
    from denoise.folders import runner

    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    old, new = (rng.integers(0, 256, (40, 48), dtype=np.uint8) for _ in range(2))
    Image.fromarray(old).save(src / "a.png")
    real = runner.Runner._submit

    def submit_then_replace(self, img, last=False):
        real(self, img, last)  # its bytes are read and on their way
        Image.fromarray(new).save(src / "a.png")
        os.utime(src / "a.png", ns=(time.time_ns() + 10**9,) * 2)

    monkeypatch.setattr(runner.Runner, "_submit", submit_then_replace)
    first = denoise_folder([src], tmp_path / "out", sigma=0.1, client=client, progress=False)
    assert first[0]["status"] == "done" and "input changed while it was being denoised" in first[0]["note"]
    monkeypatch.setattr(runner.Runner, "_submit", real)
    second = denoise_folder([src], tmp_path / "out", sigma=0.1, client=client, progress=False)
    assert second[0]["status"] == "done", second
    got, _ = imagefile.read_image(tmp_path / "out" / "a.png")
    np.testing.assert_array_equal(got, denoise.denoise_image(modelfile.load_model("default"), new, 0.1))


def test_16_bit_colour_stays_16_bit_through_a_run(client, tmp_path, default_model):
    src = tmp_path / "in"
    src.mkdir()
    rgb, _ = imagefile.read_image(SAMPLES / "honey_bee.jpg")
    deep = rgb[:64, :80].astype(np.uint16) * 257 + np.random.default_rng(0).integers(0, 257, (64, 80, 3)).astype(np.uint16)
    imagefile.write_image(src / "deep.png", deep)
    imagefile.write_image(src / "deep.tif", deep)
    entries = denoise_folder([src], tmp_path / "out", sigma=0.05, client=client, progress=False)
    assert [e["status"] for e in entries] == ["done", "done"], entries
    expected = denoise.denoise_image(default_model, deep, 0.05)
    assert expected.dtype == np.uint16 and len(np.unique(expected % 257)) > 1  # finer than 8 bits
    for name in ("deep.png", "deep.tif"):
        got, _ = imagefile.read_image(tmp_path / "out" / name)
        np.testing.assert_array_equal(got, expected)


def test_file_names_up_to_the_systems_limit_are_denoised(client, tmp_path):
    # the temporary name beside an output must fit the 255-byte limit too
    src = tmp_path / "in"
    src.mkdir()
    name = "n" * 251 + ".png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24), dtype=np.uint8)).save(src / name)
    entries = denoise_folder([src], tmp_path / "out", sigma=0.1, client=client, progress=False)
    assert [e["status"] for e in entries] == ["done"], entries
    assert (tmp_path / "out" / name).is_file()
