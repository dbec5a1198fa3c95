"""Which input files map to which output paths."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..imagefile import IMAGE_SUFFIXES
from ..remote import canonical, filesystem, is_url, join, location, signature

__all__ = ["Job", "plan", "is_within", "OUTPUT_FORMATS"]

OUTPUT_FORMATS = ("keep", "png", "tiff", "jpeg", "webp")


@dataclass(frozen=True)
class Job:
    """One input file and its output: local Paths, or URL strings (see :mod:`denoise.remote`).
    ``source`` is a URL input's signature from its listing (size and tag), taken before it is read;
    ``size`` its bytes."""

    src: Path | str
    dst: Path | str
    source: tuple | None = None
    size: int | None = None

    @property
    def name(self) -> str:
        return str(self.src)


def is_within(path: Path, folder: Path) -> bool:
    """Whether ``path`` (links resolved) lies inside ``folder``; False for link loops."""
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return False


def _out_suffix(src: Path, fmt: str) -> str:
    if fmt == "keep":
        return src.suffix
    return {"png": ".png", "tiff": ".tif", "jpeg": ".jpg", "webp": ".webp"}[fmt]


def plan(inputs, outdir, *, recursive: bool = False, fmt: str = "keep",
         options: dict | None = None) -> tuple[list[Job], list[tuple[str, str]]]:
    """Map input files and folders (local paths or URLs, with fsspec storage
    ``options``) to output paths under ``outdir`` (a folder or a URL prefix).

    Folders contribute their image files (sub-folders too with ``recursive``,
    mirrored in the output); the output folder itself is never read as input.
    Two inputs that would land on the same output name keep their original
    suffix in the name (``a.jpg`` -> ``a.jpg.png``) so neither overwrites the
    other, and no output may land on any input.

    Returns ``(jobs, problems)``: problems are (input, reason) pairs for
    inputs that are neither image files nor folders, are not regular files
    (a FIFO, a device: never opened), or whose output would be taken.

    Raises
    ------
    ValueError
        When the output folder is an input folder or contains one.
    """
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(OUTPUT_FORMATS)}; got {fmt!r}")
    outdir = canonical(outdir, options)
    jobs: list[Job] = []
    problems: list[tuple[str, str]] = []
    pairs = []
    for item in map(location, inputs):
        if is_url(item):
            pairs += _url_pairs(item, outdir, recursive, problems, options)
        elif item.is_dir():
            if not is_url(outdir) and is_within(item, outdir):
                raise ValueError(f"the output folder {outdir} is the input folder {item} or contains it; "
                                 "choose an output folder outside the inputs")
            pairs += _folder_pairs(item, outdir, recursive, problems)
        elif item.exists() or item.is_symlink():
            if _regular(item, problems):
                pairs.append((item, Path(item.name), None))
        else:
            problems.append((str(item), "no such file or folder"))
    sources = {_resolved(src) for src, _, _ in pairs}
    taken: set = set()
    for src, rel, info in pairs:
        suffix = _out_suffix(PurePosixPath(str(src)), fmt)
        dst = join(outdir, str(rel.with_suffix(suffix)))
        if dst in taken:
            dst = join(outdir, str(rel.parent / (rel.name + suffix)))
        if dst in taken:
            problems.append((str(src), f"output name {dst} is taken by another input"))
        elif _resolved(dst) in sources:
            problems.append((str(src), f"output {dst} would overwrite an input; choose another output folder"))
        else:
            taken.add(dst)
            jobs.append(Job(src, dst) if info is None else Job(src, dst, signature(info), info.get("size")))
    return jobs, problems


def _url_pairs(url: str, outdir, recursive: bool, problems: list, options) -> list:
    """(URL, path relative to ``url``, listing info) of the image objects under ``url``
    (or of ``url`` itself, an object), outside the ``outdir`` prefix."""
    fs, path = filesystem(url, options)
    out = filesystem(outdir, options)[1].rstrip("/") if is_url(outdir) and _same_store(url, outdir) else None

    def inside_output(p: str) -> bool:
        return out is not None and (p == out or p.startswith(out + "/"))

    try:
        if not fs.isdir(path):
            info = fs.info(path)
            if info.get("type") != "file":
                raise FileNotFoundError(url)
            return [(url, PurePosixPath(path.rsplit("/", 1)[-1]), info)]
        found = fs.find(path, maxdepth=None if recursive else 1, detail=True)
    except FileNotFoundError:
        problems.append((url, "no such file or folder"))
        return []
    except OSError as e:
        problems.append((url, f"cannot be listed ({e})"))
        return []
    if inside_output(path.rstrip("/")) or (out is not None and out.startswith(path.rstrip("/") + "/")):
        raise ValueError(f"the output {outdir} is the input {url} or lies inside it; choose an output outside the inputs")
    base = path.rstrip("/") + "/"
    pairs = []
    for p, info in sorted(found.items()):
        if info.get("type") != "file" or PurePosixPath(p).suffix.lower() not in IMAGE_SUFFIXES or inside_output(p):
            continue
        pairs.append((fs.unstrip_protocol(p), PurePosixPath(p[len(base):]), info))
    return pairs


def _same_store(a: str, b: str) -> bool:
    return a.split("://", 1)[0] == b.split("://", 1)[0]


def _folder_pairs(folder: Path, outdir: Path, recursive: bool, problems: list) -> list[tuple[Path, Path]]:
    """(file, path relative to ``folder``) of the image files in ``folder``, outside ``outdir``."""
    it = folder.rglob("*") if recursive else folder.iterdir()
    pairs = []
    for p in sorted(it):
        if p.suffix.lower() not in IMAGE_SUFFIXES or p.is_dir() or (not is_url(outdir) and is_within(p, outdir)):
            continue
        if _regular(p, problems):
            pairs.append((p, p.relative_to(folder), None))
    return pairs


def _regular(path: Path, problems: list) -> bool:
    """Whether ``path`` is a regular file (links followed); if not, why is added to ``problems``."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        problems.append((str(path), f"cannot be read ({e.strerror or e})"))
        return False
    if not stat.S_ISREG(mode):
        problems.append((str(path), "not a regular file (a FIFO, socket or device is never opened)"))
        return False
    return True


def _resolved(path):
    if is_url(path):
        return path
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path
