import contextlib
import sys
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


@contextlib.contextmanager
def dask_cluster(workers: int, *, nanny: bool = True):
    """An external cluster of ``workers`` one-thread workers (``scripts/services.py``);
    yields ``(address, worker processes)``."""
    with services().dask_cluster(workers, nanny=nanny) as cluster:
        yield cluster.options["address"], cluster.processes[1:]


def services():
    """``scripts/services.py``, the local services the tests start."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import services
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return services


@pytest.fixture(scope="module")
def s3():
    """A local S3 server (moto) for the module: yields its fsspec storage options."""
    pytest.importorskip("s3fs")
    with services().s3_server() as server:
        yield server.options
