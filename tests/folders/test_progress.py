import io

from denoise.folders.progress import Progress


def test_the_bar_counts_work_so_its_rate_holds_while_files_go_largest_first():
    work = {"big": 8_000_000, "mid": 2_000_000, "small": 1_000_000, "unreadable": -1}
    p = Progress(work, files=5, done=1, show=False)
    assert p.total == 11.0
    p.file_done("big")
    assert p.megapixels == 8.0 and p.done == 2  # one file of four, but most of the work
    p.file_done("unreadable")
    assert p.megapixels == 8.0 and p.done == 3
    p.file_done("small")
    p.file_done("mid")
    assert p.megapixels == 11.0 and p.done == 5
    p.close()


def test_the_bar_shows_megapixels_and_files():
    stream = io.StringIO()
    p = Progress({"a": 3_000_000}, files=1, done=0, show=True, stream=stream)
    p.file_done("a")
    p.bar.refresh()
    assert "3.0/3.0 MP" in stream.getvalue() and "1/1 files" in stream.getvalue()
    p.close()
