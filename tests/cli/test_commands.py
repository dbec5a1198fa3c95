import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import denoise
from denoise import imagefile, modelfile
from denoise.cli import main
from denoise.metrics import psnr

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


@pytest.fixture
def folder(tmp_path):
    """Noisy crops of two sample photos (gray and colour)."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    clean = {}
    for name in ("dogs_gray.png", "citrus.jpg"):
        a, _ = imagefile.read_image(SAMPLES / name)
        a = a[:64, :80]
        clean[name] = a
        n = np.clip(a + rng.normal(0, 25, a.shape), 0, 255).astype(np.uint8)
        Image.fromarray(n).save(src / Path(name).with_suffix(".png"))
    return src, clean


def test_run_end_to_end(folder, tmp_path, capsys):
    src, clean = folder
    out = tmp_path / "out"
    (src / "broken.png").write_text("not an image")
    report = tmp_path / "r.json"
    code = main(["run", str(src), "-o", str(out), "--sigma", "25", "--report", str(report), "--quiet"])
    assert code == 1  # the broken file failed, the rest completed
    r = json.loads(report.read_text())["files"]
    assert {Path(e["file"]).name: e["status"] for e in r} == {"broken.png": "failed", "citrus.png": "done", "dogs_gray.png": "done"}
    assert "broken.png" in capsys.readouterr().err
    assert not (out / "broken.png").exists()
    for name, a in clean.items():
        got, _ = imagefile.read_image(out / Path(name).with_suffix(".png"))
        noisy, _ = imagefile.read_image(src / Path(name).with_suffix(".png"))
        assert got.shape == a.shape and got.dtype == np.uint8
        assert psnr(a / 255.0, got / 255.0) > psnr(a / 255.0, noisy / 255.0) + 3


def test_run_usage_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", str(tmp_path), "-o", str(tmp_path / "o"), "--sigma", "loud"])
    assert e.value.code == 2
    assert main(["run", str(tmp_path), "-o", str(tmp_path / "o")]) == 2  # empty folder
    assert "no image files" in capsys.readouterr().err


def test_eval_prints_and_writes_json(folder, tmp_path, capsys):
    src, _ = folder
    j = tmp_path / "e.json"
    assert main(["eval", "--clean", str(src), "--noise", "gaussian:25", "--json", str(j)]) == 0
    text = capsys.readouterr().out
    assert "mean" in text and "citrus.png" in text
    res = json.loads(j.read_text())
    assert res["mean"]["psnr"] > res["mean"]["noisy_psnr"]
    assert main(["eval", "--clean", str(src), "--noise", "gaussian:25", "--ensemble", "2", "--json", str(j)]) == 0
    ens = json.loads(j.read_text())
    assert ens["ensemble"] == 2 and ens["mean"]["psnr"] != res["mean"]["psnr"]


@pytest.mark.slow
def test_train_then_run_with_the_new_model(folder, tmp_path, capsys):
    src, _ = folder
    model = tmp_path / "m.npz"
    args = ["train", "--clean", str(src), "--noise", "gaussian:25", "-o", str(model), "--patch", "4",
            "--context", "2", "--hidden", "32,16,32", "--steps", "20", "--epoch-steps", "10"]
    assert main(args) == 0
    assert "validation PSNR" in capsys.readouterr().out
    assert main(args) == 2  # refuses to overwrite without --resume
    assert main([*args[:-4], "--steps", "30", "--epoch-steps", "10", "--resume"]) == 0
    assert modelfile.load_model(model).meta["history"][-1][0] == 30
    out = tmp_path / "o"
    assert main(["run", str(src / "citrus.png"), "-o", str(out), "--model", str(model), "--quiet"]) == 0
    assert (out / "citrus.png").is_file()


def test_train_a_model_with_a_surround_and_neighbours(folder, tmp_path, capsys):
    src, _ = folder
    model = tmp_path / "m.npz"
    assert main(["train", "--clean", str(src), "--noise", "gaussian:25", "-o", str(model), "--patch", "4", "--context", "2",
                 "--hidden", "16,8,16", "--surround", "4", "--neighbours", "2", "--search", "4", "--steps", "10",
                 "--epoch-steps", "10"]) == 0
    arch = modelfile.load_model(model).arch
    assert (arch.surround, arch.neighbours, arch.search) == ((4,), 2, 4)
    assert main(["train", "--clean", str(src), "-o", str(tmp_path / "c.npz"), "--patch", "4", "--context", "2",
                 "--hidden", "8,4,8", "--channels", "3", "--colour", "opponent", "--steps", "2"]) == 2
    assert "a 3-channel model needs RGB training images" in capsys.readouterr().err  # the folder has a gray one
    assert main(["train", "--clean", str(src), "-o", str(tmp_path / "n.npz"), "--neighbours", "-1", "--steps", "1"]) == 2
    assert "neighbours must be" in capsys.readouterr().err


def test_train_a_model_given_the_estimated_noise_level(folder, tmp_path):
    src, _ = folder
    model = tmp_path / "m.npz"
    assert main(["train", "--clean", str(src), "--noise", "gaussian:5-30", "--condition", "estimate", "-o", str(model),
                 "--patch", "4", "--context", "2", "--hidden", "16,8,16", "--steps", "4", "--epoch-steps", "2"]) == 0
    m = modelfile.load_model(model)
    assert m.meta["condition"] == "estimate" and m.arch.noise_input
    assert "condition" not in modelfile.load_model("default").meta  # the level a model is given is the true one unless it says


def test_train_noisy_only_from_a_shipped_model_then_run(folder, tmp_path, capsys):
    src, _ = folder
    model = tmp_path / "mine.npz"
    args = ["train", "--noisy-only", str(src), "--init", "fast", "--noise", "gaussian:20", "-o", str(model),
            "--steps", "20", "--epoch-steps", "10", "--batch-size", "64"]
    assert main(args) == 0
    assert "self-supervised" in capsys.readouterr().out
    trained = modelfile.load_model(model)
    assert trained.arch == modelfile.load_model("fast").arch and trained.meta["history"][-1][0] == 20
    assert trained.meta["self_supervised"]["noise"] == "gaussian:20"
    assert trained.meta["provenance"]["init"] == "fast"
    out = tmp_path / "o"
    assert main(["run", str(src / "citrus.png"), "-o", str(out), "--model", str(model), "--quiet"]) == 0
    assert (out / "citrus.png").is_file()


@pytest.mark.parametrize("extra, message", [
    (["--noise", "camera:40"], "self-supervised training takes the noise as"),
    (["--val", "."], "--noisy-only validates on a strip"),
])
def test_train_noisy_only_refuses_what_it_cannot_use(folder, tmp_path, capsys, extra, message):
    src, _ = folder
    assert main(["train", "--noisy-only", str(src), "-o", str(tmp_path / "m.npz"), "--steps", "5", *extra]) == 2
    assert message in capsys.readouterr().err


def test_train_takes_clean_or_noisy_only_not_both(folder, tmp_path, capsys):
    src, _ = folder
    with pytest.raises(SystemExit):
        main(["train", "--clean", str(src), "--noisy-only", str(src), "-o", str(tmp_path / "m.npz"), "--steps", "5"])
    assert "not allowed with" in capsys.readouterr().err


def test_models_lists_default(capsys):
    assert main(["models"]) == 0
    assert "default:" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# reliability: bad files, crashes, interrupts (docs/reliability.md)

import os  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402


def _png_header(w: int, h: int) -> bytes:
    """A tiny PNG whose header declares w x h pixels."""

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _bad_files(folder: Path) -> set:
    rng = np.random.default_rng(0)
    good = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    (folder / "zero.png").write_bytes(b"")
    good.save(folder / "full.jpg", quality=90)
    data = (folder / "full.jpg").read_bytes()
    (folder / "full.jpg").unlink()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    good.save(folder / "full.png")
    data = (folder / "full.png").read_bytes()
    (folder / "full.png").unlink()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    (folder / "text.png").write_text("just some text\n")
    (folder / "page.jpg").write_text("<!doctype html><html><body>not found</body></html>")
    (folder / "empty_size.png").write_bytes(_png_header(0, 7))
    (folder / "bomb.png").write_bytes(_png_header(200_000, 200_000))
    Image.new("CMYK", (16, 16)).save(folder / "cmyk.jpg")
    Image.new("1", (16, 16)).save(folder / "bilevel.png")
    Image.fromarray(np.array([[np.nan, 1.0], [np.inf, 0.0]], np.float32)).save(folder / "nan.tif")
    os.symlink("loop_b.png", folder / "loop_a.png")
    os.symlink("loop_a.png", folder / "loop_b.png")
    return {"zero.png", "truncated.jpg", "truncated.png", "text.png", "page.jpg", "empty_size.png", "bomb.png",
            "cmyk.jpg", "bilevel.png", "nan.tif", "loop_a.png", "loop_b.png"}


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "denoise.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)


@pytest.mark.slow
def test_bad_files_are_listed_with_reasons_and_good_ones_done(folder, tmp_path):
    src, _ = folder
    bad = _bad_files(src)
    out, report = tmp_path / "out", tmp_path / "report.json"
    r = _cli("run", src, "-o", out, "--workers", "1", "--report", report)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    files = {Path(e["file"]).name: e for e in json.loads(report.read_text())["files"]}
    assert {n for n, e in files.items() if e["status"] == "failed"} == bad
    assert {n for n, e in files.items() if e["status"] == "done"} == {"citrus.png", "dogs_gray.png"}
    for name in bad:
        reason = files[name]["reason"]
        assert reason and "\n" not in reason, (name, reason)
        assert f"failed: {src / name}: " in r.stderr
        assert not (out / name).exists()
    assert "bomb" in files["bomb.png"]["reason"] and "mode" in files["cmyk.jpg"]["reason"]
    assert "NaN" in files["nan.tif"]["reason"]
    v = _cli("run", src / "text.png", "-o", tmp_path / "out2", "--workers", "1", "--verbose")
    assert v.returncode == 1 and "Traceback" in v.stderr


def _without_root_file_access():
    """In the child: drop the capabilities that let root read any file (from the
    bounding set, so exec cannot bring them back)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.slow
