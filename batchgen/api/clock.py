"""The time a process actually ran, and deadlines that count only that time.

A laptop lid closed, ``Ctrl-Z`` then ``fg``, a paused VM or container: the process stops, the
world goes on. Answers the provider sent meanwhile wait in the socket. On waking, a deadline
timed on ``time.monotonic`` has expired, and asyncio runs its timer before the task reading
the socket gets a turn: a submit whose answer arrived would be called lost, and sent again.

``RunClock`` keeps the time the event loop did not run (``paused``): a gap between two of its
own looks that is far longer than it should be. ``watch`` looks every ``tick`` seconds while a
run goes (and says once, after each pause, how long it was); anything else that finds the loop
late (a deadline's timer firing long after it was due) reports the lateness, so a pause counts
once, whoever sees it first. ``now()`` is monotonic time less the pauses: timeouts, ETAs and
learned latencies read it. A system suspend stops the monotonic clock itself (Linux), so it
never counts; ``watch`` still notices it, from the wall clock jumping ahead, and says so.

``deadline(seconds)`` is ``asyncio.timeout`` on that clock: when its timer fires after a
pause, it is set again for the run time still left, and whatever arrived meanwhile is read
first. Only a deadline whose run time is really spent expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

# A gap this much longer than expected is a pause, not a busy loop's ordinary lateness.
PAUSE_AFTER = 3.0
# A deadline's timer this late (seconds) first lets the loop read what arrived meanwhile.
LATE = 0.5
SETTLE = 0.1


class RunClock:
    """Monotonic time less the pauses seen (see the module docstring)."""

    __slots__ = (
        "_alive",
        "_mono",
        "_wall",
        "_watching",
        "notify",
        "paused",
        "threshold",
        "tick",
    )

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        tick: float = 0.5,
        threshold: float = PAUSE_AFTER,
    ) -> None:
        self._mono, self._wall = monotonic, wall
        self.tick, self.threshold = tick, threshold
        self.paused = 0.0  # seconds the loop did not run, in all
        self._alive = monotonic()  # when the loop was last seen running
        self._watching = 0
        self.notify: Callable[[str], None] | None = None

    def __repr__(self) -> str:
        return f"<RunClock paused={self.paused:.1f}s watching={self._watching > 0}>"

    def now(self) -> float:
        """Seconds of run time, on an arbitrary origin (only differences mean anything)."""
        self.check()
        return self._mono() - self.paused

    def check(self, late: float = 0.0) -> float:
        """Count a pause that ended just now, if there was one; return its length (0 if none).

        ``late``: how long after it was due a timer fired (what a caller without ``watch``
        knows of the loop's lag). While ``watch`` runs, the gap since its last look is the
        measure, less the tick it sleeps between looks."""
        now = self._mono()
        gap = now - self._alive
        self._alive = now
        pause = gap - self.tick if self._watching else min(gap, late)
        if pause <= self.threshold:
            return 0.0
        self.paused += pause
        self._say(pause, "the process was stopped")
        return pause

    async def watch(self, stop: asyncio.Event) -> None:
        """Look at the clocks every ``tick`` until ``stop``: pauses are counted as they end,
        and each is told once (``notify``), a system suspend too."""
        self._watching += 1
        self._alive = self._mono()
        try:
            while not stop.is_set():
                mono, wall = self._mono(), self._wall()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick)
                self.check()
                # Monotonic time stops in a system suspend; the wall clock does not.
                jump = (self._wall() - wall) - (self._mono() - mono)
                if jump > self.threshold:
                    self._say(jump, "the computer slept, or its clock was set forward")
        finally:
            self._watching -= 1

    @contextlib.asynccontextmanager
    async def deadline(self, seconds: float | None) -> AsyncIterator[None]:
        """``asyncio.timeout(seconds)`` counting only the time the loop ran (None: no limit).
        Raises TimeoutError when the run time is spent."""
        loop = asyncio.get_running_loop()
        start = self.now()
        async with asyncio.timeout(None) as limit:
            handle: asyncio.TimerHandle | None = None

            def arm(left: float) -> None:
                nonlocal handle
                due = loop.time() + left
                handle = loop.call_at(due, fire, due)

            def fire(due: float, settled: bool = False) -> None:
                nonlocal handle
                late = loop.time() - due
                self.check(late=late)
                left = seconds - (self.now() - start) if seconds is not None else 0.0
                if left > 0:
                    arm(left)  # a pause ate into it: what arrived meanwhile is read first
                elif late > LATE and not settled:
                    # The loop did not run for a while: answers that came meanwhile wait
                    # behind this timer. Let them be read before calling anything lost.
                    handle = loop.call_at(loop.time() + SETTLE, fire, loop.time() + SETTLE, True)
                else:
                    limit.reschedule(loop.time())

            if seconds is not None:
                arm(max(0.0, seconds))
            try:
                yield
            finally:
                if handle is not None:
                    handle.cancel()

    def _say(self, seconds: float, why: str) -> None:
        if self.notify is not None:
            self.notify(
                f"paused for {duration_text(seconds)} ({why}); timeouts and the ETA count "
                "only the time it ran, and every job in flight is looked at again"
            )


def duration_text(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``7 h 12 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


# The process's own: pauses stop the whole process, so one record serves every part of it.
PROCESS = RunClock()
