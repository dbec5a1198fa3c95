import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoise import load_model
from denoise.folders import adaptation as A
from denoise.folders import denoise_folder
from denoise.folders.plan import Job


def _jobs(tmp_path: Path, n: int) -> list[Job]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i in range(n):
        p = tmp_path / f"f{i:03d}.png"
        p.write_bytes(b"x" * (i + 1))
        jobs.append(Job(p, tmp_path / "out" / p.name))
    return jobs


def test_the_sample_is_spread_over_the_listing_and_capped(tmp_path):
    jobs = _jobs(tmp_path, 100)
    picked = A.sample(list(reversed(jobs)))
    assert len(picked) == A.SAMPLE_FILES
    names = [j.name for j in picked]
    assert names == sorted(names) and names[0] == jobs[0].name and names[-1] == jobs[-1].name
    assert A.sample(jobs[:5]) == jobs[:5]


def test_the_key_changes_with_whatever_the_adapted_model_depends_on(tmp_path):
    jobs = _jobs(tmp_path, 3)
    key = A.adaptation_key("base", 60, None, jobs)
    assert key == A.adaptation_key("base", 60.0, None, list(jobs))
    assert len({key, A.adaptation_key("other", 60, None, jobs), A.adaptation_key("base", 30, None, jobs),
                A.adaptation_key("base", 60, 0.1, jobs), A.adaptation_key("base", 60, None, jobs[:2])}) == 5
    jobs[0].src.write_bytes(b"changed content")  # a sampled file changed: its signature too
    assert A.adaptation_key("base", 60, None, jobs) != key


def test_a_centre_crop_bounds_the_pixels():
    a = np.arange(400 * 300).reshape(400, 300)
    c = A._centre_crop(a, 10_000)
    assert c.size <= 10_000 and c.shape == (115, 86) and c[0, 0] == a[142, 107]
    assert A._centre_crop(a, a.size) is a


@pytest.fixture
def documents(tmp_path):
    """Noisy bar patterns, unlike photos, in a folder."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:96, :112]
    for i in range(3):
        clean = np.where(np.sin((xx * np.cos(i) + yy * np.sin(i)) / (4 + i)) > 0, 190, 60)
        Image.fromarray(np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)).save(src / f"d{i}.png")
    return src


@pytest.mark.slow
def test_a_folder_adapts_once_writes_the_model_and_resumes_with_it(client, documents, tmp_path):
    out = tmp_path / "out"
    report = tmp_path / "r.json"
    first = denoise_folder([documents], out, sigma=25 / 255, adapt=10, client=client, progress=False, report=report)
    assert [e["status"] for e in first] == ["done"] * 3
    model_file = out / A.ADAPTED
    adapted = load_model(model_file)
    info = adapted.meta["adaptation"]
    assert info["used"] and info["loss_after"] < info["loss_before"]
    assert sorted(info["sample"]) == sorted(str(p) for p in documents.iterdir())
    doc = json.loads(report.read_text())
    assert doc["adaptation"]["key"] == info["key"] and doc["model_sha256"] != ""
    outputs = {p.name: p.read_bytes() for p in out.glob("*.png")}
    written = model_file.read_bytes()
    # the same run again: the adapted model is reused, every output skipped
    again = denoise_folder([documents], out, sigma=25 / 255, adapt=10, client=client, progress=False)
    assert [e["status"] for e in again] == ["skipped"] * 3
    assert model_file.read_bytes() == written
    # without adaptation the outputs are another model's: redone
    plain = denoise_folder([documents], out, sigma=25 / 255, client=client, progress=False)
    assert [e["status"] for e in plain] == ["done"] * 3
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} != outputs
    # a changed adaptation adapts again and redoes the outputs
    redo = denoise_folder([documents], out, sigma=25 / 255, adapt=3, client=client, progress=False)
    assert [e["status"] for e in redo] == ["done"] * 3
    assert load_model(model_file).meta["adaptation"]["key"] != info["key"]


def test_adapt_must_be_a_positive_number_of_seconds(documents, tmp_path):
    with pytest.raises(ValueError, match="seconds"):
        denoise_folder([documents], tmp_path / "out", adapt=-1, progress=False)
