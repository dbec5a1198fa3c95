"""Before/after contact sheets: what a run did, at a glance."""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np
from PIL import Image, ImageDraw

from . import remote
from .imagefile import encode_image, read_image
from .imaging import split_alpha

__all__ = ["contact_sheet", "PREVIEW_FILES"]

#: The most files a sheet shows (the first ones given).
PREVIEW_FILES = 12
_LABEL = 18  # pixels of caption above each row


def _display(array: np.ndarray) -> np.ndarray:
    """An image of any supported kind as 8-bit RGB for viewing: 16 bits shifted down,
    floats clipped to [0, 1], alpha dropped, gray repeated."""
    colour, _ = split_alpha(np.asarray(array))
    if colour.dtype == np.uint16:
        colour = (colour >> 8).astype(np.uint8)
    elif colour.dtype.kind == "f":
        colour = (np.clip(colour, 0, 1) * 255 + 0.5).astype(np.uint8)
    if colour.ndim == 2:
        colour = colour[:, :, None]
    return np.repeat(colour, 3, axis=2) if colour.shape[2] == 1 else colour


def _centre(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[:2]
    y, x = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return a[y : y + size, x : x + size]


def contact_sheet(pairs, path, *, size: int = 256, storage_options: dict | None = None) -> int:
    """Write a PNG of each (before, after) pair of image files (paths or URLs) side
    by side, the same central crop of at most ``size`` pixels a side, captioned
    with the file name; at most :data:`PREVIEW_FILES` rows. Returns how many rows it holds."""
    rows = []
    for before, after in list(pairs)[:PREVIEW_FILES]:
        a, _ = read_image(before, remote.read_bytes(before, storage_options))
        b, _ = read_image(after, remote.read_bytes(after, storage_options))
        a, b = _centre(_display(a), size), _centre(_display(b), size)
        h, w = max(a.shape[0], b.shape[0]), a.shape[1] + b.shape[1] + 4
        row = Image.new("RGB", (w, h + _LABEL), "white")
        row.paste(Image.fromarray(np.ascontiguousarray(a)), (0, _LABEL))
        row.paste(Image.fromarray(np.ascontiguousarray(b)), (a.shape[1] + 4, _LABEL))
        ImageDraw.Draw(row).text((2, 2), f"{PurePosixPath(str(before)).name}: before | after", fill="black")
        rows.append(row)
    if not rows:
        raise ValueError("no finished files to preview")
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height + 4 for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height + 4
    path = remote.location(path)
    remote.write_bytes(path, encode_image(np.asarray(sheet), PurePosixPath(str(path)).suffix or ".png"), storage_options)
    return len(rows)
