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

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

from batchgen.errors import BatchgenError, DiskError, JobChanged, LedgerError, UsageError
from batchgen.ledger.migrations import MIGRATIONS
from batchgen.ledger.states import FIELDS, TRANSITIONS, JobRow, JobStatus
from batchgen.ledger.uploads import UploadCache

LEDGER_NAME = "batchgen.db"


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What ``Ledger.sync`` found: new keys added, known keys kept, keys no longer in input."""

    added: int
    kept: int
    orphaned: list[str]


class Ledger(UploadCache):
    """The jobs of one output folder (and the files uploaded for them, see ``UploadCache``).
    Each method commits before it returns."""

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
            # By path, never by an unescaped URI: a folder named "a#b" or "50%" is a folder.
            target = f"file:{quote(str(self.path))}?mode=ro" if readonly else str(self.path)
            self._db = sqlite3.connect(target, uri=readonly, isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        self._db.row_factory = sqlite3.Row
        try:
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            self._db.close()
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
        self._columns = ", ".join(name if name in have else f"NULL AS {name}" for name in _NAMES)

    def _not_a_ledger(self, why: str) -> UsageError:
        return UsageError(
            f"{self.path} is not a batchgen ledger ({why}); move it away if it is not yours, "
            "or restore it from a backup"
        )

    def _failure(self, exc: sqlite3.Error) -> BatchgenError:
        """An SQLite error as one of batchgen's: a full or failing disk is a DiskError."""
        text = str(exc)
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

    # -- plan ----------------------------------------------------------------------------

    def sync(
        self, jobs: Iterable[Any], endpoint: str = "", *, occupied: Iterable[str] = ()
    ) -> SyncReport:
        """Add the plan's jobs (``plan.Job``) not yet known; keep the known ones as they are.

        Each job runs on its own ``endpoint`` (``endpoint`` here is for jobs without one).

        Keys in the ledger but not in ``jobs`` are left untouched, flagged ``in_input=0``.
        The input order becomes the ledger's order (``position``). A file name is reserved
        for its key for good: a known key keeps its name, and a new key whose planned name
        another key holds, or that names a file in ``occupied`` (already on disk), gets one
        with its key added, so no video is ever written over another job's.
        """
        now = self._clock()
        added = kept = 0
        with self._tx() as db:
            held = db.execute("SELECT key, filename FROM jobs").fetchall()
            known = {key for key, _ in held}
            taken = {name.lower() for _, name in held} | {name.lower() for name in occupied}
            db.execute("UPDATE jobs SET in_input = 0")
            for position, job in enumerate(jobs):
                files = _files_json(job)
                if job.key in known:
                    kept += 1
                    db.execute(
                        "UPDATE jobs SET in_input = 1, position = ?, row = ?, line = ?, "
                        "extra = ?, filename = COALESCE(filename, ?), "
                        "files = COALESCE(?, files) WHERE key = ?",
                        (
                            position,
                            job.row,
                            job.line,
                            _json(job.extra),
                            job.filename,
                            files,
                            job.key,
                        ),
                    )
                    continue
                added += 1
                filename = _free_name(job.filename, job.key, taken)
                taken.add(filename.lower())
                db.execute(
                    "INSERT INTO jobs (key, position, row, line, repeat, endpoint, payload, "
                    "extra, filename, status, cost_usd, updated_at, files) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job.key,
                        position,
                        job.row,
                        job.line,
                        job.repeat,
                        getattr(job, "endpoint", "") or endpoint,
                        _json(job.payload),
                        _json(job.extra),
                        filename,
                        JobStatus.PENDING.value,
                        job.cost_usd,
                        now,
                        files,
                    ),
                )
            orphaned = [
                r[0]
                for r in db.execute("SELECT key FROM jobs WHERE in_input = 0 ORDER BY position")
            ]
        return SyncReport(added=added, kept=kept, orphaned=orphaned)

    def restore(
        self,
        states: Iterable[dict[str, Any]],
        endpoint: str,
        orphans: dict[str, tuple[int, dict[str, Any], str | None]],
    ) -> int:
        """Put back the state of jobs a lost ledger held (see ``batchgen.ledger.rebuild``).

        ``states`` are ``restored()`` field sets; a key the plan did not add is inserted from
        ``orphans`` (its row, payload and endpoint, else ``endpoint``), as no longer in the
        input. This writes states as
        they were, not as moves: it is the one place ``TRANSITIONS`` does not apply. Returns
        how many jobs were restored.
        """
        now = self._clock()
        count = 0
        with self._tx() as db:
            known = {r[0] for r in db.execute("SELECT key FROM jobs")}
            position = db.execute("SELECT COALESCE(MAX(position), -1) FROM jobs").fetchone()[0]
            for state in states:
                key = state["key"]
                if key not in known:
                    if key not in orphans:
                        continue
                    row, payload, its_endpoint = orphans[key]
                    position += 1
                    db.execute(
                        "INSERT INTO jobs (key, position, row, repeat, endpoint, payload, extra, "
                        "filename, status, updated_at, in_input) "
                        "VALUES (?, ?, ?, 0, ?, ?, '{}', ?, ?, ?, 0)",
                        (
                            key,
                            position,
                            row,
                            its_endpoint or endpoint,
                            _json(payload),
                            f"restored-{key}.mp4",
                            JobStatus.PENDING.value,
                            now,
                        ),
                    )
                fields = {k: v for k, v in state.items() if k != "key"}
                fields["status"] = fields["status"].value
                path = fields.get("video_path")
                if path:  # the file the manifest names is this job's: keep its name
                    db.execute("UPDATE jobs SET filename = ? WHERE key = ?", (Path(path).name, key))
                self._write(db, key, fields, fields.get("attempts", 0))
                count += 1
        return count

    # -- reading -------------------------------------------------------------------------

    def _plain(self) -> sqlite3.Cursor:
        """A cursor that yields plain tuples: much faster than sqlite3.Row for big reads."""
        cursor = self._db.cursor()
        cursor.row_factory = None
        return cursor

    def get(self, key: str) -> JobRow:
        sql = f"SELECT {self._columns} FROM jobs WHERE key = ?"
        row = self._plain().execute(sql, (key,)).fetchone()
        if row is None:
            raise LedgerError(f"no job with key {key!r} in {self.path}")
        return _row(row)

    def jobs(
        self, statuses: Iterable[JobStatus] | None = None, *, in_input_only: bool = False
    ) -> list[JobRow]:
        """Jobs in input order, optionally only those in ``statuses``."""
        sql, args = f"SELECT {self._columns} FROM jobs", []
        where = []
        if statuses is not None:
            wanted = [s.value for s in statuses]
            where.append(f"status IN ({','.join('?' * len(wanted))})")
            args.extend(wanted)
        if in_input_only:
            where.append("in_input = 1")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_row(r) for r in self._plain().execute(sql + " ORDER BY position", args)]

    def iter_jobs(self) -> Iterator[JobRow]:
        """Every job in input order, read as it is consumed: constant memory for any ledger.

        One SELECT, so what it yields is one consistent snapshot of the ledger.
        """
        for row in self._plain().execute(f"SELECT {self._columns} FROM jobs ORDER BY position"):
            yield _row(row)

    def counts(self) -> dict[JobStatus, int]:
        """Number of jobs in each status (every status present, zero or more)."""
        counts = dict.fromkeys(JobStatus, 0)
        for status, n in self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            counts[JobStatus(status)] = n
        return counts

    def requests(self, key: str) -> list[str]:
        """Every request id ``key`` was ever given, oldest first (in the order written:
        ``attempts`` restarts when ``run --retry-failed`` reopens a job)."""
        return [
            r[0]
            for r in self._db.execute(
                "SELECT request_id FROM requests WHERE key = ? ORDER BY rowid",
                (key,),
            )
        ]

    def file_params(self) -> list[str]:
        """The parameters some job names a local file for, in input order."""
        if "NULL AS files" in self._columns:  # a folder an older batchgen wrote
            return []
        return [
            r[0]
            for r in self._db.execute(
                "SELECT f.key FROM jobs, json_each(jobs.files) AS f "
                "WHERE jobs.files IS NOT NULL GROUP BY f.key ORDER BY MIN(jobs.position)"
            )
        ]

    def first_request(self) -> tuple[str, str] | None:
        """The (key, request id) of the folder's first request at the provider, or None.

        Request ids are never rewritten, so this names the batch for good once anything was
        sent: two folders of the same input differ here.
        """
        row = self._db.execute(
            "SELECT key, request_id FROM requests ORDER BY rowid LIMIT 1"
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def meta(self, name: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    # -- writing -------------------------------------------------------------------------

    def set_meta(self, name: str, value: Any) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, _json(value))
            )

    def transition(
        self, key: str, status: JobStatus, *, expect: JobStatus | None = None, **fields: Any
    ) -> JobRow:
        """Move ``key`` to ``status``, setting ``fields``; refuses moves not in TRANSITIONS.

        With ``expect``, the move happens only if the job is still in that state (checked in
        the same transaction), else JobChanged: another process moved it meanwhile.
        ``request_id`` given here is also appended to the job's request history.
        """
        with self._tx() as db:
            row = db.execute("SELECT status, attempts FROM jobs WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise LedgerError(f"no job with key {key!r}")
            current = JobStatus(row[0])
            if expect is not None and current is not expect:
                raise JobChanged(f"job {key}: is {current} now, not {expect}")
            if status != current and status not in TRANSITIONS[current]:
                raise LedgerError(f"job {key}: {current} -> {status} is not allowed")
            self._write(db, key, {"status": status.value, **fields}, row[1])
        return self.get(key)

    def update(self, key: str, **fields: Any) -> None:
        """Set fields of ``key`` without changing its status."""
        with self._tx() as db:
            row = db.execute("SELECT attempts FROM jobs WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise LedgerError(f"no job with key {key!r}")
            self._write(db, key, fields, row[0])

    def _write(
        self, db: sqlite3.Connection, key: str, fields: dict[str, Any], attempts: int
    ) -> None:
        unknown = set(fields) - {*FIELDS, "status"}
        if unknown:
            raise LedgerError(f"unknown ledger fields: {', '.join(sorted(unknown))}")
        fields = {**fields, "updated_at": self._clock()}
        if "sent" in fields:
            fields["sent"] = _json(fields["sent"]) if fields["sent"] else None
        db.execute(
            f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in fields)} WHERE key = ?",
            [*fields.values(), key],
        )
        if fields.get("request_id"):
            db.execute(
                "INSERT OR IGNORE INTO requests "
                "(key, request_id, attempt, submitted_at, origin, key_id) "
                "SELECT ?, ?, ?, ?, origin, key_id FROM jobs WHERE key = ?",
                (
                    key,
                    fields["request_id"],
                    fields.get("attempts", attempts),
                    fields.get("submitted_at") or fields["updated_at"],
                    key,
                ),
            )


