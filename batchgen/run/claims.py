"""This worker's share of a batch that several ``batchgen run`` processes work together.

With a shared ledger (PostgreSQL) the engine is given no list of jobs: it claims them from the
ledger as it goes (``batchgen.ledger.leases``). ``Claims`` is what it asks:

- ``follow()``: jobs the provider holds, or whose video is paid for, that no live worker
  holds: those of a worker that died, once its leases ran out, and those no worker took yet.
  They are followed by their request id (a job left ``submitting`` becomes
  ``submit_uncertain``), never submitted again;
- ``waiting()``: the next job to submit (``pending``, ``submit_uncertain``), taken only once
  a concurrency slot is free, so no worker sits on jobs another could start;
- ``open_elsewhere()``: whether jobs not at an end are left that this worker does not hold
  (other workers', or free but locked for a moment). A worker with nothing to claim keeps
  looking every ``Timing.heartbeat`` while there are, to take over the jobs of one that
  dies, and ends when none is left;
- ``done_with(row)``: a job this worker will drive no further (not submitted for
  ``--max-cost``, a drain, a submit that kept failing) goes back to the batch; this worker
  does not take it again in this run.

``beat()`` extends this worker's leases every ``Timing.heartbeat``, until ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from batchgen.errors import LedgerError
from batchgen.ledger.leases import Leases
from batchgen.ledger.states import JobRow, JobStatus

S = JobStatus
log = logging.getLogger("batchgen.run")
TO_FOLLOW = (S.QUEUED, S.RUNNING, S.CANCELLING, S.COMPLETED, S.DOWNLOADING, S.SUBMITTING)
TO_SUBMIT = (S.PENDING, S.SUBMIT_UNCERTAIN)
FOLLOW_AT_ONCE = 500  # jobs taken over in one claim


class Claims:
    """The jobs this worker drives, claimed from ``ledger`` (see the module docstring)."""

    __slots__ = ("_ledger", "_passed")

    def __init__(self, ledger: Leases) -> None:
        self._ledger = ledger
        self._passed: set[str] = set()

    def __repr__(self) -> str:
        return f"<Claims passed={len(self._passed)}>"

    def follow(self) -> list[tuple[str, JobStatus]]:
        return self._ledger.claim(TO_FOLLOW, FOLLOW_AT_ONCE)

    def waiting(self) -> str | None:
        got = self._ledger.claim(TO_SUBMIT, 1, skip=self._passed)
        return got[0][0] if got else None

    def open_elsewhere(self) -> bool:
        return self._ledger.open_elsewhere(skip=self._passed) > 0

    def done_with(self, row: JobRow) -> None:
        """``row`` is no longer driven by this worker (see the module docstring)."""
        if row.status.final or row.status is S.DOWNLOADING:  # the pool holds it till it ends
            return
        self._passed.add(row.key)
        self._ledger.release(row.key)

    async def beat(self, every: float, stop: asyncio.Event) -> None:
        """Extend this worker's leases every ``every`` seconds until ``stop`` is set. A beat
        that fails (the database out of reach) is logged: the leases run out, the jobs move
        on to other workers, and this worker's next move on them says so."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                return
            try:  # on the loop's thread: a connection is one transaction at a time
                self._ledger.heartbeat()
            except LedgerError as exc:
                log.warning("heartbeat failed: %s", exc)
