"""Which training images are held back for validation."""

from __future__ import annotations

__all__ = ["holdout_split", "HOLDOUT_EVERY"]

#: Every this-many-th image (by name) is held back for validation.
HOLDOUT_EVERY = 8


def holdout_split(files: list) -> tuple[list, list]:
    """``(train, validation)``: every :data:`HOLDOUT_EVERY`-th of ``files`` (in
    the order given, from the first) held back; a single file serves as both.

    >>> holdout_split(list("abcdefghij"))
    (['b', 'c', 'd', 'e', 'f', 'g', 'h', 'j'], ['a', 'i'])
    """
    if len(files) < 2:
        return list(files), list(files)
    held = files[::HOLDOUT_EVERY]
    return [f for f in files if f not in held], held
