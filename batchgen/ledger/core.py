"""What both ledger backends do the same way: the jobs table's reads and moves, in one SQL.

``SqlLedger`` holds every operation of ``batchgen.ledger.base.LedgerStore`` written once, in SQL
both SQLite and PostgreSQL read (``?`` placeholders, ``ON CONFLICT`` upserts). A backend
supplies the connection and the few things that differ: how a transaction starts and what its
errors mean (``_tx``), how jobs' rows are locked for moves (``_lock_jobs``: PostgreSQL takes a
row lock and checks the job's claim), how a big read streams (``_stream``), and the bits of
its own dialect (``_FILE_PARAMS``, ``_ORDER``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from batchgen.errors import JobChanged, LedgerError, RequestIdTaken
from batchgen.fsnames import escaped, json_text
from batchgen.ledger.money import COMMITTED_SQL
from batchgen.ledger.requestids import RequestIds
from batchgen.ledger.states import FIELDS, TRANSITIONS, JobRow, JobStatus
from batchgen.ledger.uploads import UploadCache


class Move(NamedTuple):
    """One job's move, as ``SqlLedger.transition`` takes it."""

    key: str
    status: JobStatus
    expect: JobStatus | None
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What ``sync`` found: new keys added, known keys kept, keys no longer in input."""

    added: int
    kept: int
    orphaned: list[str]


class SqlLedger(RequestIds, UploadCache):
    """The operations every ledger backend shares (see the module docstring). Each method
    that changes something commits before it returns."""

    __slots__ = ()
    _columns: str  # every JobRow column, in order (an older SQLite ledger: some as NULL)
    # The parameters some job names a local file for, in input order.
    _FILE_PARAMS = ""
    _ORDER = "rowid"  # what orders requests as they were written

    # -- what a backend supplies -----------------------------------------------------------

    @property
    def where(self) -> str:
        """The ledger as messages name it: a file, or a shared batch (no password)."""
        raise NotImplementedError

    def _many(self, db: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def _stream(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql``, read as they are consumed, from one snapshot."""
        raise NotImplementedError

    def _lock_jobs(self, db: Any, keys: list[str]) -> dict[str, tuple[str, int] | JobChanged]:
        """The status and attempts of each of ``keys`` there is, locked for a move in ``db``'s
        transaction (in key order), or JobChanged for one this connection may not move."""
        raise NotImplementedError

    def _also(self, values: dict[str, Any]) -> dict[str, Any]:
        """Columns a backend sets with a job's ``values`` (a shared ledger: its claim)."""
        return {}

    def _before_moves(self, db: Any, moves: Sequence[Move]) -> None:
        """Called first in the transaction of ``transitions`` (and ``update``: no moves),
        before any row is locked: take the locks the moves' writes need (a shared ledger's
        table lock, so a move holding a row never waits for a sync that waits for that row;
        its batch's money lock, see ``batchgen.ledger.budget``)."""

    def _admit(self, db: Any, move: Move) -> None:
        """Refuse ``move`` (a LedgerError) before it is written: a shared batch's
        ``--max-cost`` (see ``batchgen.ledger.budget``)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plan ----------------------------------------------------------------------------

    def _before_sync(self, db: Any) -> None:
        """Hold off other writers' syncs for the transaction (a shared ledger's workers)."""

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
        changed: list[tuple[Any, ...]] = []
        added: list[tuple[Any, ...]] = []
        seen: set[str] = set()
        with self._tx() as db:
            self._before_sync(db)
            held = {
                r[0]: r[1:]
                for r in self._query(
                    db,
                    "SELECT key, filename, in_input, position, row, line, extra, files FROM jobs",
                )
            }
            taken = {r[0].lower() for r in held.values()} | {n.lower() for n in occupied}
            for position, job in enumerate(jobs):
                files = _files_json(job)
                known = held.get(job.key)
                if known is not None:
                    seen.add(job.key)
                    now_is = (1, position, job.row, job.line, _json(job.extra), files or known[6])
                    if now_is != known[1:]:  # rows left as they are take no lock
                        changed.append((*now_is[1:5], files, job.key))
                    continue
                filename = _free_name(job.filename, job.key, taken)
                taken.add(filename.lower())
                added.append(
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
                    )
                )
            gone = [(key,) for key, known in held.items() if key not in seen and known[1]]
            self._many(db, "UPDATE jobs SET in_input = 0 WHERE key = ?", gone)
            self._many(
                db,
                "UPDATE jobs SET in_input = 1, position = ?, row = ?, line = ?, extra = ?, "
                "files = COALESCE(?, files) WHERE key = ?",
                changed,
            )
            self._many(
                db,
                "INSERT INTO jobs (key, position, row, line, repeat, endpoint, payload, "
                "extra, filename, status, cost_usd, updated_at, files) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                added,
            )
            orphaned = [
                r[0]
                for r in self._query(
                    db, "SELECT key FROM jobs WHERE in_input = 0 ORDER BY position"
                )
            ]
        return SyncReport(added=len(added), kept=len(seen), orphaned=orphaned)

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
            known = {r[0] for r in self._query(db, "SELECT key FROM jobs")}
            position = self._query(db, "SELECT COALESCE(MAX(position), -1) FROM jobs").fetchone()
            position = position[0]
            for state in states:
                key = state["key"]
                if key not in known:
                    if key not in orphans:
                        continue
                    row, payload, its_endpoint = orphans[key]
                    position += 1
                    self._query(
                        db,
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
                values = {k: v for k, v in state.items() if k != "key"}
                values["status"] = values["status"].value
                path = values.get("video_path")
                if path:  # the file the manifest names is this job's: keep its name
                    self._query(
                        db, "UPDATE jobs SET filename = ? WHERE key = ?", (Path(path).name, key)
                    )
                try:
                    self._write(db, key, values, values.get("attempts", 0))
                except RequestIdTaken as exc:  # two records with one id (an older batchgen)
                    values |= self._taken(db, exc)
                    self._write(db, key, values, values.get("attempts", 0))
                count += 1
        return count

    # -- reading -------------------------------------------------------------------------

    def get(self, key: str) -> JobRow:
        rows = self._read(f"SELECT {self._columns} FROM jobs WHERE key = ?", (key,))
        if not rows:
            raise LedgerError(f"no job with key {key!r} in {self.where}")
        return _row(rows[0])

    def jobs(
        self, statuses: Iterable[JobStatus] | None = None, *, in_input_only: bool = False
    ) -> list[JobRow]:
        """Jobs in input order, optionally only those in ``statuses``."""
        sql, args = f"SELECT {self._columns} FROM jobs", list[Any]()
        where = []
        if statuses is not None:
            wanted = [s.value for s in statuses]
            where.append(f"status IN ({','.join('?' * len(wanted))})" if wanted else "1 = 0")
            args.extend(wanted)
        if in_input_only:
            where.append("in_input = 1")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_row(r) for r in self._read(sql + " ORDER BY position", args)]

    def iter_jobs(self) -> Iterator[JobRow]:
        """Every job in input order, read as it is consumed: constant memory for any ledger.

        One SELECT, so what it yields is one consistent snapshot of the ledger.
        """
        for row in self._stream(f"SELECT {self._columns} FROM jobs ORDER BY position"):
            yield _row(row)

    def counts(self) -> dict[JobStatus, int]:
        """Number of jobs in each status (every status present, zero or more)."""
        counts = dict.fromkeys(JobStatus, 0)
        for status, n in self._read("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            counts[JobStatus(status)] = n
        return counts

    def requests(self, key: str) -> list[str]:
        """Every request id ``key`` was ever given, oldest first (in the order written:
        ``attempts`` restarts when ``run --retry-failed`` reopens a job)."""
        sql = f"SELECT request_id FROM requests WHERE key = ? ORDER BY {self._ORDER}"
        return [r[0] for r in self._read(sql, (key,))]

    def committed_usd(self) -> float:
        """The committed USD of all the jobs (``batchgen.ledger.money``), summed by the
        database: ``tally(self.iter_jobs()).committed`` without reading the rows out."""
        rows = self._read(f"SELECT COALESCE(SUM(cost_usd), 0) FROM jobs WHERE {COMMITTED_SQL}")
        return round(float(rows[0][0]), 6)

    def file_params(self) -> list[str]:
        """The parameters some job names a local file for, in input order."""
        return [r[0] for r in self._read(self._FILE_PARAMS)]

    def first_request(self) -> tuple[str, str] | None:
        """The (key, request id) of the batch's first request at the provider, or None.

        Request ids are never rewritten, so this names the batch for good once anything was
        sent: two folders of the same input differ here.
        """
        rows = self._read(f"SELECT key, request_id FROM requests ORDER BY {self._ORDER} LIMIT 1")
        return (rows[0][0], rows[0][1]) if rows else None

    def meta(self, name: str) -> Any:
        rows = self._read("SELECT value FROM meta WHERE name = ?", (name,))
        return json.loads(rows[0][0]) if rows else None

    # -- writing -------------------------------------------------------------------------

    def set_meta(self, name: str, value: Any) -> None:
        with self._tx() as db:
            self._query(
                db,
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, _json(value)),
            )

    def transition(
        self, key: str, status: JobStatus, *, expect: JobStatus | None = None, **values: Any
    ) -> JobRow:
        """Move ``key`` to ``status``, setting ``values``; refuses moves not in TRANSITIONS.

        With ``expect``, the move happens only if the job is still in that state (checked in
        the same transaction), else JobChanged: another process moved it meanwhile.
        ``request_id`` given here is also appended to the job's request history.
        """
        outcome = self.transitions([Move(key, status, expect, values)])[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def transitions(self, moves: Sequence[Move]) -> list[JobRow | Exception]:
        """Make ``moves`` (each as ``transition`` would) in one transaction: one commit for
        them all (see ``batchgen.ledger.writer``). Returns, per move, the job's row after it,
        or the LedgerError (JobChanged, OverCost...) that refused it (nothing of that move
        written). A transaction that fails (a full disk) raises, and none of the moves is
        made."""
        outcomes: dict[int, str | Exception] = {}
        with self._tx() as db:
            self._before_moves(db, moves)
            # One statement locks every row, in key order (as a shared ledger's heartbeat).
            order = sorted(range(len(moves)), key=lambda i: moves[i].key)
            held = self._lock_jobs(db, sorted({move.key for move in moves}))
            for at in order:
                key, status, expect, values = moves[at]
                try:
                    attempts = self._locked(held.get(key), key, status, expect)
                    self._admit(db, moves[at])
                    self._write(db, key, {"status": status.value, **values}, attempts)
                except (JobChanged, LedgerError) as exc:  # raised before its first write
                    outcomes[at] = exc
                else:
                    outcomes[at] = key
                    held[key] = (status.value, values.get("attempts", attempts))
            moved = [o for o in outcomes.values() if isinstance(o, str)]
            rows = {}
            if moved:
                marks = ", ".join("?" * len(moved))
                sql = f"SELECT {self._columns} FROM jobs WHERE key IN ({marks})"
                rows = {r[0]: _row(r) for r in self._query(db, sql, moved)}
        outcome = [outcomes[at] for at in range(len(moves))]
        return [rows[o] if isinstance(o, str) else o for o in outcome]

    def _locked(
        self,
        held: tuple[str, int] | JobChanged | None,
        key: str,
        status: JobStatus,
        expect: JobStatus | None,
    ) -> int:
        """The attempts of ``key``, once checked that it exists, may be moved by this
        connection, is still in ``expect``, and may go to ``status``."""
        current, attempts = self._held(held, key)
        now = JobStatus(current)
        if expect is not None and now is not expect:
            raise JobChanged(f"job {key}: is {now} now, not {expect}")
        if status != now and status not in TRANSITIONS[now]:
            raise LedgerError(f"job {key}: {now} -> {status} is not allowed")
        return attempts

    def _held(self, held: tuple[str, int] | JobChanged | None, key: str) -> tuple[str, int]:
        """What ``_lock_jobs`` found of ``key``: its status and attempts, else why not."""
        if held is None:
            raise LedgerError(f"no job with key {key!r} in {self.where}")
        if isinstance(held, JobChanged):
            raise held
        return held

    def update(self, key: str, **values: Any) -> None:
        """Set fields of ``key`` without changing its status."""
        with self._tx() as db:
            self._before_moves(db, ())
            _, attempts = self._held(self._lock_jobs(db, [key]).get(key), key)
            self._write(db, key, values, attempts)

    def _write(self, db: Any, key: str, values: dict[str, Any], attempts: int) -> None:
        unknown = set(values) - {*FIELDS, "status"}
        if unknown:
            raise LedgerError(f"unknown ledger fields: {', '.join(sorted(unknown))}")
        values = {**values, **self._also(values), "updated_at": self._clock()}
        if "sent" in values:
            values["sent"] = _json(values["sent"]) if values["sent"] else None
        if "possibly_duplicate" in values:
            values["possibly_duplicate"] = int(bool(values["possibly_duplicate"]))
        if values.get("request_id"):  # first: a request id another job holds refuses the move
            self._own(db, key, values, attempts)
        self._query(
            db,
            f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in values)} WHERE key = ?",
            [*values.values(), key],
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


def storable(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """``values`` with each text that holds a name no encoding can (in a message: a path
    the locale could not decode) shown escaped (``fsnames.escaped``): such text is for
    people, never opened again; JSON values keep the very name (``_json``)."""
    return tuple(escaped(v) if isinstance(v, str) else v for v in values)


def _json(value: Any) -> str:
    """JSON text that SQLite and PostgreSQL take, a name no encoding holds included (see
    ``fsnames.json_text``: it reads back unchanged)."""
    return json_text(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def _files_json(job: Any) -> str | None:
    """A plan job's local files (``plan.inputfiles.InputFile``) as the ledger keeps them."""
    files = getattr(job, "files", ())
    if not files:
        return None
    return _json({f.param: {k: getattr(f, k) for k in _FILE_FIELDS} for f in files})


_FILE_FIELDS = ("path", "sha256", "size", "mime")


NAMES = [f.name for f in fields(JobRow)]
_STATUS = {s.value: s for s in JobStatus}
_AT = {name: i for i, name in enumerate(NAMES)}
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
