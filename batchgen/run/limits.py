"""What bounds a run besides the rate limit and money: jobs in flight at the provider.

``Slots`` counts jobs submitted and not finished (``--concurrency``), in all and per key: each
key of a pool (a *lane*, named by its ``key_id``) may have its own cap too. Money
(``--max-cost``) is ``batchgen.ledger.money``'s committed spend, kept by the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping


class Slots:
    """Jobs in flight at the provider: at most ``limit`` in all, and at most its own cap in
    each lane (``None``: only the total bounds it). ``acquire`` picks the lane with room that
    is least loaded (its jobs over its cap), the first in order on a tie; a retired lane is
    never picked again. ``take`` never waits: resumed jobs are there already, so after a
    resume with a lower cap the count may exceed it."""

    __slots__ = ("_caps", "_changed", "_lanes", "_retired", "limit", "used")

    def __init__(self, limit: int, lanes: Mapping[str, int | None] | None = None) -> None:
        self.limit, self.used = limit, 0
        self._caps = dict(lanes) if lanes else {"": None}
        self._lanes = dict.fromkeys(self._caps, 0)  # jobs in flight by lane
        self._retired: set[str] = set()
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        if len(self._caps) == 1:
            return f"<Slots {self.used}/{self.limit}>"
        lanes = ", ".join(
            f"{lane}={self._lanes[lane]}/{'-' if cap is None else cap}"
            + (" retired" if lane in self._retired else "")
            for lane, cap in self._caps.items()
        )
        return f"<Slots {self.used}/{self.limit}: {lanes}>"

    @property
    def open(self) -> bool:
        """True while some lane is not retired."""
        return len(self._retired) < len(self._caps)

    async def acquire(self, stopped: Callable[[], bool]) -> str | None:
        """Wait for a free slot and take it: its lane. None (nothing taken) once ``stopped()``
        or when every lane is retired."""
        while not stopped() and self.open:
            lane = self._pick()
            if lane is not None:
                self.take(lane)
                return lane
            self._changed.clear()
            await self._changed.wait()
        return None

    def _pick(self) -> str | None:
        if self.used >= self.limit:
            return None
        best, load = None, 0.0
        for lane, cap in self._caps.items():
            used = self._lanes[lane]
            if lane in self._retired or (cap is not None and used >= cap):
                continue
            mine = used / (cap or self.limit)
            if best is None or mine < load:
                best, load = lane, mine
        return best

    def take(self, lane: str | None = None) -> str:
        """Count a job already in flight in ``lane`` (None, or one not here: the first);
        returns the lane it counts in."""
        held = lane if lane is not None and lane in self._caps else next(iter(self._caps))
        self.used += 1
        self._lanes[held] += 1
        return held

    def release(self, lane: str) -> None:
        self.used -= 1
        self._lanes[lane] -= 1
        self._changed.set()

    def retire(self, lane: str) -> bool:
        """Pick ``lane`` no more; True the first time."""
        if lane in self._retired or lane not in self._caps:
            return False
        self._retired.add(lane)
        self._changed.set()
        return True

    def wake(self) -> None:
        """Make waiters look at ``stopped()`` again."""
        self._changed.set()
