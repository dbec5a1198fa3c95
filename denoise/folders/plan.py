"""Which input files map to which output paths."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from ..imagefile import IMAGE_SUFFIXES

__all__ = ["Job", "plan", "is_within", "OUTPUT_FORMATS"]

OUTPUT_FORMATS = ("keep", "png", "tiff", "jpeg", "webp")


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path

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


def plan(inputs, outdir, *, recursive: bool = False, fmt: str = "keep") -> tuple[list[Job], list[tuple[str, str]]]:
    """Map input files and folders to output paths under ``outdir``.

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
    outdir = Path(outdir)
    jobs: list[Job] = []
    problems: list[tuple[str, str]] = []
    pairs = []
    for item in map(Path, inputs):
        if item.is_dir():
            if is_within(item, outdir):
                raise ValueError(f"the output folder {outdir} is the input folder {item} or contains it; "
                                 "choose an output folder outside the inputs")
            pairs += _folder_pairs(item, outdir, recursive, problems)
        elif item.exists() or item.is_symlink():
            if _regular(item, problems):
                pairs.append((item, Path(item.name)))
        else:
            problems.append((str(item), "no such file or folder"))
    sources = {_resolved(src) for src, _ in pairs}
    taken: set[Path] = set()
    for src, rel in pairs:
        dst = outdir / rel.with_suffix(_out_suffix(src, fmt))
        if dst in taken:
            dst = outdir / rel.parent / (rel.name + _out_suffix(src, fmt))
        if dst in taken:
            problems.append((str(src), f"output name {dst} is taken by another input"))
        elif _resolved(dst) in sources:
            problems.append((str(src), f"output {dst} would overwrite an input; choose another output folder"))
        else:
            taken.add(dst)
            jobs.append(Job(src, dst))
    return jobs, problems


def _folder_pairs(folder: Path, outdir: Path, recursive: bool, problems: list) -> list[tuple[Path, Path]]:
    """(file, path relative to ``folder``) of the image files in ``folder``, outside ``outdir``."""
    it = folder.rglob("*") if recursive else folder.iterdir()
    pairs = []
    for p in sorted(it):
        if p.suffix.lower() not in IMAGE_SUFFIXES or p.is_dir() or is_within(p, outdir):
            continue
        if _regular(p, problems):
            pairs.append((p, p.relative_to(folder)))
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


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path
