"""Where the time of denoising goes: named stages, timed only while collected.

Package code marks its stages::

    with stage("forward", work=len(rows)):
        out = model.reconstruct(rows, sigma)

and a benchmark collects them, in the process that does the work:

>>> with collect() as times:
...     with stage("outer"):
...         with stage("inner", work=3):
...             pass
>>> sorted(times.seconds), times.work["inner"], times.calls["outer"]
(['inner', 'outer'], 3, 1)

Each stage's seconds are its own: time spent in a stage entered inside
another counts for the inner one only (a profiler's "self" time), so the
seconds of all stages add up to the time spent in any of them. ``work``
sums what the stage was given to do (patches, for the forward pass), so a
benchmark can turn seconds into rates. ``first`` and ``last`` are the
wall-clock times (``time.time()``) at which the first outermost stage began
and the last one ended.

Outside a ``collect()`` block, :func:`stage` reads one module global and
returns a shared do-nothing context manager. The collector is a module
global rather than a context variable so that a collection started from one
thread (a Dask worker's event loop, through ``Client.run``) sees the stages
of the thread that runs the tasks; it is meant for one working thread per
process, as our Dask workers have.
"""

from __future__ import annotations

import collections
import contextlib
import time

__all__ = ["Times", "collect", "stage"]

_NOTHING = contextlib.nullcontext()
_active: Times | None = None


class Times:
    """What :func:`collect` gathered: per stage name, ``seconds`` (own time),
    ``calls`` and ``work``; ``first`` and ``last`` wall-clock times (None
    before any stage ran)."""

    def __init__(self):
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.calls: dict[str, int] = collections.defaultdict(int)
        self.work: dict[str, int] = collections.defaultdict(int)
        self.first: float | None = None
        self.last: float | None = None
        self._open: list[_Stage] = []

    def total(self) -> float:
        """Seconds spent in any stage."""
        return sum(self.seconds.values())

    def as_dict(self) -> dict:
        """Plain dicts and numbers, to send between processes."""
        return {"seconds": dict(self.seconds), "calls": dict(self.calls), "work": dict(self.work),
                "first": self.first, "last": self.last}


class _Stage:
    __slots__ = ("times", "name", "work", "start", "inner")

    def __init__(self, times: Times, name: str, work: int):
        self.times, self.name, self.work, self.inner = times, name, work, 0.0

    def __enter__(self):
        times = self.times
        if not times._open and times.first is None:
            times.first = time.time()
        times._open.append(self)
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        elapsed = time.perf_counter() - self.start
        times = self.times
        times._open.pop()
        times.seconds[self.name] += elapsed - self.inner
        times.calls[self.name] += 1
        times.work[self.name] += self.work
        if times._open:
            times._open[-1].inner += elapsed
        else:
            times.last = time.time()


def stage(name: str, work: int = 0):
    """A context manager that adds the time spent in it to stage ``name``
    (and ``work`` to its work) while a :func:`collect` block is active in
    this process; otherwise it does nothing."""
    times = _active
    if times is None:
        return _NOTHING
    return _Stage(times, name, work)


@contextlib.contextmanager
def collect():
    """Collect the stages run in this process until the block ends; yields the :class:`Times`."""
    global _active
    outer, _active = _active, Times()
    try:
        yield _active
    finally:
        _active = outer
