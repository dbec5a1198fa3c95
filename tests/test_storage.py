import os
import stat

import pytest

from denoise import storage


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):
        storage.atomic_write(target, object())  # fails while writing
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path, umask):
    # the umask is the process's at the time of the call (none is read at import)
    old = os.umask(umask)
    try:
        storage.atomic_write(tmp_path / "a.bin", b"x")
        (tmp_path / "b.bin").write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == stat.S_IMODE((tmp_path / "b.bin").stat().st_mode)


@pytest.mark.parametrize("name", ["a" * 255, "é" * 125 + ".png", "x" * 241 + ".png"])
def test_atomic_write_takes_names_up_to_the_file_systems_limit(tmp_path, name):
    storage.atomic_write(tmp_path / name, b"data")
    assert (tmp_path / name).read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == [name]
