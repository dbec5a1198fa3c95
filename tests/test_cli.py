import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoise import io
from denoise.cli import main
from denoise.metrics import psnr

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"


@pytest.fixture
def folder(tmp_path):
    """Noisy crops of two sample photos (gray and colour)."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    clean = {}
    for name in ("dogs_gray.png", "citrus.jpg"):
        a, _ = io.read_image(SAMPLES / name)
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
        got, _ = io.read_image(out / Path(name).with_suffix(".png"))
        noisy, _ = io.read_image(src / Path(name).with_suffix(".png"))
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


def test_train_then_run_with_the_new_model(folder, tmp_path, capsys):
    src, _ = folder
    model = tmp_path / "m.npz"
    args = ["train", "--clean", str(src), "--noise", "gaussian:25", "-o", str(model), "--patch", "4",
            "--context", "2", "--hidden", "32,16,32", "--steps", "20", "--epoch-steps", "10"]
    assert main(args) == 0
    assert "validation PSNR" in capsys.readouterr().out
    assert main(args) == 2  # refuses to overwrite without --resume
    assert main([*args[:-4], "--steps", "30", "--epoch-steps", "10", "--resume"]) == 0
    assert io.load_model(model).meta["history"][-1][0] == 30
    out = tmp_path / "o"
    assert main(["run", str(src / "citrus.png"), "-o", str(out), "--model", str(model), "--quiet"]) == 0
    assert (out / "citrus.png").is_file()


def test_models_lists_default(capsys):
    assert main(["models"]) == 0
    assert "default:" in capsys.readouterr().out
