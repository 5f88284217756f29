"""Progress over recordings and steps: a tqdm bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import logging
import sys

__all__ = ["Progress"]

_log = logging.getLogger("neuroml.pipeline")

#: What the bar shows: the fraction of recording x step units done, the count of
#: recordings done (and failed), the time elapsed and what is running now.
BAR_FORMAT = "[{bar:30}] {desc} {elapsed}{postfix}"


class Progress:
    """Show how far a run is.

    On a terminal (``bar=True``) a :mod:`tqdm` bar (``tqdm.auto``: a widget in a
    notebook) is redrawn in place: a bar over all recording x step units, the count of
    recordings done and failed, the time elapsed and what is running now. Otherwise
    nothing is drawn (tqdm is not even imported) and the runner's log lines say the same.

    Parameters
    ----------
    total : int
        Recordings to process.
    n_steps : int
        Steps per recording (loading counts as one).
    bar : bool
        Whether to draw the bar (the stream is a terminal).
    stream : file, default=sys.stderr
        Where the bar is written.

    Attributes
    ----------
    done, failed : int
        Recordings finished, and of them failed.
    current : str
        What is running now (``"<recording>: <step>"``), shown after the bar.
    """

    def __init__(self, total: int, n_steps: int, *, bar: bool, stream=None):
        self.total = total
        self.n_steps = max(1, n_steps)
        self.bar = bar
        self.stream = stream or sys.stderr
        self.done = 0
        self.failed = 0
        self.partial: dict[str, int] = {}
        self.current = ""
        self._tqdm = None
        if bar:
            from tqdm.auto import tqdm  # lazily: `neuroml --help` does not pay for it

            self._tqdm = tqdm(total=total * self.n_steps, file=self.stream, desc=self._head(),
                              bar_format=BAR_FORMAT, dynamic_ncols=True, leave=True)

    def _head(self) -> str:
        head = f"{self.done}/{self.total} recordings"
        return head + (f" ({self.failed} failed)" if self.failed else "")

    def step(self, recording_id: str, index: int, name: str) -> None:
        """A recording started step ``index`` (0 = loading)."""
        self.partial[recording_id] = index
        self.current = f"{recording_id}: {name}"
        self.draw(force=index == 0)  # always show a recording starting

    def finished(self, recording_id: str, ok: bool) -> None:
        """A recording finished (successfully or not)."""
        self.partial.pop(recording_id, None)
        if self.current.startswith(f"{recording_id}:"):
            self.current = ""
        self.done += 1
        self.failed += 0 if ok else 1
        self.draw(force=True)

    def clear(self) -> None:
        """Erase the bar (before a log line is printed on the terminal)."""
        if self._tqdm is not None:
            self._tqdm.clear()

    def draw(self, force: bool = False) -> None:
        """Update the bar; at most every 0.1 s (tqdm's ``mininterval``) unless ``force``."""
        t = self._tqdm
        if t is None:
            return
        units = self.done * self.n_steps + sum(self.partial.values())
        t.set_description_str(self._head(), refresh=False)
        t.set_postfix_str(self.current, refresh=False)
        if force or units < t.n:
            t.n = units
            t.refresh()
        else:
            t.update(units - t.n)

    def close(self) -> None:
        """Finish the bar's line."""
        if self._tqdm is not None:
            self.current = ""
            self.draw(force=True)
            self._tqdm.close()


class BarAwareHandler(logging.StreamHandler):
    """A stream handler that erases the progress bar before each record and redraws it after."""

    def __init__(self, stream=None):
        super().__init__(stream or sys.stderr)
        self.progress: Progress | None = None

    def emit(self, record: logging.LogRecord) -> None:
        p = self.progress
        if p is not None and p.bar:
            p.clear()
        super().emit(record)
        if p is not None and p.bar:
            p.draw(force=True)
