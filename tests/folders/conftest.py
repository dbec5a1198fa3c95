import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from denoise.folders import connect

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client():
    c, cluster = connect(workers=2)
    yield c
    c.close()
    cluster.close()


def _dask_command() -> str:
    bindir = Path(sys.executable).parent
    return str(bindir / "dask") if (bindir / "dask").exists() else "dask"


@contextlib.contextmanager
def dask_cluster(folder: Path, workers: int, *, nanny: bool = True):
    """An external cluster: ``dask scheduler`` and ``workers`` ``dask worker`` processes
    of one thread each on 127.0.0.1; yields ``(address, worker processes)``, all killed after."""
    dask, env = _dask_command(), {**os.environ, "PYTHONWARNINGS": "ignore"}
    sched_file = folder / "scheduler.json"

    def start(cmd):
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    procs = [start([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(sched_file)])]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        flags = ["--nthreads", "1", "--no-dashboard"] + ([] if nanny else ["--no-nanny"])
        procs += [start([dask, "worker", address, *flags]) for _ in range(workers)]
        from distributed import Client

        with Client(address, timeout="30s") as c:
            c.wait_for_workers(workers, timeout=60)
        yield address, procs[1:]
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=30)


@pytest.fixture(scope="module")
def s3():
    """A local S3 server (moto) for the module: yields its fsspec storage options."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from s3server import s3_server
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    pytest.importorskip("s3fs")
    with s3_server() as options:
        yield options
