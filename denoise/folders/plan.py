"""Which input files map to which output paths."""

from __future__ import annotations

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


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
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
    other.

    Returns ``(jobs, problems)``: problems are (input, reason) pairs for
    inputs that are neither image files nor folders.
    """
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(OUTPUT_FORMATS)}; got {fmt!r}")
    outdir = Path(outdir)
    jobs: list[Job] = []
    problems: list[tuple[str, str]] = []
    taken: set[Path] = set()
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            it = item.rglob("*") if recursive else item.iterdir()
            pairs = []
            for p in sorted(it):
                if p.suffix.lower() not in IMAGE_SUFFIXES or p.is_dir() or is_within(p, outdir):
                    continue
                pairs.append((p, p.relative_to(item)))
        elif item.exists() or item.is_symlink():
            pairs = [(item, Path(item.name))]
        else:
            problems.append((str(item), "no such file or folder"))
            continue
        for src, rel in pairs:
            dst = outdir / rel.with_suffix(_out_suffix(src, fmt))
            if dst in taken:
                dst = outdir / rel.parent / (rel.name + _out_suffix(src, fmt))
            if dst in taken or _same_file(src, dst):
                problems.append((str(src), f"output name {dst} is taken by another input"))
                continue
            taken.add(dst)
            jobs.append(Job(src, dst))
    return jobs, problems
