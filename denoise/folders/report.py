"""What a run did, file by file: the entries' status tally."""

from __future__ import annotations

__all__ = ["STATUSES", "summary"]

#: A file's status in a run's report.
STATUSES = ("done", "skipped", "failed")


def summary(entries: list[dict]) -> dict[str, int]:
    """How many entries have each of :data:`STATUSES`.

    >>> summary([{"status": "done"}, {"status": "failed"}, {"status": "done"}])
    {'done': 2, 'skipped': 0, 'failed': 1}
    """
    return {s: sum(e["status"] == s for e in entries) for s in STATUSES}
