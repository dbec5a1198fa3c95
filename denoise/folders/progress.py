"""The progress bar of a folder run, measured in work rather than files.

Files go largest first, so a bar counting files would show a rate that
rises as the run goes on and an ETA far too long; counting the megapixel
planes each file holds (from its header) keeps both steady. Where the client
reads no input (URLs), the bar counts the inputs' megabytes instead.
"""

from __future__ import annotations

__all__ = ["Progress"]


class Progress:
    """A tqdm bar over ``work`` (job -> pixel planes, or bytes with ``unit="MB"``) with the files done beside it."""

    def __init__(self, work: dict, files: int, done: int, *, show: bool, stream=None, unit: str = "MP"):
        from tqdm.auto import tqdm

        self.work, self.files, self.done = work, files, done
        self.total = sum(max(w, 0) for w in work.values()) / 1e6
        self.megapixels = 0.0
        self.bar = tqdm(total=round(self.total, 2), disable=not show, unit=unit, dynamic_ncols=True, file=stream,
                        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} " + unit
                                   + " [{elapsed}<{remaining}, {rate_fmt}{postfix}]")
        self._postfix()

    def file_done(self, job) -> None:
        """One file finished (done or failed)."""
        self.done += 1
        mp = max(self.work.get(job, 0), 0) / 1e6
        self.megapixels += mp
        self.bar.update(mp)
        self._postfix()

    def _postfix(self) -> None:
        self.bar.set_postfix_str(f"{self.done}/{self.files} files", refresh=False)

    def close(self) -> None:
        self.bar.close()
