from pathlib import Path

import fsspec
import pytest

from denoise import remote


def test_urls_and_local_paths_are_told_apart():
    assert remote.is_url("s3://bucket/key") and remote.is_url("memory://x")
    assert not remote.is_url("file:///tmp/x") and not remote.is_url("/tmp/x") and not remote.is_url(Path("a"))
    assert remote.local_path("file:///tmp/x") == Path("/tmp/x")
    assert remote.location("file:///tmp/x") == Path("/tmp/x") and remote.location("s3://b/k") == "s3://b/k"


def test_join_and_parent_keep_the_kind_of_location():
    assert remote.join("s3://b/out/", "sub", "/a.png") == "s3://b/out/sub/a.png"
    assert remote.parent("s3://b/out/a.png") == "s3://b/out"
    assert remote.join(Path("/o"), "a.png") == Path("/o/a.png") and remote.parent("/o/a.png") == Path("/o")


def test_canonical_spells_a_url_as_its_listing_does():
    assert remote.canonical("memory://t-canon/out/") == "memory:///t-canon/out"
    assert remote.canonical("file:///tmp/o") == Path("/tmp/o")


def test_write_bytes_writes_whole_objects_and_local_files(tmp_path):
    fs = fsspec.filesystem("memory")
    written = remote.write_bytes("memory://t-write/a.bin", b"abc")
    assert written["bytes"] == 3 and fs.cat_file("/t-write/a.bin") == b"abc"
    assert remote.read_bytes("memory://t-write/a.bin") == b"abc"
    fs.rm("/t-write", recursive=True)
    assert remote.write_bytes(tmp_path / "b.bin", b"xy") == {"bytes": 2}
    assert (tmp_path / "b.bin").read_bytes() == b"xy" and [p.name for p in tmp_path.iterdir()] == ["b.bin"]


def test_a_file_system_without_whole_object_writes_gets_a_temporary_name_then_a_rename(tmp_path, monkeypatch):
    # file:// through fsspec, treated as a plain remote file system: write to a temporary name, then move
    calls = []
    fs = fsspec.filesystem("file")
    real_mv = fs.mv
    monkeypatch.setattr(fs.__class__, "mv", lambda self, a, b, **k: calls.append((a, b)) or real_mv(a, b, **k))
    monkeypatch.setattr(remote, "is_url", lambda w: isinstance(w, str) and "://" in w)
    remote.write_bytes(f"local://{tmp_path}/c.bin", b"data")
    assert (tmp_path / "c.bin").read_bytes() == b"data" and len(calls) == 1
    assert calls[0][0].endswith(".part") and calls[0][1].endswith("/c.bin")
    assert [p.name for p in tmp_path.iterdir()] == ["c.bin"]


def test_object_tags_and_signatures_come_from_listings():
    assert remote.object_tag({"ETag": '"abc"'}) == {"etag": "abc"} and remote.object_tag({}) == {}
    assert remote.signature({"size": 5, "ETag": '"t"'}) == (5, "t")
    assert remote.signature({"size": 5, "LastModified": 7}) == (5, "7")


def test_an_unknown_protocol_or_missing_package_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="cannot open nosuch://x"):
        remote.filesystem("nosuch://x")

    def missing(*a, **k):
        raise ImportError("Install adlfs to access Azure Datalake Gen2 and Azure Blob Storage")

    monkeypatch.setattr(fsspec.core, "url_to_fs", missing)
    with pytest.raises(ImportError, match=r"pip install 'denoise\[azure\]'"):
        remote.filesystem("az://container/x")
