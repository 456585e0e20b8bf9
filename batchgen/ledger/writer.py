"""A run's ledger moves, committed in a thread of their own, many to a transaction.

A run moves each job five times (submitting, queued, completed, downloading, done), and each
move commits (an fsync) before the action it records. Made on the event loop, one transaction
each, those commits are what bounds a run at hundreds of jobs a second. ``LedgerWriter`` hands
them to a thread with its own connection to the ledger (``LedgerStore.twin``); whenever the
thread comes free it takes every move waiting and makes them in one transaction (group
commit: the moves that arrive while one commit runs share the next). Each ``transition``
returns once its own move is committed, so the durability is ``transition``'s: the caller acts
on a move only after it is on disk.

A move the ledger refuses (JobChanged, a move ``TRANSITIONS`` does not allow) raises for its
caller only; a transaction that fails (a full disk) raises for every move in it, and none of
them is made. A caller cancelled while it waits may find its move made or not: as with a
process killed at that instant, the next step reads the ledger, never what it meant to write.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from typing import Any

from batchgen.ledger.base import LedgerStore
from batchgen.ledger.core import Move
from batchgen.ledger.states import JobRow, JobStatus

# Moves in one transaction at most: a bigger backlog takes several, each a short lock.
MOST = 256
# The writer's thread takes the GIL back after every SQLite call; at Python's default switch
# interval (5 ms) a busy event loop keeps it waiting that long each time, and every move with
# it. ``batchgen run`` sets this interval for its process (a library leaves it alone).
SWITCH_INTERVAL = 0.0005

_Waiting = tuple[Move, "asyncio.Future[JobRow]"]


class LedgerWriter:
    """Commits moves of ``ledger``'s jobs from a thread (see the module docstring).
    ``start()`` it in the event loop that will await it and ``await close()`` when done, or
    use it as ``async with``."""

    __slots__ = (
        "_failed",
        "_ledger",
        "_loop",
        "_queue",
        "_ready",
        "_thread",
        "moves",
        "transactions",
    )

    def __init__(self, ledger: LedgerStore) -> None:
        self._ledger = ledger
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self.moves = self.transactions = 0  # moves committed, and in how many transactions

    def __repr__(self) -> str:
        running = "running" if self._thread is not None else "stopped"
        done = f"moves={self.moves} transactions={self.transactions}"
        return f"<LedgerWriter {self._ledger.where} {running} {done}>"

    def start(self) -> None:
        """Open the writing connection in a new thread; raise what opening it raised."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._work, name="batchgen-ledger", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failed is not None:
            self._thread = None
            raise self._failed

    async def transition(
        self, key: str, status: JobStatus, *, expect: JobStatus | None = None, **values: Any
    ) -> JobRow:
        """``LedgerStore.transition``, committed by the writer's thread."""
        return await self.move(key, status, expect=expect, **values)

    def move(
        self, key: str, status: JobStatus, *, expect: JobStatus | None = None, **values: Any
    ) -> asyncio.Future[JobRow]:
        """Hand the writer a move; the future is ``transition``'s outcome. Awaited through
        ``asyncio.shield``, a caller cancelled meanwhile may still learn how its move ended."""
        assert self._loop is not None, "start() the writer first"
        future: asyncio.Future[JobRow] = self._loop.create_future()
        self._queue.put((Move(key, status, expect, values), future))
        return future

    async def __aenter__(self) -> LedgerWriter:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Commit what is waiting, then stop the thread and close its connection."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(thread.join)

    def _work(self) -> None:
        try:
            ledger = self._ledger.twin()
        except BaseException as exc:
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        with ledger:
            while True:
                batch = [self._queue.get()]
                while len(batch) < MOST:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                waiting = [item for item in batch if item is not None]
                if waiting:
                    self._commit(ledger, waiting)
                if len(waiting) < len(batch):
                    return

    def _commit(self, ledger: LedgerStore, waiting: list[_Waiting]) -> None:
        outcomes: list[JobRow | BaseException]
        try:
            outcomes = list(ledger.transitions([move for move, _ in waiting]))
            self.transactions += 1
            self.moves += len(waiting)
        except BaseException as exc:
            outcomes = [exc] * len(waiting)
        futures = [future for _, future in waiting]
        settled = list(zip(futures, outcomes, strict=True))
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self._loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[JobRow], JobRow | BaseException]]) -> None:
    for future, outcome in settled:
        if future.cancelled():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
