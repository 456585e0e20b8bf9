"""Progress: the run tells a ``Reporter`` how jobs move; the reporter decides what to show.

A reporter counts the run's jobs by state, from what the ledger held at the start (a resumed
folder starts at its own counts, never at zero) and every move after, plus the folder's money
(``batchgen.ledger.money``). From those it shows one figure set, the same everywhere: jobs
finished of all, running, queued at the provider, waiting to be submitted, downloading,
failed, committed and spent USD, elapsed time and an ETA. The ETA comes from this run's pace
once a job has finished in it, before that from the latency model (expected latency, and how
many jobs run at once).

``Reporter`` shows nothing (library use, tests). ``BarReporter`` draws one live display on a
terminal: a bar of finished jobs, and one status line beneath it, redrawn every second by
``tick`` even when nothing moves; notes and failures print above it, one line each; ``close``
closes it for good, so no stale bar is redrawn on the shell prompt. ``LineReporter`` writes a
timestamped line every so often, for logs, ``nohup``, cron and CI.
"""

from __future__ import annotations

import math
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TextIO

from tqdm import tqdm

from batchgen.api.clock import PROCESS
from batchgen.ledger.states import JobStatus

S = JobStatus
_FINISHED = (S.DONE, S.FAILED, S.CANCELLED)


class Reporter:
    """Counts jobs by state and money, and shows nothing; subclasses show them."""

    def __init__(self, clock: Callable[[], float] = PROCESS.now) -> None:
        self.states: Counter[JobStatus] = Counter()
        self.total = 0
        self.committed: float | None = None
        self.spent: float | None = None
        self.notes: list[str] = []
        self._clock = clock
        self._started = clock()
        self._finished_at_start = 0
        self._latency: float | None = None
        self._concurrency = 1

    def start(
        self,
        states: Mapping[JobStatus, int],
        *,
        latency: float | None = None,
        concurrency: int = 1,
    ) -> None:
        """The run's jobs by state as the ledger holds them; ``latency`` (real seconds) and
        ``concurrency`` feed the ETA until a job finishes in this run."""
        self.states = Counter(states)
        self.total = sum(self.states.values())
        self._finished_at_start = self.finished
        self._latency, self._concurrency = latency, max(1, concurrency)
        self._started = self._clock()
        self._changed()

    def recount(self, states: Mapping[JobStatus, int]) -> None:
        """The run's jobs by state read again from the ledger (another process, such as
        ``batchgen cancel``, may have moved jobs this run never touched)."""
        self.states = Counter(states)
        self.total = sum(self.states.values())
        self._changed()

    def moved(self, before: JobStatus, after: JobStatus) -> None:
        """A job of the run moved from ``before`` to ``after``."""
        if before is after:
            return
        self.states[before] -= 1
        self.states[after] += 1
        self._changed()

    def money(self, committed: float, spent: float) -> None:
        """The folder's committed and spent USD (``batchgen.ledger.money``)."""
        self.committed, self.spent = committed, spent
        self._changed()

    def note(self, message: str) -> None:
        """Something the user should read (a warning, a failure): one line above the display."""
        self.notes.append(message)

    def tick(self) -> None:
        """A second went by: redraw the clock."""

    def close(self) -> None:
        """The run ended: draw the final state and let go of the display."""

    def _changed(self) -> None:
        """Counts changed."""

    # -- the figures --------------------------------------------------------------------------

    @property
    def finished(self) -> int:
        return sum(self.states[s] for s in _FINISHED)

    def figures(self) -> dict[str, int]:
        """Jobs by what a user cares about, in display order."""
        st = self.states
        return {
            "running": st[S.RUNNING] + st[S.CANCELLING],
            "queued": st[S.QUEUED] + st[S.SUBMITTING] + st[S.SUBMIT_UNCERTAIN],
            "pending": st[S.PENDING],  # as status says it
            "downloading": st[S.COMPLETED] + st[S.DOWNLOADING],
            "failed": st[S.FAILED],
        }

    def elapsed(self) -> float:
        return self._clock() - self._started

    def eta(self) -> float | None:
        """Seconds until every job is finished, or None when there is no basis yet."""
        left = self.total - self.finished
        if left <= 0:
            return 0.0
        done_here = self.finished - self._finished_at_start
        if done_here > 0:
            return self.elapsed() / done_here * left
        if self._latency is None:
            return None
        return math.ceil(left / self._concurrency) * self._latency

    def status_line(self, width: int = 200) -> str:
        """The figures as one line, compact when ``width`` is narrow (80 columns fit)."""
        f = self.figures()
        wide = width >= 100
        names = (
            ("running", "queued", "pending", "downloading", "failed")
            if wide
            else ("run", "queue", "pend", "dl", "failed")
        )
        parts = [f"{name} {n}" for name, n in zip(names, f.values(), strict=True)]
        if self.states[S.CANCELLING]:  # asked to stop, not yet ended: they hold their slots
            parts[0] += f" ({self.states[S.CANCELLING]} cancelling)"
        if self.committed is None or self.spent is None:
            return " · ".join(parts)
        committed, spent = f"${self.committed:,.2f}", f"${self.spent:,.2f}"
        if wide:
            return " · ".join([*parts, f"committed {committed}", f"spent {spent}"])
        line = " · ".join([*parts, f"{committed} committed/{spent} spent"])
        return line if len(line) < width else " · ".join([*parts, f"{committed}/{spent}"])

    def times(self) -> str:
        eta = self.eta()
        left = "?" if eta is None else clock_text(eta)
        return f"elapsed {clock_text(self.elapsed())} · eta {left}"


