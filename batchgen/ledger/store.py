"""The durable ledger of an output folder: ``DIR/batchgen.db``, SQLite in WAL mode.

One row per job. Job status is an enum whose allowed transitions are written once, in
``TRANSITIONS``; the ledger refuses any other. Every call that changes state commits before it
returns (``synchronous=FULL``), so the caller may act on it: mark a job ``submitting`` before its
POST, record its ``request_id`` the moment the answer arrives. A process killed at any instant
leaves a ledger that a later run resumes from.

Several processes may open one ledger (``batchgen status`` reads a live run's ledger); writes are
serialised by SQLite.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

from batchgen.errors import (
    BatchgenError,
    DiskError,
    JobChanged,
    LedgerError,
    UsageError,
    out_of_files,
    too_many_open_files,
)
from batchgen.ledger.core import NAMES, SqlLedger, SyncReport, storable
from batchgen.ledger.migrations import MIGRATIONS

LEDGER_NAME = "batchgen.db"
__all__ = ["LEDGER_NAME", "Ledger", "SyncReport"]


class Ledger(SqlLedger):
    """The jobs of one output folder (and the files uploaded for them, see ``UploadCache``),
    in ``DIR/batchgen.db``. Each method commits before it returns; what it does is
    ``SqlLedger``'s, shared with the PostgreSQL ledger."""

    __slots__ = ("_clock", "_columns", "_db", "path")

    def __init__(
        self, path: str | Path, *, readonly: bool = False, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        if readonly and not self.path.exists():
            raise LedgerError(f"no ledger at {self.path}: is this a batchgen output folder?")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # By path, never by an unescaped URI: a folder named "a#b" or "50%" is a folder; its
            # bytes are quoted, so a name the locale cannot encode opens too.
            uri = f"file:{quote(os.fsencode(self.path))}?mode=ro"
            target = uri if readonly else str(self.path)
            self._db = sqlite3.connect(target, uri=readonly, isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        try:
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if "unable to open" in str(exc) and out_of_files() is not None:  # not the file's
                raise self._failure(exc) from None
            raise self._not_a_ledger(str(exc)) from None
        if (tables or readonly) and "jobs" not in tables:
            self._db.close()
            raise self._not_a_ledger("it holds no jobs table")
        if not readonly:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                self._db.close()
                raise self._failure(exc) from None
            self._migrate()
        # A folder an older batchgen wrote is read as it is (only a writer migrates it): the
        # columns it does not have yet read as NULL.
        have = {r[1] for r in self._db.execute("PRAGMA table_info(jobs)")}
        self._columns = ", ".join(name if name in have else f"NULL AS {name}" for name in NAMES)

    _FILE_PARAMS = (
        "SELECT f.key FROM jobs, json_each(jobs.files) AS f "
        "WHERE jobs.files IS NOT NULL GROUP BY f.key ORDER BY MIN(jobs.position)"
    )

    @property
    def where(self) -> str:
        return str(self.path)

    def reader(self) -> Ledger:
        """Another connection to this ledger, read-only (for a thread of its own)."""
        return Ledger(self.path, readonly=True)

    def twin(self) -> Ledger:
        """Another connection to this ledger, to write from a thread of its own."""
        return Ledger(self.path, clock=self._clock)

    def file_params(self) -> list[str]:
        if "NULL AS files" in self._columns:  # a folder an older batchgen wrote
            return []
        return super().file_params()

    def _query(self, db: sqlite3.Connection, sql: str, args: Iterable[Any] = ()) -> Any:
        values = tuple(args)
        try:
            return db.execute(sql, values)
        except UnicodeEncodeError:  # refused before it ran: a name no encoding holds
            return db.execute(sql, storable(values))

    def _many(self, db: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
        db.executemany(sql, rows)

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, tuple(args)).fetchall()

    def _stream(self, sql: str) -> Iterator[tuple[Any, ...]]:
        yield from self._db.execute(sql)

    def _lock_jobs(
        self, db: sqlite3.Connection, keys: list[str]
    ) -> dict[str, tuple[str, int] | JobChanged]:
        # BEGIN IMMEDIATE has locked the whole file: one writer at a time.
        marks = ", ".join("?" * len(keys))
        sql = f"SELECT key, status, attempts FROM jobs WHERE key IN ({marks})"
        return {key: (status, attempts) for key, status, attempts in db.execute(sql, keys)}

    def _not_a_ledger(self, why: str) -> UsageError:
        return UsageError(
            f"{self.path} is not a batchgen ledger ({why}); move it away if it is not yours, "
            "or restore it from a backup"
        )

    def _failure(self, exc: sqlite3.Error) -> BatchgenError:
        """An SQLite error as one of batchgen's: a full or failing disk is a DiskError."""
        text = str(exc)
        if "unable to open" in text and (code := out_of_files()) is not None:
            return DiskError(str(self.path), too_many_open_files(code), code)
        if "full" in text or "I/O" in text or "readonly" in text or "unable to open" in text:
            return DiskError(str(self.path), text)
        if "locked" in text or "busy" in text:
            return LedgerError(f"{self.path} stayed locked by another process: {text}")
        return LedgerError(f"{self.path}: {text}")

    @classmethod
    def in_folder(cls, folder: str | Path, *, readonly: bool = False) -> Ledger:
        return cls(Path(folder) / LEDGER_NAME, readonly=readonly)

    def _migrate(self) -> None:
        with self._tx():
            done = self._db.execute("PRAGMA user_version").fetchone()[0]
            for number, migration in enumerate(MIGRATIONS[done:], start=done + 1):
                migration(self._db)
                self._db.execute(f"PRAGMA user_version={number}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; SQLite's errors come out as DiskError or LedgerError."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # a failed COMMIT (disk full) leaves it open
                    with suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise self._failure(exc) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Ledger {self.path}>"
