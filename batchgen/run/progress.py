"""Progress reporting: the engine tells a ``Reporter`` what happened; it decides what to show.

``Reporter`` itself shows nothing (library use, tests). ``BarReporter`` draws tqdm bars on a
terminal (submitted, completed, downloaded; failed count and spend in the postfix).
``LineReporter`` writes a plain line now and then, for logs and CI where bars are noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO

from tqdm import tqdm


class Reporter:
    """Counts events and shows nothing; subclasses show them. Counts include earlier runs."""

    def __init__(self) -> None:
        self.total = self.n_submitted = self.n_completed = self.n_downloaded = self.n_failed = 0
        self.spent: float | None = None
        self.notes: list[str] = []

    def start(
        self,
        total: int,
        *,
        submitted: int = 0,
        completed: int = 0,
        downloaded: int = 0,
        failed: int = 0,
        spent: float | None = None,
    ) -> None:
        self.total, self.n_submitted, self.n_completed = total, submitted, completed
        self.n_downloaded, self.n_failed, self.spent = downloaded, failed, spent
        self._changed()

    def submitted(self) -> None:
        self.n_submitted += 1
        self._changed()

    def completed(self) -> None:
        self.n_completed += 1
        self._changed()

    def downloaded(self) -> None:
        self.n_downloaded += 1
        self._changed()

    def failed(self) -> None:
        self.n_failed += 1
        self._changed()

    def spend(self, usd: float | None) -> None:
        self.spent = usd

    def note(self, message: str) -> None:
        """Something the user should read (a warning); shown above the bars."""
        self.notes.append(message)

    def close(self) -> None:
        """The run ended: draw the final state."""

    def _changed(self) -> None:
        """Counts changed."""

    def postfix(self) -> str:
        spent = "" if self.spent is None else f", spent ~${self.spent:,.2f}"
        return f"failed {self.n_failed}{spent}"


class BarReporter(Reporter):
    """Three tqdm bars on ``stream`` (a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self._bars: list[Any] = []

    def start(self, total: int, **counts: Any) -> None:
        labels = ("submitted", "completed", "downloaded")
        self._bars = [
            tqdm(
                total=total,
                desc=f"{label:>10}",
                file=self._stream,
                position=i,
                unit="job",
                dynamic_ncols=True,
                leave=True,
            )
            for i, label in enumerate(labels)
        ]
        super().start(total, **counts)

    def _changed(self) -> None:
        values = (self.n_submitted, self.n_completed, self.n_downloaded)
        for bar, value in zip(self._bars, values, strict=False):
            if bar.n != value:
                bar.update(value - bar.n)
        if self._bars:
            self._bars[-1].set_postfix_str(self.postfix(), refresh=False)

    def note(self, message: str) -> None:
        super().note(message)
        tqdm.write(message, file=self._stream)

    def close(self) -> None:
        self._changed()
        for bar in self._bars:
            bar.refresh()
            bar.close()


class LineReporter(Reporter):
    """One plain line every ``every`` seconds (and at the end) on ``stream``."""

    def __init__(
        self, stream: TextIO, every: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._stream, self._every, self._clock = stream, every, clock
        self._last = float("-inf")

    def _changed(self) -> None:
        now = self._clock()
        if now - self._last >= self._every:
            self._last = now
            self._line()

    def note(self, message: str) -> None:
        super().note(message)
        print(message, file=self._stream, flush=True)

    def close(self) -> None:
        self._line()

    def _line(self) -> None:
        print(
            f"{self.n_submitted}/{self.total} submitted, {self.n_completed} completed, "
            f"{self.n_downloaded} downloaded, {self.postfix()}",
            file=self._stream,
            flush=True,
        )
