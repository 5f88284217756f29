"""Progress over recordings and steps: a one-line bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import logging
import shutil
import sys
import time

__all__ = ["Progress"]

_log = logging.getLogger("neuroml.pipeline")


class Progress:
    """Show how far a run is.

    On a terminal (``bar=True``) one line is redrawn in place: a bar over all
    recording x step units, the count of recordings done and failed, and what is
    running now. Otherwise nothing is drawn and the runner's log lines say the same.

    Parameters
    ----------
    total : int
        Recordings to process.
    n_steps : int
        Steps per recording (loading counts as one).
    bar : bool
        Whether to draw the bar (the stream is a terminal).
    stream : file, default=sys.stderr
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
        self.t0 = time.perf_counter()
        self._last = 0.0

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
        if self.bar:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

    def draw(self, force: bool = False) -> None:
        if not self.bar:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        width = shutil.get_terminal_size((80, 20)).columns
        units = self.done * self.n_steps + sum(self.partial.values())
        frac = units / max(1, self.total * self.n_steps)
        elapsed = now - self.t0
        head = f"{self.done}/{self.total} recordings"
        if self.failed:
            head += f" ({self.failed} failed)"
        tail = f" {elapsed:5.0f}s  {self.current}"
        bar_w = max(10, min(30, width - len(head) - 30))  # fixed while the text changes
        filled = int(round(frac * bar_w))
        line = f"[{'#' * filled}{'.' * (bar_w - filled)}] {head}{tail}"
        self.stream.write("\r\x1b[2K" + line[: width - 1])
        self.stream.flush()

    def close(self) -> None:
        """Finish the bar's line."""
        if self.bar:
            self.current = ""
            self.draw(force=True)
            self.stream.write("\n")
            self.stream.flush()


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