def test_unreadable_file_is_reported(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.new("L", (32, 32), 100).save(src / "ok.png")
    Image.new("L", (32, 32), 100).save(src / "secret.png")
    os.chmod(src / "secret.png", 0o000)
    try:
        r = _cli("run", src, "-o", tmp_path / "out", "--workers", "1", "--report", tmp_path / "r.json",
                 preexec_fn=_without_root_file_access if os.geteuid() == 0 else None)
    finally:
        os.chmod(src / "secret.png", 0o644)
    assert r.returncode == 1, r.stderr
    files = {Path(e["file"]).name: e for e in json.loads((tmp_path / "r.json").read_text())["files"]}
    assert files["ok.png"]["status"] == "done"
    assert files["secret.png"]["status"] == "failed" and "Permission denied" in files["secret.png"]["reason"]
    assert not (tmp_path / "out" / "secret.png").exists()


def _many(folder: Path, n: int) -> Path:
    a, _ = imagefile.read_image(SAMPLES / "mountain_trail_gray.png")
    folder.mkdir()
    for i in range(n):  # 320x400 crops: big enough that a run takes seconds, so it can be interrupted midway
        y, x = (i * 37) % 160, (i * 53) % 240
        Image.fromarray(a[y : y + 320, x : x + 400]).save(folder / f"img{i:03d}.png")
    return folder


def _wait_for_outputs(out: Path, n: int, timeout: float = 120) -> None:
    """Until the run writing to ``out`` has recorded ``n`` finished files."""
    manifest = out / ".denoise-manifest.jsonl"
    deadline = time.time() + timeout
    while time.time() < deadline and (not manifest.exists() or len(manifest.read_text().splitlines()) < n):
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_then_rerun_gives_the_uninterrupted_result(tmp_path):
    src = _many(tmp_path / "in", 24)
    ref = tmp_path / "ref"
    assert _cli("run", src, "-o", ref, "--workers", "1", "--sigma", "20").returncode == 0
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "denoise.cli", "run", str(src), "-o", str(out), "--workers", "1",
                          "--sigma", "20"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for_outputs(out, 3)
    os.killpg(p.pid, signal.SIGKILL)  # the command and its local cluster, all at once
    p.wait()
    finished = [f for f in out.iterdir() if not f.name.startswith(".")]
    assert 3 <= len(finished) < 24
    for f in finished:  # nothing partial under a final name
        assert f.read_bytes() == (ref / f.name).read_bytes()
    r = _cli("run", src, "-o", out, "--workers", "1", "--sigma", "20")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(p.name for p in ref.iterdir() if not p.name.startswith("."))
    for f in ref.iterdir():
        if not f.name.startswith("."):
            assert (out / f.name).read_bytes() == f.read_bytes(), f.name
    assert not list(out.glob(".*.part"))


@pytest.mark.slow
def test_ctrl_c_stops_promptly_and_resumes(tmp_path):
    src = _many(tmp_path / "in", 24)
    out = tmp_path / "out"
    # as from a terminal: a suite started in the background (`cmd &` in a script) passes its children SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler; the CLI would rightly ignore Ctrl-C
    p = subprocess.Popen([sys.executable, "-m", "denoise.cli", "run", str(src), "-o", str(out), "--workers", "1",
                          "--sigma", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for_outputs(out, 2)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert time.time() - t0 < 20 and p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    r = _cli("run", src, "-o", out, "--workers", "1", "--sigma", "20", "--report", tmp_path / "r.json")
    assert r.returncode == 0
    summary = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert summary["skipped"] >= 2 and summary["skipped"] + summary["done"] == 24


def test_each_command_leaves_the_logger_as_it_found_it(capsys):
    log = logging.getLogger("denoise")
    before = (list(log.handlers), log.level, log.propagate)
    assert main(["models"]) == 0
    assert main(["-v", "models"]) == 0
    assert (list(log.handlers), log.level, log.propagate) == before


def _start_cli(*args):
    """The CLI in a session of its own, SIGINT at its default, as from a terminal."""
    return subprocess.Popen([sys.executable, "-m", "denoise.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_stops_run_quietly(tmp_path):
    # a terminal's Ctrl-C reaches every process of the group, the Dask workers too
    src, out = _many(tmp_path / "in", 24), tmp_path / "out"
    p = _start_cli("run", src, "-o", out, "--workers", "2", "--sigma", "20")
    _wait_for_outputs(out, 2)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err and "KeyboardInterrupt" not in err, err


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "eval"])
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_train_and_eval_stop_cleanly_on_ctrl_c_and_sigterm(tmp_path, command, sig, code):
    src = _many(tmp_path / "in", 12)
    args = {"train": ["--clean", src, "-o", tmp_path / "m.npz", "--steps", "100000", "--epoch-steps", "20",
                      "--hidden", "64", "--patch", "4"],
            "eval": ["--clean", src, "--ensemble", "8"]}[command]
    p = _start_cli(command, *args)
    if command == "train":  # the first checkpoint: training steps are running
        deadline = time.time() + 120
        while time.time() < deadline and not (tmp_path / "m.npz").exists():
            time.sleep(0.1)
    time.sleep(3.0)  # inside the work: compiled steps, or denoising the first images
    os.killpg(p.pid, sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err[-3000:]
    assert err.strip().endswith("interrupted") and "Traceback" not in err, err[-3000:]


@pytest.mark.slow
def test_sigterm_stops_run_and_the_rerun_resumes(tmp_path):
    src, out = _many(tmp_path / "in", 24), tmp_path / "out"
    p = _start_cli("run", src, "-o", out, "--workers", "1", "--sigma", "20")
    _wait_for_outputs(out, 2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and "interrupted" in err and "Traceback" not in err, err
    r = _cli("run", src, "-o", out, "--workers", "1", "--sigma", "20", "--report", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert summary["skipped"] >= 2 and summary["skipped"] + summary["done"] == 24


def test_version_and_the_quality_range():
    r = _cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"denoise {denoise.__version__}"
    r = _cli("run", "x.png", "-o", "out", "--jpeg-quality", "0")
    assert r.returncode == 2 and "--jpeg-quality must be an integer from 1 to 100; got '0'" in r.stderr
    assert "choose from" not in r.stderr


@pytest.mark.slow
def test_a_missing_input_is_a_usage_error_in_every_command(tmp_path):
    missing = tmp_path / "nope"
    for args in (["run", missing, "-o", tmp_path / "out"], ["train", "--clean", missing, "-o", tmp_path / "m.npz",
                 "--steps", "1"], ["eval", "--clean", missing]):
        r = _cli(*args)
        assert r.returncode == 2 and str(missing) in r.stderr, (args, r.stderr)


@pytest.mark.parametrize("report", ["missing_folder/r.json", "a_folder"])
def test_an_unwritable_report_is_found_before_any_work(tmp_path, report):
    src = _many(tmp_path / "in", 2)
    (tmp_path / "a_folder").mkdir()
    r = _cli("run", src, "-o", tmp_path / "out", "--report", tmp_path / report, "--workers", "1")
    assert r.returncode == 2 and "report" in r.stderr, r.stderr
    assert not [p for p in (tmp_path / "out").glob("*.png")]  # nothing was denoised


def test_an_output_folder_inside_a_file_is_found_before_any_work(tmp_path):
    src = _many(tmp_path / "in", 2)
    (tmp_path / "file").write_text("x")
    r = _cli("run", src, "-o", tmp_path / "file" / "out", "--workers", "1")
    assert r.returncode == 2 and "cannot create the output folder" in r.stderr, r.stderr


@pytest.mark.slow
def test_run_writes_a_before_after_preview(tmp_path):
    src = _many(tmp_path / "in", 3)
    r = _cli("run", src, "-o", tmp_path / "out", "--workers", "1", "--sigma", "20", "--preview", tmp_path / "sheet.png")
    assert r.returncode == 0, r.stderr
    assert "wrote a before/after sheet of 3 file(s)" in r.stderr
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.size == (256 * 2 + 4, 3 * (256 + 18 + 4))


def test_camera_with_a_model_that_knows_no_camera_noise_is_refused(folder, tmp_path, capsys):
    src, _ = folder
    assert main(["run", str(src), "-o", str(tmp_path / "o"), "--camera", "--quiet"]) == 2
    assert "not trained on camera noise" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_strength_out_of_range_is_a_usage_error():
    r = _cli("run", "x.png", "-o", "out", "--strength", "0")
    assert r.returncode == 2 and "strength must be a number from 0.1 to 10" in r.stderr, r.stderr


def test_a_reader_that_stops_early_gets_no_error():
    # `denoise models | head -1`: the pipe closes while the command still writes
    p = subprocess.Popen([sys.executable, "-m", "denoise.cli", "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 0 and "Broken pipe" not in err and "Traceback" not in err, err
