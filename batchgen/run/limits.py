"""What bounds a run besides the rate limit: jobs in flight at the provider, and money.

``Slots`` counts jobs submitted and not finished (``--concurrency``). ``estimated_spend`` is the
estimated USD of an output folder's jobs that hold, or may hold, a paid job (``--max-cost``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from batchgen.ledger.states import IN_FLIGHT, JobRow, JobStatus

S = JobStatus
# Jobs that hold, or may hold, a billable job at the provider. A job sent back to pending
# after a transient (5xx) failure holds none: fal bills no 5xx.
SPENDING = IN_FLIGHT | {S.DONE}


def estimated_spend(rows: Iterable[JobRow]) -> float:
    """USD of the jobs that hold or may hold a paid job, plus failed jobs that ran."""
    total = 0.0
    for row in rows:
        if row.status in SPENDING or (row.status is S.FAILED and row.request_id):
            total += row.cost_usd or 0.0
    return round(total, 6)


class Slots:
    """Jobs in flight at the provider. ``take`` never waits: resumed jobs are there already,
    so after a resume with a lower ``--concurrency`` the count may exceed the limit."""

    __slots__ = ("_changed", "limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Slots {self.used}/{self.limit}>"

    async def acquire(self, stopped: Callable[[], bool]) -> bool:
        """Wait for a free slot and take it; False (nothing taken) once ``stopped()``."""
        while self.used >= self.limit and not stopped():
            self._changed.clear()
            await self._changed.wait()
        if stopped():
            return False
        self.used += 1
        return True

    def take(self) -> None:
        self.used += 1

    def release(self) -> None:
        self.used -= 1
        self._changed.set()

    def wake(self) -> None:
        """Make waiters look at ``stopped()`` again."""
        self._changed.set()
