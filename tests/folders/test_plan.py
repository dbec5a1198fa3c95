import os

import pytest
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


def test_no_output_lands_on_any_input(tmp_path):
    # out/a.png is itself an input: the other a.png may not be written over it
    _img(tmp_path / "in" / "a.png")
    _img(tmp_path / "out" / "a.png")
    jobs, problems = plan([tmp_path / "in" / "a.png", tmp_path / "out" / "a.png"], tmp_path / "out")
    assert jobs == []
    assert [why for _, why in problems] == [f"output {tmp_path / 'out' / 'a.png'} would overwrite an input; "
                                            "choose another output folder"] * 2


def test_a_fifo_named_like_an_image_is_skipped_unopened(tmp_path):
    _img(tmp_path / "in" / "a.png")
    os.mkfifo(tmp_path / "in" / "b.png")
    os.mkfifo(tmp_path / "c.png")
    jobs, problems = plan([tmp_path / "in", tmp_path / "c.png"], tmp_path / "out")
    assert [j.src.name for j in jobs] == ["a.png"]
    assert problems == [(str(tmp_path / "in" / "b.png"), "not a regular file (a FIFO, socket or device is never opened)"),
                        (str(tmp_path / "c.png"), "not a regular file (a FIFO, socket or device is never opened)")]


@pytest.mark.parametrize("inp, out", [("photos", "photos"), ("top/raw", "top"), ("top/raw", "top/raw/..")])
def test_an_output_folder_that_is_or_holds_an_input_folder_is_refused(tmp_path, inp, out):
    _img(tmp_path / inp / "a.png")
    with pytest.raises(ValueError, match="is the input folder .* or contains it; choose an output folder outside"):
        plan([tmp_path / inp], tmp_path / out)
