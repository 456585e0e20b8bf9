"""A batch's ledger in PostgreSQL, shared by every worker (``batchgen run``) that works on it.

``PgLedger`` is ``SqlLedger`` (every read and move, in the SQL SQLite runs too) over a psycopg 3
connection whose ``search_path`` is the batch's own schema (see ``batchgen.ledger.pg_schema``).
Each call that changes something is one transaction, committed before it returns, as on SQLite.
A move locks the job's row (``SELECT ... FOR UPDATE``) and, for a worker, checks that no other
worker holds the job's claim (``batchgen.ledger.leases``): a worker whose lease ran out and
was taken over can no longer move the job. A job that reaches a final state drops its claim.
Opened with ``max_cost``, a move to ``submitting`` is refused when it would take the batch's
committed spend above it (``batchgen.ledger.budget``).

Errors: a URL that does not connect (bad host, refused, wrong password) or a batch that is not
there is a UsageError (``batchgen`` exits 2); a connection lost later is a LedgerError. Both
name the database by its masked URL: the password is in no message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from batchgen.errors import BatchgenError, JobChanged, LedgerError, UsageError
from batchgen.ledger.budget import Budget
from batchgen.ledger.core import NAMES, Move, SqlLedger, storable
from batchgen.ledger.leases import Leases
from batchgen.ledger.pg_schema import BATCHES, MIGRATIONS, SCHEMA_LOCK, script
from batchgen.ledger.shared import Worker, masked, scrub
from batchgen.ledger.states import JobStatus

CONNECT_TIMEOUT = 10  # seconds: a server that does not answer is named, not waited on
_FINAL = tuple(s.value for s in JobStatus if s.final)


class PgLedger(Leases, Budget, SqlLedger):
    """The jobs of batch ``batch`` in the PostgreSQL database at ``url``. ``worker``: the run
    this connection drives jobs for (claims are checked for it); ``lease``: seconds a claim
    holds without a heartbeat; ``max_cost``: the cap on the batch's committed USD that its
    submits are held to."""

    __slots__ = (
        "_clock",
        "_columns",
        "_cursors",
        "_db",
        "_url",
        "batch",
        "batch_id",
        "lease",
        "max_cost",
        "worker",
    )

    def __init__(
        self,
        url: str,
        batch: str,
        *,
        readonly: bool = False,
        worker: Worker | None = None,
        lease: float = 60.0,
        clock: Callable[[], float] = time.time,
        max_cost: float | None = None,
    ) -> None:
        self._url, self.batch, self.worker, self.lease = url, batch, worker, lease
        self.max_cost = max_cost
        self._clock = clock
        self._columns = ", ".join(NAMES)
        self._cursors = 0
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise UsageError(
                f"cannot reach the ledger at {masked(url)}: {self._plain(exc)}"
            ) from None
        try:
            schema = self._open(readonly)
            self.batch_id = int(schema.removeprefix("b_"))
            self._db.execute(f'SET search_path TO "{schema}"')
            if readonly:
                self._db.execute("SET default_transaction_read_only = on")
        except psycopg.Error as exc:
            self._db.close()
            raise UsageError(f"{self.where}: {self._plain(exc)}") from None
        except BatchgenError:
            self._db.close()
            raise

    @property
    def where(self) -> str:
        return f"batch {self.batch!r} at {masked(self._url)}"

    def __repr__(self) -> str:
        return f"<PgLedger {self.where}>"

    def reader(self) -> PgLedger:
        """Another connection to this batch, read-only (for a thread of its own)."""
        return PgLedger(self._url, self.batch, readonly=True, clock=self._clock)

    def twin(self) -> PgLedger:
        """Another connection to this batch, for the same worker, to write from a thread."""
        return PgLedger(
            self._url,
            self.batch,
            worker=self.worker,
            lease=self.lease,
            clock=self._clock,
            max_cost=self.max_cost,
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PgLedger:
        return self

    def _plain(self, exc: BaseException) -> str:
        """A driver's message on one line, the password taken out."""
        return scrub(" ".join(str(exc).split()), self._url) or type(exc).__name__

    def _open(self, readonly: bool) -> str:
        """The batch's schema, created and brought up to date unless ``readonly``."""
        db = self._db
        if readonly:
            known = db.execute("SELECT to_regclass('batchgen.batches')").fetchone()
            row = None
            if known and known[0]:
                row = db.execute(
                    "SELECT id FROM batchgen.batches WHERE name = %s", (self.batch,)
                ).fetchone()
            if row is None:
                raise UsageError(f"no batch {self.batch!r} in the ledger at {masked(self._url)}")
            return f"b_{row[0]}"
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            script(db, BATCHES)
            db.execute(
                "INSERT INTO batchgen.batches (name, created_at) VALUES (%s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (self.batch, self._clock()),
            )
            row = db.execute(
                "SELECT id, version FROM batchgen.batches WHERE name = %s", (self.batch,)
            ).fetchone()
            assert row is not None
            schema, done = f"b_{row[0]}", row[1]
            db.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            db.execute(f'SET LOCAL search_path TO "{schema}"')
            for migration in MIGRATIONS[done:]:
                migration(db)
            db.execute(
                "UPDATE batchgen.batches SET version = %s WHERE id = %s",
                (len(MIGRATIONS), row[0]),
            )
        return schema

    # -- what SqlLedger asks of a backend -------------------------------------------------

    _FILE_PARAMS = (
        "SELECT f.key FROM jobs, jsonb_each(jobs.files::jsonb) AS f "
        "WHERE jobs.files IS NOT NULL GROUP BY f.key ORDER BY MIN(jobs.position)"
    )
    _ORDER = "seq"

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction; the driver's errors come out as LedgerError."""
        try:
            with self._db.transaction():
                yield self._db
        except psycopg.Error as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: psycopg.Error) -> LedgerError:
        return LedgerError(f"{self.where}: {self._plain(exc)}")

    def _query(self, db: Any, sql: str, args: Iterable[Any] = ()) -> Any:
        values = tuple(args)
        try:
            return db.execute(sql.replace("?", "%s"), values)
        except UnicodeEncodeError:  # refused before it was sent: a name no encoding holds
            return db.execute(sql.replace("?", "%s"), storable(values))

    def _guarded(self, db: Any, sql: str, args: tuple[Any, ...]) -> bool:
        # In a savepoint: a refused statement would otherwise abort the whole transaction.
        try:
            with db.transaction():
                self._query(db, sql, args)
        except psycopg.errors.UniqueViolation:
            return False
        return True

    def _many(self, db: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            with db.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), rows)

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            rows: list[tuple[Any, ...]] = self._query(self._db, sql, args).fetchall()
        except psycopg.Error as exc:
            raise self._failure(exc) from None
        return rows

    def _stream(self, sql: str) -> Iterator[tuple[Any, ...]]:
        # A server-side cursor in a transaction of its own: one snapshot, read in pages.
        self._cursors += 1
        try:
            with (
                self._db.transaction(),
                self._db.cursor(name=f"batchgen_{self._cursors}") as cursor,
            ):
                cursor.itersize = 2000
                cursor.execute(sql)
                yield from cursor
        except psycopg.Error as exc:
            raise self._failure(exc) from None

    def _before_sync(self, db: Any) -> None:
        # Workers starting together sync one after another (each sees the others' keys);
        # readers go on, moves wait the moment it takes.
        db.execute("LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE")

    def _before_moves(self, db: Any, moves: Sequence[Move]) -> None:
        # What the move's UPDATE takes anyway, taken first: a SELECT ... FOR UPDATE alone
        # takes less, so a sync could lock the table between it and the UPDATE, then wait
        # for the row the move holds (a deadlock). Now the move waits for the sync, or the
        # sync for the move.
        db.execute("LOCK TABLE jobs IN ROW EXCLUSIVE MODE")
        super()._before_moves(db, moves)  # the batch's money lock (Budget), when capped

    def _lock_jobs(self, db: Any, keys: list[str]) -> dict[str, tuple[str, int] | JobChanged]:
        rows = db.execute(
            "SELECT key, status, attempts, owner FROM jobs WHERE key = ANY(%s) "
            'ORDER BY key COLLATE "C" FOR UPDATE',
            (keys,),
        ).fetchall()
        me = None if self.worker is None else self.worker.id
        return {
            key: (status, attempts)
            if me is None or owner is None or owner == me
            else JobChanged(f"job {key}: claimed by another worker ({owner})")
            for key, status, attempts, owner in rows
        }

    def _also(self, values: dict[str, Any]) -> dict[str, Any]:
        # A job at its end needs no driver: its claim goes (a later --retry-failed may be
        # driven by any worker).
        if values.get("status") in _FINAL:
            return {"owner": None, "lease_until": None}
        return {}
