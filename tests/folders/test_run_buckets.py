"""Folder runs on object storage: a local S3 server (moto), reached with s3fs.

Workers read and write the bucket themselves; outputs must equal a local run
byte for byte, and a killed client or worker must lose nothing.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoise import imagefile
from denoise.folders import denoise_folder
from denoise.folders.lock import LOCK
from denoise.folders.manifest import MANIFEST_PREFIX

from .conftest import dask_cluster

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"
SIGMA = 20 / 255


def _grays(folder: Path, n: int, size=(96, 120)) -> Path:
    a, _ = imagefile.read_image(SAMPLES / "mountain_trail_gray.png")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        y, x = (i * 31) % (a.shape[0] - size[0]), (i * 47) % (a.shape[1] - size[1])
        Image.fromarray(a[y : y + size[0], x : x + size[1]]).save(folder / f"g{i:04d}.png")
    rgb, _ = imagefile.read_image(SAMPLES / "honey_bee.jpg")
    Image.fromarray(rgb[:100, :90]).save(folder / "bee.jpg", quality=92)
    return folder


def _fs(options):
    import s3fs

    return s3fs.S3FileSystem(**options)


@pytest.fixture
def bucket(s3, request):
    """A fresh bucket named for the test; yields (name, s3fs file system)."""
    fs = _fs(s3)
    name = request.node.name.replace("_", "-").lower()[:50].strip("-")
    fs.mkdir(name)
    yield name, fs
    fs.rm(name, recursive=True)


def _upload(fs, folder: Path, prefix: str) -> dict:
    sent = {}
    for p in sorted(folder.iterdir()):
        fs.pipe_file(f"{prefix}/{p.name}", p.read_bytes())
        sent[p.name] = p.read_bytes()
    return sent


def _outputs(fs, prefix: str) -> dict:
    fs.invalidate_cache()  # others write the bucket meanwhile
    try:
        # detail=True, files only: a listing that races the first write can name the prefix itself
        found = [p for p, info in fs.find(prefix, detail=True).items() if info["type"] == "file"]
    except FileNotFoundError:
        return {}
    names = [p for p in found if f"/{MANIFEST_PREFIX}/" not in p and "/.denoise-probe-" not in p
             and not p.endswith(f"/{LOCK}")]
    return {p.rsplit("/", 1)[-1]: blob for p, blob in fs.cat(names).items()} if names else {}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The folder and its local run's outputs."""
    tmp = tmp_path_factory.mktemp("ref")
    src = _grays(tmp / "in", 12)
    denoise_folder([src], tmp / "out", sigma=SIGMA, workers=1, progress=False)
    return src, {p.name: p.read_bytes() for p in (tmp / "out").iterdir() if not p.name.startswith(".")}


@pytest.mark.slow
def test_bucket_to_bucket_equals_a_local_run_and_resumes(s3, bucket, reference):
    name, fs = bucket
    src, expected = reference
    sent = _upload(fs, src, f"{name}/in")
    entries = denoise_folder([f"s3://{name}/in"], f"s3://{name}/out", sigma=SIGMA, workers=2, progress=False,
                             storage_options=s3, report=f"s3://{name}/report.json")
    assert {e["status"] for e in entries} == {"done"} and len(entries) == len(expected)
    assert _outputs(fs, f"{name}/out") == expected  # byte for byte
    assert {p.rsplit("/", 1)[-1]: fs.cat_file(p) for p in fs.find(f"{name}/in")} == sent  # inputs untouched
    report = json.loads(fs.cat_file(f"{name}/report.json"))
    assert report["summary"] == {"done": len(expected), "skipped": 0, "failed": 0}
    # a rerun reads the manifest objects and skips everything; a changed input is redone
    fs.pipe_file(f"{name}/in/g0003.png", (src / "g0004.png").read_bytes())
    again = denoise_folder([f"s3://{name}/in"], f"s3://{name}/out", sigma=SIGMA, workers=1, progress=False,
                           storage_options=s3)
    status = {e["file"].rsplit("/", 1)[-1]: e["status"] for e in again}
    assert status.pop("g0003.png") == "done" and set(status.values()) == {"skipped"}
    assert fs.cat_file(f"{name}/out/g0003.png") == expected["g0004.png"]


@pytest.mark.slow
def test_output_prefix_inside_the_input_is_never_read(s3, bucket, reference):
    name, fs = bucket
    src, expected = reference
    _upload(fs, src, f"{name}/data")
    with pytest.raises(ValueError, match="inside"):
        denoise_folder([f"s3://{name}/data"], f"s3://{name}/data/out", sigma=SIGMA, workers=1, progress=False,
                       storage_options=s3)
    # a sibling prefix works; the output is not listed as input on the rerun
    denoise_folder([f"s3://{name}/data"], f"s3://{name}/data-out", sigma=SIGMA, workers=1, progress=False,
                   storage_options=s3)
    assert _outputs(fs, f"{name}/data-out") == expected


