"""A local S3-compatible server for the tests and benchmarks: moto's standalone
server (``moto_server``, from the ``moto[server]`` package) on 127.0.0.1, in
its own process, started and stopped around a ``with`` block. Nothing leaves
the machine; its buckets live in the server's memory."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

__all__ = ["s3_server"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def s3_server(timeout: float = 30.0):
    """Start the server; yields the fsspec storage options that reach it (s3fs's
    ``key``, ``secret`` and ``client_kwargs`` with its endpoint)."""
    port = _free_port()
    exe = shutil.which("moto_server") or shutil.which("moto_server", path=str(__import__("pathlib").Path(sys.executable).parent))
    if exe is None:
        raise RuntimeError("moto_server not found: pip install 'moto[server]'")
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
        yield {"key": "testing", "secret": "testing",
               "client_kwargs": {"endpoint_url": url, "region_name": "eu-west-1"}}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
