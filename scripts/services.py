"""Local services for the tests and benchmarks, on 127.0.0.1 only, started and
stopped around a ``with`` block:

- :func:`s3_server`: an S3-compatible server, moto's standalone server
  (``moto_server``, from the ``moto[server]`` package), in its own process;
  its buckets live in that process's memory;
- :func:`dask_cluster`: an external Dask cluster, ``dask scheduler`` and
  ``dask worker`` processes, as a user's existing cluster would be.

Not a script: the benchmarks import it as a sibling, the tests from ``scripts/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["s3_server", "dask_cluster"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(name: str) -> str | None:
    """An executable of this Python's environment (or on PATH)."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


@dataclass
class Service:
    """A started service: ``options`` to reach it (fsspec storage options, or ``address``) and its processes."""

    options: dict
    processes: list


@contextlib.contextmanager
def s3_server(timeout: float = 30.0):
    """Start the server; yields a :class:`Service` whose ``options`` are the fsspec
    storage options that reach it (s3fs's ``key``, ``secret`` and ``client_kwargs``
    with its endpoint; the region is not us-east-1, where s3fs creates buckets in
    a way moto refuses)."""
    exe = _command("moto_server")
    if exe is None:
        raise RuntimeError("moto_server not found: pip install 'moto[server]'")
    port = _free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the local S3 server did not start on {url}") from None
                time.sleep(0.1)
        yield Service({"key": "testing", "secret": "testing",
                       "client_kwargs": {"endpoint_url": url, "region_name": "eu-west-1"}}, [proc])
    finally:
        _stop([proc])


@contextlib.contextmanager
def dask_cluster(workers: int, *, nanny: bool = True, env: dict | None = None, timeout: float = 60.0):
    """An external cluster: ``dask scheduler`` and ``workers`` ``dask worker``
    processes of one thread each on 127.0.0.1, with ``env`` added to their
    environment; yields a :class:`Service` with ``options["address"]`` and the
    processes (the scheduler first), all killed after."""
    dask = _command("dask") or "dask"
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}

    def start(cmd):
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    with tempfile.TemporaryDirectory() as tmp:
        sched_file = Path(tmp) / "scheduler.json"
        procs = [start([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                        "--scheduler-file", str(sched_file)])]
        try:
            deadline = time.monotonic() + timeout
            while not sched_file.exists():
                if procs[0].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the Dask scheduler did not start")
                time.sleep(0.2)
            address = json.loads(sched_file.read_text())["address"]
            flags = ["--nthreads", "1", "--no-dashboard"] + ([] if nanny else ["--no-nanny"])
            procs += [start([dask, "worker", address, *flags]) for _ in range(workers)]
            from distributed import Client

            with Client(address, timeout="30s") as c:
                c.wait_for_workers(workers, timeout=timeout)
            yield Service({"address": address}, procs)
        finally:
            _stop(procs, kill=True)


def _stop(procs, kill: bool = False) -> None:
    for p in procs:
        p.kill() if kill else p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
