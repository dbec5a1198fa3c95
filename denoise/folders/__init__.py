"""Folders on Dask: one task per image (per tile for huge images), results
streamed back with ``as_completed``, resume from a manifest, a report.

- :mod:`.plan`: which inputs map to which outputs;
- :mod:`.settings`: what decides an output, and its manifest key;
- :mod:`.cluster`: an existing cluster by address, or a LocalCluster of ours;
- :mod:`.tasks`: the worker side (decode, denoise, encode; the model cache);
- :mod:`.tiling`: huge images as tiles on the global patch grid;
- :mod:`.runner`: the client's scheduling loop;
- :mod:`.manifest`, :mod:`.report`: what is done, for resuming and for the user;
- :mod:`.run`: :func:`denoise_folder`, which ties them together.
"""

from .cluster import WORKER_CONFIG, WORKER_MALLOC, connect
from .run import denoise_folder
from .settings import Settings

__all__ = ["WORKER_CONFIG", "WORKER_MALLOC", "Settings", "connect", "denoise_folder"]