def clock_text(seconds: float) -> str:
    """``1:05`` or ``2:03:04``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class BarReporter(Reporter):
    """One live display on ``stream`` (a terminal): a bar of finished jobs and a status line."""

    def __init__(
        self,
        stream: TextIO,
        clock: Callable[[], float] = PROCESS.now,
        width: Callable[[], int] = lambda: shutil.get_terminal_size().columns,
    ) -> None:
        super().__init__(clock)
        self._stream, self._width = stream, width
        self._bar: Any = None
        self._line: Any = None

    def start(self, states: Mapping[JobStatus, int], **kwargs: Any) -> None:
        common = {"file": self._stream, "dynamic_ncols": True, "leave": True}
        self._bar = tqdm(
            total=sum(states.values()),
            initial=sum(states.get(s, 0) for s in _FINISHED),  # a resume starts where it is
            position=0,
            bar_format="{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {desc}",
            **common,
        )
        self._line = tqdm(total=0, position=1, bar_format="{desc}", **common)
        super().start(states, **kwargs)

    def note(self, message: str) -> None:
        super().note(message)
        if self._bar is not None:
            self._bar.write(message, file=self._stream)
        else:
            print(message, file=self._stream, flush=True)

    def tick(self) -> None:
        self._changed()

    def close(self) -> None:
        if self._bar is None:
            return
        self._changed()
        for bar in (self._bar, self._line):
            bar.close()
        self._bar = self._line = None

    def _changed(self) -> None:
        if self._bar is None:
            return
        self._bar.n = self.finished
        self._bar.set_description_str(self.times(), refresh=False)
        self._bar.refresh()
        self._line.set_description_str(self.status_line(self._width()), refresh=False)
        self._line.refresh()


class LineReporter(Reporter):
    """A timestamped line every ``every`` seconds (and at the end) on ``stream``."""

    def __init__(
        self,
        stream: TextIO,
        every: float = 10.0,
        clock: Callable[[], float] = PROCESS.now,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock)
        self._stream, self._every, self._wall = stream, every, wall
        self._last = float("-inf")

    def note(self, message: str) -> None:
        super().note(message)
        print(message, file=self._stream, flush=True)

    def tick(self) -> None:
        now = self._clock()
        if now - self._last >= self._every:
            self._last = now
            self._write()

    def start(self, states: Mapping[JobStatus, int], **kwargs: Any) -> None:
        super().start(states, **kwargs)
        self._last = self._clock()
        self._write()

    def close(self) -> None:
        self._write()

    def _write(self) -> None:
        stamp = datetime.fromtimestamp(self._wall()).strftime("%H:%M:%S")
        print(
            f"[{stamp}] {self.finished}/{self.total} finished · {self.status_line()} · "
            f"{self.times()}",
            file=self._stream,
            flush=True,
        )
