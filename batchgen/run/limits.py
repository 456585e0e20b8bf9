"""What bounds a run besides the rate limit and money: jobs in flight at the provider.

``Slots`` counts jobs submitted and not finished (``--concurrency``). Money (``--max-cost``) is
``batchgen.ledger.money``'s committed spend, kept by the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


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