def _free_name(name: str, key: str, taken: set[str]) -> str:
    """``name``, or a variant with the job's key in it, that nobody holds yet."""
    stem = name.removesuffix(".mp4")
    candidates = [name, f"{stem}-{key[:8]}.mp4", f"{stem}-{key}.mp4"]
    for candidate in candidates:
        if candidate.lower() not in taken:
            return candidate
    counter = 2
    while f"{stem}-{key}-{counter}.mp4".lower() in taken:
        counter += 1
    return f"{stem}-{key}-{counter}.mp4"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _files_json(job: Any) -> str | None:
    """A plan job's local files (``plan.inputfiles.InputFile``) as the ledger keeps them."""
    files = getattr(job, "files", ())
    if not files:
        return None
    return _json({f.param: {k: getattr(f, k) for k in _FILE_FIELDS} for f in files})


_FILE_FIELDS = ("path", "sha256", "size", "mime")


_NAMES = [f.name for f in fields(JobRow)]
_STATUS = {s.value: s for s in JobStatus}
_AT = {name: i for i, name in enumerate(_NAMES)}
_PAYLOAD, _EXTRA, _STATE = _AT["payload"], _AT["extra"], _AT["status"]
_DUPLICATE, _IN_INPUT, _FILES, _SENT = (
    _AT["possibly_duplicate"],
    _AT["in_input"],
    _AT["files"],
    _AT["sent"],
)


def _row(row: tuple[Any, ...]) -> JobRow:
    """A JobRow from a ``SELECT`` of every column (positional: this is the hot read path)."""
    values = list(row)
    values[_PAYLOAD] = json.loads(values[_PAYLOAD])
    values[_EXTRA] = json.loads(values[_EXTRA])
    values[_STATE] = _STATUS[values[_STATE]]
    values[_DUPLICATE] = bool(values[_DUPLICATE])
    values[_IN_INPUT] = bool(values[_IN_INPUT])
    values[_FILES] = json.loads(values[_FILES]) if values[_FILES] else {}
    values[_SENT] = json.loads(values[_SENT]) if values[_SENT] else {}
    return JobRow(*values)
