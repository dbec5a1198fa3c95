import subprocess
import sys
from pathlib import Path

import pytest

from denoise.folders import WORKER_MALLOC

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


def _startup_environ() -> dict:
    with open("/proc/self/environ", "rb") as f:
        items = [item.decode(errors="replace").split("=", 1) for item in f.read().split(b"\0") if b"=" in item]
    return dict(items)


def test_local_workers_start_with_our_malloc_settings(client):
    # set before each worker process starts, where glibc reads them (Dask's own default would pin the
    # mmap threshold at 128 KiB)
    # the environment each worker process started with (/proc/self/environ), which is what glibc
    # read: os.environ would also show a setting made after the process started, too late to count
    wanted = {key.rsplit(".", 1)[1]: str(value) for key, value in WORKER_MALLOC.items()}
    seen = client.run(lambda: {k: v for k, v in _startup_environ().items() if k in wanted})
    assert len(seen) == 2 and all(env == wanted for env in seen.values()), seen


def test_local_workers_run_no_statistical_profiler(client):
    # Dask's default samples each task's stack every 10 ms (see WORKER_CONFIG); the rest of a worker's
    # periodic work (heartbeats, memory monitor) still runs
    running = client.run(lambda dask_worker: sorted(name for name, pc in dask_worker.periodic_callbacks.items() if pc.is_running()))
    assert len(running) == 2
    for names in running.values():
        assert not any(name.startswith("profile") for name in names) and "heartbeat" in names, names


@pytest.mark.slow
def test_an_unguarded_script_is_told_to_use_the_main_guard(tmp_path):
    # worker processes import the script as they start; without the guard each would call denoise_folder again
    script = tmp_path / "script.py"
    script.write_text(f"import denoise\ndenoise.denoise_folder([{str(SAMPLES / 'dogs_gray.png')!r}], "
                      f"{str(tmp_path / 'out')!r}, workers=1, sigma=0.1)\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert 'put the call under `if __name__ == "__main__":`' in r.stderr, r.stderr[-3000:]


def test_starting_our_cluster_leaves_the_callers_environment_as_it_was(monkeypatch):
    # the nanny runs in this process and writes the workers' malloc settings into os.environ
    import os

    from denoise.folders import connect

    for key in WORKER_MALLOC:
        monkeypatch.delenv(key.rsplit(".", 1)[1], raising=False)
    before = dict(os.environ)
    c, cluster = connect(workers=1)
    try:
        assert dict(os.environ) == before
    finally:
        c.close()
        cluster.close()
