"""Claims on a shared batch's jobs: which worker drives which job, for how long.

Several ``batchgen run`` processes work one PostgreSQL batch. A worker drives a job only while
it holds the job's claim: ``owner`` (its worker id) and ``lease_until`` (the database's clock,
Unix seconds). ``claim`` takes jobs nobody holds, or whose lease ran out, atomically
(``SELECT ... FOR UPDATE SKIP LOCKED``: two workers never take the same job, and neither waits
for the other); ``heartbeat`` extends every lease the worker holds. A worker that dies
(SIGKILL, a lost machine) stops beating: its leases run out and other workers claim its jobs,
following those submitted by their request id, never submitting them again. A job whose
worker died while it was ``submitting`` is ``submit_uncertain`` for its next worker, as after
a crash on one machine.

Every move a worker makes checks the claim in the move's own transaction
(``PgLedger._lock_jobs``), so a worker that stalled past its lease and was taken over cannot
move the job any more. ``release`` gives a job back (the worker will not drive it further);
``leave`` gives back all of them when the run ends. Mixed into ``PgLedger``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from batchgen.ledger.access import SqlAccess
from batchgen.ledger.shared import Worker
from batchgen.ledger.states import JobStatus

NOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"  # the database's clock: one for all
_OPEN = tuple(s.value for s in JobStatus if not s.final)
# Jobs a worker may take: not at an end; a pending one only while its row is in the input.
_TAKEABLE = "status = ANY(?) AND (in_input = 1 OR status <> 'pending')"
# The rows a worker holds, locked in key order: as moves lock them (``SqlLedger.transitions``),
# so a heartbeat or a leave never deadlocks with a move on the worker's other connection.
_MINE = 'key IN (SELECT key FROM jobs WHERE owner = ? ORDER BY key COLLATE "C" FOR UPDATE)'


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker as the batch knows it; ``seen_s``: seconds since its last heartbeat."""

    id: str
    host: str
    pid: int
    folder: str
    started_at: float
    seen_s: float
    ended: bool


class Leases(SqlAccess):
    """Claims on jobs, for ``worker`` (see the module docstring)."""

    __slots__ = ()
    worker: Worker | None
    lease: float

    def _me(self) -> Worker:
        if self.worker is None:
            raise RuntimeError("this ledger was opened for no worker")
        return self.worker

    def join(self) -> None:
        """Say that this worker works on the batch (``workers``), as of now."""
        me = self._me()
        with self._tx() as db:
            self._query(
                db,
                "INSERT INTO workers (id, host, pid, folder, started_at, seen_at) "
                f"VALUES (?, ?, ?, ?, {NOW}, {NOW})",
                (me.id, me.host, me.pid, me.folder),
            )

    def claim(
        self, statuses: Iterable[JobStatus], limit: int, *, skip: Iterable[str] = ()
    ) -> list[tuple[str, JobStatus]]:
        """Take up to ``limit`` jobs in ``statuses`` that no live lease holds (not those in
        ``skip``), in input order: their keys and statuses, now this worker's."""
        me = self._me()
        wanted = [JobStatus(s).value for s in statuses]
        with self._tx() as db:
            taken = self._query(
                db,
                f"UPDATE jobs SET owner = ?, lease_until = {NOW} + ? WHERE key IN ("
                f"SELECT key FROM jobs WHERE {_TAKEABLE} "
                f"AND (owner IS NULL OR lease_until < {NOW}) AND NOT (key = ANY(?)) "
                "ORDER BY position LIMIT ? FOR UPDATE SKIP LOCKED) "
                "RETURNING key, status, position",
                (me.id, self.lease, wanted, list(skip), limit),
            ).fetchall()
        return [(key, JobStatus(status)) for key, status, _ in sorted(taken, key=lambda r: r[2])]

    def heartbeat(self) -> int:
        """Extend every lease this worker holds by ``lease`` from now; how many it holds.

        Rows are locked in key order, as moves lock them (``SqlLedger.transitions``): the
        worker's moves commit on a connection of their own, and two transactions that lock
        the same rows in the same order cannot deadlock."""
        me = self._me()
        with self._tx() as db:
            held: int = self._query(
                db,
                f"UPDATE jobs SET lease_until = {NOW} + ? WHERE {_MINE}",
                (self.lease, me.id),
            ).rowcount
            self._query(db, f"UPDATE workers SET seen_at = {NOW} WHERE id = ?", (me.id,))
        return held

    def release(self, key: str) -> None:
        """Give ``key`` back, if this worker holds it: any worker may take it."""
        with self._tx() as db:
            self._query(
                db,
                "UPDATE jobs SET owner = NULL, lease_until = NULL WHERE key = ? AND owner = ?",
                (key, self._me().id),
            )

    def leave(self) -> None:
        """Give back every job this worker holds, and say it has ended."""
        me = self._me()
        with self._tx() as db:
            self._query(
                db, f"UPDATE jobs SET owner = NULL, lease_until = NULL WHERE {_MINE}", (me.id,)
            )
            self._query(db, f"UPDATE workers SET ended_at = {NOW} WHERE id = ?", (me.id,))

    def open_elsewhere(self, skip: Iterable[str] = ()) -> int:
        """Jobs a worker may yet drive that this one does not hold (nor ``skip``): held by
        other workers, or by none (free now, or locked by a move under way)."""
        me = self.worker.id if self.worker is not None else ""
        rows = self._read(
            f"SELECT COUNT(*) FROM jobs WHERE {_TAKEABLE} AND (owner IS NULL OR owner <> ?) "
            "AND NOT (key = ANY(?))",
            (list(_OPEN), me, list(skip)),
        )
        return int(rows[0][0])

    def held_by(self, worker_id: str) -> list[str]:
        """The keys of the jobs not at an end that worker ``worker_id`` holds."""
        rows = self._read(
            "SELECT key FROM jobs WHERE owner = ? AND status = ANY(?) ORDER BY position",
            (worker_id, list(_OPEN)),
        )
        return [row[0] for row in rows]

    def workers(self) -> list[WorkerInfo]:
        """Every worker that joined the batch, the latest first."""
        rows = self._read(
            f"SELECT id, host, pid, folder, started_at, {NOW} - seen_at, ended_at IS NOT NULL "
            "FROM workers ORDER BY started_at DESC"
        )
        return [WorkerInfo(*row) for row in rows]
