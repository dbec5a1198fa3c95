
from PIL import Image

from denoise.folders.plan import plan


def _img(path, size=(12, 10), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, 128).save(path)
    return path


def test_plan_mirrors_folders_and_skips_the_output_inside_input(tmp_path):
    src = tmp_path / "in"
    _img(src / "a.png")
    _img(src / "sub" / "b.jpg", mode="RGB")
    (src / "notes.txt").write_text("x")
    out = src / "clean"
    _img(out / "old.png")  # an earlier output inside the input folder
    jobs, problems = plan([src], out, recursive=True)
    assert sorted(str(j.dst.relative_to(out)) for j in jobs) == ["a.png", "sub/b.jpg"]
    assert problems == []
    flat, _ = plan([src], out)
    assert [j.src.name for j in flat] == ["a.png"]


def test_plan_never_maps_two_inputs_to_one_output(tmp_path):
    _img(tmp_path / "a.png")
    _img(tmp_path / "a.jpg", mode="RGB")
    jobs, problems = plan([tmp_path], tmp_path / "out", fmt="png")
    dsts = [j.dst.name for j in jobs]
    assert len(set(dsts)) == 2 and "a.png" in dsts and problems == []


def test_plan_reports_missing_inputs(tmp_path):
    jobs, problems = plan([tmp_path / "nope.png"], tmp_path / "out")
    assert jobs == [] and problems[0][1] == "no such file or folder"