@pytest.mark.slow
def test_an_external_cluster_reads_and_writes_the_bucket_and_survives_a_killed_worker(s3, bucket, reference, tmp_path):
    name, fs = bucket
    src, expected = reference
    _upload(fs, src, f"{name}/in")
    with dask_cluster(2, nanny=False) as (address, workers):
        result = {}
        run = threading.Thread(target=lambda: result.update(entries=denoise_folder(
            [f"s3://{name}/in"], f"s3://{name}/out", scheduler=address, sigma=SIGMA, progress=False,
            storage_options=s3)))
        run.start()
        deadline = time.time() + 180
        while time.time() < deadline and len(_outputs(fs, f"{name}/out")) < 2:
            time.sleep(0.05)
        workers[0].kill()  # SIGKILL, mid-run
        run.join(timeout=300)
    assert {e["status"] for e in result["entries"]} == {"done"}, result["entries"]
    assert _outputs(fs, f"{name}/out") == expected


@pytest.mark.slow
def test_a_client_killed_mid_run_resumes_to_complete_equal_outputs(s3, bucket, tmp_path):
    name, fs = bucket
    src = _grays(tmp_path / "in", 60, size=(200, 240))
    _upload(fs, src, f"{name}/in")
    ref = tmp_path / "ref"
    denoise_folder([src], ref, sigma=SIGMA, workers=1, progress=False)
    expected = {p.name: p.read_bytes() for p in ref.iterdir() if not p.name.startswith(".")}
    args = ["run", f"s3://{name}/in", "-o", f"s3://{name}/out", "--sigma", "20", "--workers", "2", "--quiet",
            "--storage-options", json.dumps(s3)]
    # the CLI, flushing manifest records more often than its default, so that the kill falls between flushes
    cmd = [sys.executable, "-c", "import sys; import denoise.folders.manifest as m; m.FLUSH_SECONDS = 0.3; "
           "from denoise.cli import main; sys.exit(main(sys.argv[1:]))", *args]
    # the client and its local workers in their own process group, killed together as a crash would
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    # until the client has written its first records
    while time.time() < deadline and not fs.exists(f"{name}/out/{MANIFEST_PREFIX}") and proc.poll() is None:
        time.sleep(0.05)
        fs.invalidate_cache()
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    partial = _outputs(fs, f"{name}/out")
    assert 0 < len(partial) < len(expected), (len(partial), time.time() - deadline)
    assert all(partial[k] == expected[k] for k in partial)  # what is there is whole
    r = subprocess.run(cmd + ["--report", f"s3://{name}/r.json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _outputs(fs, f"{name}/out") == expected
    report = json.loads(fs.cat_file(f"{name}/r.json"))
    assert report["summary"]["done"] + report["summary"]["skipped"] == len(expected)
    assert report["summary"]["skipped"] > 0  # the manifest objects written before the kill were kept


def test_a_missing_file_system_package_names_the_extra(monkeypatch, tmp_path):
    import fsspec.registry

    def missing(*a, **k):
        raise ImportError("Install gcsfs to access Google Storage")

    monkeypatch.setattr(fsspec.core, "url_to_fs", missing)
    with pytest.raises(ImportError, match=r"denoise\[gcs\]"):
        denoise_folder(["gs://bucket/in"], tmp_path / "out", progress=False)


def test_memory_urls_go_through_the_client(tmp_path):
    # memory:// lives in this process: workers cannot see it, so the client reads and writes
    import fsspec

    fs = fsspec.filesystem("memory")
    rng = np.random.default_rng(1)
    import io

    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (40, 50), dtype=np.uint8)).save(buf, format="PNG")
    fs.pipe_file("/t-mem/in/a.png", buf.getvalue())
    entries = denoise_folder(["memory://t-mem/in"], "memory://t-mem/out", sigma=SIGMA, workers=1, progress=False)
    assert [e["status"] for e in entries] == ["done"]
    local = tmp_path / "a.png"
    local.write_bytes(buf.getvalue())
    denoise_folder([local], tmp_path / "out", sigma=SIGMA, workers=1, progress=False)
    assert fs.cat_file("/t-mem/out/a.png") == (tmp_path / "out" / "a.png").read_bytes()
    fs.rm("/t-mem", recursive=True)
