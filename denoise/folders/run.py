"""``denoise_folder``: plan the outputs, skip what is done, run the rest on Dask, report.

Inputs, the output folder, the report and the model file are local paths or
fsspec URLs (:mod:`denoise.remote`). Workers read the inputs and write the
outputs themselves where they can reach them: URLs (other than ``memory://``,
which lives in one process), and local paths when the cluster is our own
LocalCluster or the caller says the workers share the file system
(``shared_storage``). Otherwise the client reads every input and writes every
output, so any Dask cluster works. Either way the client lists, schedules and
keeps the manifest and report, outputs are written atomically, and no input is
ever written to. The model travels once per worker as its file bytes
(``Client.scatter(..., broadcast=True)``) and is loaded and compiled once per
worker process, never pickled as a compiled function.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from .. import remote
from ..imagefile import IMAGE_SUFFIXES
from ..modelfile import load_model, model_path
from ..pipeline import camera_gain, check_ensemble, check_strength, check_stride
from .adaptation import ADAPTED, adapted_model
from .cluster import connect, refuse_while_bootstrapping
from .lock import output_lock
from .manifest import Manifest, remove_stale_temporaries
from .plan import plan
from .progress import Progress
from .report import summary
from .runner import Runner, largest_first
from .settings import Settings

__all__ = ["denoise_folder", "ReportError"]

log = logging.getLogger("denoise")


def denoise_folder(
    inputs,
    output,
    *,
    model="default",
    sigma: float | None = None,
    stride: int | None = None,
    ensemble: int = 1,
    strength: float = 1.0,
    camera: bool = False,
    recursive: bool = False,
    fmt: str = "keep",
    jpeg_quality: int = 95,
    tile_megapixels: float = 4.0,
    overwrite: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    progress: bool | None = None,
    report=None,
    storage_options: dict | None = None,
    shared_storage: bool = False,
    adapt: float | None = None,
) -> list[dict]:
    """Denoise image files and folders into ``output`` on Dask.

    Parameters
    ----------
    inputs : list of paths or URLs
        Image files and folders, or fsspec URLs of objects and prefixes
        (``s3://bucket/scans/``); with ``recursive``, sub-folders too,
        mirrored in ``output``. ``output`` itself is never read as input.
    output : path or URL
        Output folder or prefix, created if needed. Finished outputs are
        recorded in its manifest (:mod:`denoise.folders.manifest`); a rerun
        skips them unless the model, settings or input changed, or ``overwrite``.
    model : str, path or URL
        Shipped model name or model file.
    sigma, stride, ensemble, strength, camera : optional
        As for :func:`denoise.denoise_image` (sigma in [0, 1] units).
    fmt : {"keep", "png", "tiff", "jpeg", "webp"}
    tile_megapixels : float
        Images larger than this are split into tiles, processed as separate
        tasks and stitched back (same pixels as untiled).
    workers, scheduler, client :
        A LocalCluster of ``workers`` processes by default; ``scheduler``
        (or ``$DASK_SCHEDULER_ADDRESS``) connects to an existing cluster;
        ``client`` uses an existing :class:`distributed.Client`.
    progress : bool, optional
        A tqdm bar (default: when standard error is a terminal).
    report : path or URL, optional
        Write the report as JSON.
    storage_options : dict, optional
        fsspec options for every URL (credentials, ``client_kwargs``'s
        ``endpoint_url``, ...); they travel to the workers with the tasks.
        Without them each file system's library finds credentials itself.
    shared_storage : bool
        The cluster's workers see this machine's local paths (a shared file
        system): they read and write local files themselves.
    adapt : float, optional
        Seconds to fine-tune the model on a sample of the inputs first,
        self-supervised (:mod:`denoise.folders.adaptation`); the adapted model
        is written into ``output`` and used only if it lowered its validation loss.

    Returns
    -------
    list of dict
        One entry per input file, in input order: ``file``, ``status``
        (done / skipped / failed), ``reason``, ``seconds``, ``megapixels``, ``output``.
    """
    refuse_while_bootstrapping()
    if not tile_megapixels > 0:
        raise ValueError(f"tile size must be positive; got {tile_megapixels} megapixels")
    if adapt is not None and not (isinstance(adapt, (int, float)) and 0 < adapt < float("inf")):
        raise ValueError(f"adapt is a number of seconds; got {adapt!r}")
    t_start = time.perf_counter()
    output = remote.canonical(output, storage_options)
    report = remote.location(report) if report is not None else None
    local, model_data, sha = _checked_model(model, stride, ensemble, strength, storage_options)
    if camera:
        camera_gain(local)
    settings = Settings(sigma, stride, fmt, jpeg_quality, int(tile_megapixels * 1e6), ensemble, float(strength), bool(camera))
    key = settings.key(sha)
    jobs, problems = plan(inputs, output, recursive=recursive, fmt=fmt, options=storage_options)
    if not jobs and not problems:
        raise ValueError(f"no image files in {', '.join(map(str, inputs))} (looked for {', '.join(IMAGE_SUFFIXES)})")
    if not jobs and all(why == "no such file or folder" for _, why in problems):
        raise ValueError(f"no such file or folder: {', '.join(f for f, _ in problems)}")
    _check_writable(output, report, storage_options)
    urls = any(remote.is_url(w) for w in [output, *(j.src for j in jobs)])
    own_cluster = client is None and not (scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS"))
    with output_lock(output, storage_options):
        remove_stale_temporaries(output)
        manifest = Manifest.load(output, storage_options)
        entries = [{"file": f, "status": "failed", "reason": why} for f, why in problems]
        own, lost, adaptation = None, [], None
        show = progress if progress is not None else sys.stderr.isatty()

        def cluster():
            nonlocal client, own
            if client is None:
                client, own = connect(scheduler, workers)
            return client

        bar = None
        try:
            if adapt and jobs:
                local, model_data, adaptation = adapted_model(
                    cluster, jobs, output, model_data, sha, adapt, sigma, storage_options,
                    worker_io=workers_reach([output, *(j.src for j in jobs)], own_cluster or shared_storage),
                    threads=os.cpu_count() if own_cluster else None, show=show)
                sha = hashlib.sha256(model_data).hexdigest()
                key = settings.key(sha)
            todo, work = largest_first(_not_done(jobs, manifest, key, overwrite, entries), by_size=urls)
            bar = Progress(work, len(jobs), len(jobs) - len(todo), show=show, unit="MB" if urls else "MP")
            if todo:
                cluster()
                worker_io = workers_reach([output, *(j.src for j in todo)], own_cluster or shared_storage)
                lost = Runner(client, local, model_data, sha, settings, key, manifest, entries, bar,
                              options=storage_options, worker_io=worker_io).run(todo)
                if lost:
                    log.warning(_LOST, len(lost))
        finally:
            if bar is not None:
                bar.close()
            if own is not None:
                client.close()
                own.close()
    order = {str(j.src): i for i, j in enumerate(jobs)}
    entries.sort(key=lambda e: order.get(e["file"], -1))
    if report is not None:
        doc = {"summary": summary(entries), "seconds": round(time.perf_counter() - t_start, 3), "model": str(model),
               "model_sha256": sha, "workers_lost": lost, "files": entries}
        if lost:
            doc["note"] = _LOST % len(lost)
        if adaptation is not None:
            doc["adaptation"] = {"model": str(remote.join(output, ADAPTED)), **adaptation}
        try:
            remote.write_bytes(report, json.dumps(doc, indent=1).encode(), storage_options)
        except OSError as e:
            raise ReportError(f"cannot write the report {report}: {e.strerror or e}", entries) from None
    return entries


class ReportError(OSError):
    """The run finished but its report could not be written; ``entries`` holds what it did."""

    def __init__(self, message: str, entries: list):
        super().__init__(message)
        self.entries = entries


def workers_reach(locations, local_paths_shared: bool) -> bool:
    """Whether the workers can read and write all ``locations`` themselves: URLs
    whose files live beyond one process, and local paths when they share them."""
    return all(remote.protocol(w) not in remote.PROCESS_LOCAL if remote.is_url(w) else local_paths_shared
               for w in locations)


def _check_writable(output, report, options=None) -> None:
    """Make ``output`` and check that it, and the report's folder, take new files:
    before any work, so that a run never denoises everything only to fail to write it."""
    if remote.is_url(output):
        probe = remote.join(output, f".denoise-probe-{secrets.token_hex(4)}")
        try:
            remote.write_bytes(probe, b"", options)
            fs, path = remote.filesystem(probe, options)
            fs.rm_file(path)
        except (OSError, PermissionError) as e:
            raise ValueError(f"cannot write to the output {output}: {e}") from None
    else:
        _check_local_writable(output, None if report is None or remote.is_url(report) else Path(report))


def _check_local_writable(output: Path, report) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create the output folder {output}: {e.strerror or e}") from None
    folders = [("output folder", output)]
    if report is not None:
        report = Path(report)
        if report.is_dir():
            raise ValueError(f"the report {report} is a folder; give a file name such as report.json")
        if not report.parent.is_dir():
            raise ValueError(f"the report's folder {report.parent} does not exist")
        folders.append(("report's folder", report.parent))
    for what, folder in folders:
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as e:
            raise ValueError(f"cannot write to the {what} {folder}: {e.strerror or e}") from None


_LOST = "%d worker(s) were lost during the run; Dask re-ran their tasks on the others"


def _checked_model(model, stride, ensemble, strength, options=None):
    """``(model, file bytes, sha256)``, with the model file and the settings that
    depend on it checked here, before any cluster starts or any worker sees them."""
    model_file = str(model) if remote.is_url(str(model)) else model_path(model)
    data = remote.read_bytes(model_file, options)
    local = load_model(model_file, data=data)
    if stride is not None:
        check_stride(local, stride)
    check_ensemble(ensemble)
    check_strength(strength)
    return local, data, hashlib.sha256(data).hexdigest()


def _not_done(jobs, manifest: Manifest, key: str, overwrite: bool, entries: list) -> list:
    """The jobs still to do; each one done already with this key is entered as skipped."""
    todo = []
    for job in jobs:
        if not overwrite and manifest.done(job, key):
            entries.append({"file": job.name, "status": "skipped", "output": str(job.dst),
                            "reason": "already done with this model and settings"})
        else:
            todo.append(job)
    return todo
