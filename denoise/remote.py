"""Files behind fsspec URLs (``s3://``, ``gs://``, ``az://``, ``memory://``, ...).

A *location* is a local path (a :class:`~pathlib.Path`, or a string without a
``scheme://``) or a URL; ``file://`` URLs are local paths. Every function here
takes either, with ``options`` (fsspec storage options: credentials, endpoint)
used for URLs; credentials otherwise come from where each file system's library
looks (environment, config files).

Whole objects are written in one request, so on an object store an object
appears complete under its final name or not at all (S3's PutObject, and its
multipart upload, which publishes the object only when completed; likewise GCS
and Azure blobs). On other fsspec file systems (SFTP, HDFS, ...) an output is
written under a temporary name and renamed into place.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from .storage import TEMPORARY_SUFFIX, atomic_write

__all__ = ["is_url", "local_path", "location", "filesystem", "read_bytes", "write_bytes", "join", "parent",
           "canonical", "object_tag", "signature", "WHOLE_OBJECT_STORES", "PROCESS_LOCAL", "EXTRAS"]

#: Protocols whose single write request is atomic: an object appears whole or not at all.
WHOLE_OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory"})
#: Protocols whose files live inside one process: other processes (Dask workers) cannot see them.
PROCESS_LOCAL = frozenset({"memory"})
#: Our optional extra for each protocol's fsspec implementation.
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure",
          "adl": "azure"}


def is_url(where) -> bool:
    """Whether ``where`` is a URL other than ``file://`` (a local path otherwise)."""
    return isinstance(where, str) and "://" in where and not where.startswith("file://")


def local_path(where) -> Path:
    """A local location as a Path (``file://`` stripped)."""
    s = str(where)
    return Path(s[len("file://"):] if s.startswith("file://") else s)


def protocol(url: str) -> str:
    return url.split("://", 1)[0].lower()


def filesystem(url: str, options: dict | None = None):
    """``(fs, path)`` for ``url``; a missing fsspec implementation raises an
    ImportError that names the extra to install."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, **(options or {}))
    except ImportError as e:
        extra = EXTRAS.get(protocol(url))
        hint = f"pip install 'denoise[{extra}]'" if extra else "install the fsspec package for it"
        raise ImportError(f"{protocol(url)}:// needs a package that is not installed ({e}); {hint}") from None
    except ValueError as e:  # fsspec: "Protocol not known"
        raise ValueError(f"cannot open {url}: {e}") from None


def read_bytes(where, options: dict | None = None) -> bytes:
    """The whole file or object at ``where``."""
    if not is_url(where):
        return local_path(where).read_bytes()
    fs, path = filesystem(where, options)
    return fs.cat_file(path)


def write_bytes(where, data: bytes, options: dict | None = None) -> dict:
    """Write ``data`` to ``where`` atomically (see the module's note); returns
    what identifies the written file: ``{"bytes": size}``, and for an object
    its ``etag`` where the store gives one."""
    if not is_url(where):
        atomic_write(local_path(where), data)
        return {"bytes": len(data)}
    fs, path = filesystem(where, options)
    if protocol(where) in WHOLE_OBJECT_STORES:
        fs.pipe_file(path, data)
    else:
        folder, name = path.rsplit("/", 1) if "/" in path else ("", path)
        tmp = f"{folder}/.{name}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"
        try:
            fs.pipe_file(tmp, data)
            fs.mv(tmp, path)
        except BaseException:
            if fs.exists(tmp):
                fs.rm_file(tmp)
            raise
    return {"bytes": len(data), **object_tag(fs.info(path))}


def object_tag(info: dict) -> dict:
    """``{"etag": ...}`` from a file system's info on an object, where it has one."""
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    return {"etag": str(tag).strip('"')} if tag else {}


def join(folder, *parts: str):
    """``folder / parts`` for a local folder, ``folder/parts`` for a URL."""
    if not is_url(folder):
        return local_path(folder).joinpath(*parts)
    return "/".join([str(folder).rstrip("/"), *(p.strip("/") for p in parts)])


def parent(where):
    """The folder holding ``where``."""
    if not is_url(where):
        return local_path(where).parent
    return str(where).rstrip("/").rsplit("/", 1)[0]


def location(where):
    """A location as this module's functions take it: a URL string, or a local Path."""
    return str(where) if is_url(str(where)) else local_path(where)


def signature(info: dict) -> tuple:
    """What identifies an object's content for resuming, from its listing: size and tag (or time)."""
    tag = object_tag(info).get("etag") or info.get("LastModified") or info.get("mtime") or info.get("updated")
    return (info.get("size"), str(tag) if tag is not None else None)


def canonical(where, options: dict | None = None):
    """``where`` as :func:`location`, a URL spelt as its file system lists it
    (``memory://out`` -> ``memory:///out``), so that names from listings compare equal."""
    where = location(where)
    if not is_url(where):
        return where
    fs, path = filesystem(where, options)
    return fs.unstrip_protocol(path.rstrip("/"))
