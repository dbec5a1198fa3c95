import json
import os
import socket
import subprocess
import sys
import time

import pytest

from denoise.folders import lock
from denoise.folders.lock import OutputBusy, output_lock


def test_a_second_holder_of_the_output_folder_is_refused(tmp_path):
    with output_lock(tmp_path):
        # another process (a lock held by this one would be shared with it by flock)
        code = f"from denoise.folders.lock import output_lock\nwith output_lock({str(tmp_path)!r}): pass"
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and "OutputBusy: another denoise run (pid " in r.stderr, r.stderr
        assert f"is writing to {tmp_path}; wait for it to finish or choose another output folder" in r.stderr
    with output_lock(tmp_path):  # released with its holder
        pass


def test_the_lock_is_refused_within_one_process_too(tmp_path):
    with output_lock(tmp_path):
        with pytest.raises(OutputBusy, match="another denoise run"):
            with output_lock(tmp_path):
                pass


# ---- URL prefixes: a lease object


@pytest.fixture
def prefix():
    import fsspec

    url = f"memory:///lease-{os.getpid()}-{time.time_ns()}"
    fs = fsspec.filesystem("memory")
    fs.mkdir(url[len("memory://"):])
    return url, fs, url[len("memory://"):] + "/" + lock.LOCK


def _foreign(fs, path, age: float, host="elsewhere", pid=1):
    fs.pipe_file(path, json.dumps({"host": host, "pid": pid, "token": "theirs", "renewed": time.time() - age}).encode())


@pytest.fixture(autouse=True)
def quick_settle(monkeypatch):
    monkeypatch.setattr(lock, "SETTLE_SECONDS", 0.01)


def test_a_lease_is_held_for_the_block_refused_to_others_and_removed(prefix):
    url, fs, path = prefix
    with output_lock(url):
        held = json.loads(fs.cat_file(path))
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        with pytest.raises(OutputBusy, match="another denoise run .* renewed 0 s ago"):
            with output_lock(url):
                pass
    assert not fs.exists(path)
    with output_lock(url):  # free again
        pass


def test_a_live_lease_of_another_machine_is_refused_and_a_lapsed_one_taken_over(prefix):
    url, fs, path = prefix
    _foreign(fs, path, age=10)
    with pytest.raises(OutputBusy, match=r"elsewhere pid 1.*110 s for its lease to lapse"):
        with output_lock(url):
            pass
    assert json.loads(fs.cat_file(path))["token"] == "theirs"  # left alone
    _foreign(fs, path, age=lock.LEASE_SECONDS + 5)
    with output_lock(url):
        assert json.loads(fs.cat_file(path))["pid"] == os.getpid()


def test_the_lease_of_a_dead_process_of_this_machine_is_taken_over_at_once(prefix):
    url, fs, path = prefix
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _foreign(fs, path, age=1, host=socket.gethostname(), pid=int(child.stdout))
    with output_lock(url):
        assert json.loads(fs.cat_file(path))["pid"] == os.getpid()


def test_the_holder_renews_its_lease(prefix, monkeypatch):
    url, fs, path = prefix
    monkeypatch.setattr(lock, "RENEW_SECONDS", 0.05)
    with output_lock(url):
        first = json.loads(fs.cat_file(path))["renewed"]
        time.sleep(0.3)
        assert json.loads(fs.cat_file(path))["renewed"] > first


def test_of_two_runs_writing_the_lease_at_once_only_the_last_goes_on(prefix, monkeypatch):
    url, fs, path = prefix
    # the other run writes its lease while this one waits to read its own back
    monkeypatch.setattr(lock.time, "sleep", lambda s: _foreign(fs, path, age=0))
    with pytest.raises(OutputBusy, match="elsewhere"):
        with output_lock(url):
            pass
