"""A request id is one job's, forever: how the ledger holds it (a mixin of ``SqlLedger``).

A proxy that answers two submits with one request id would otherwise leave two jobs holding
it, each taking the one video as its own. ``_own`` records a job's request id in its history
(``requests``) before the job's row is written, and refuses (``RequestIdTaken``, nothing
written) an id another job holds or held; the unique index ``requests_request_id`` (the
migration in ``batchgen.ledger.unique_ids``) holds it against every writer, two workers of a
shared batch recording the same id at once included (``_guarded``: a backend runs the insert
so that a refusal leaves its transaction usable). ``_taken`` are the fields that fail a job
whose id was taken.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from batchgen.errors import RequestIdTaken
from batchgen.ledger.access import SqlAccess
from batchgen.ledger.states import JobStatus
from batchgen.ledger.unique_ids import DUPLICATE_REQUEST_ID, held_message

_HELD = "SELECT key FROM requests WHERE request_id = ? AND key <> ? LIMIT 1"
_INSERT = (
    "INSERT INTO requests (key, request_id, attempt, submitted_at, origin, key_id) "
    "SELECT ?, ?, ?, ?, COALESCE(?, origin), COALESCE(?, key_id) FROM jobs WHERE key = ? "
    "ON CONFLICT (key, request_id) DO NOTHING"
)


class RequestIds(SqlAccess):
    """Each request id recorded for one job (see the module docstring)."""

    __slots__ = ()

    def _own(self, db: Any, key: str, values: dict[str, Any], attempts: int) -> None:
        """Add ``values``' request id to ``key``'s request history; RequestIdTaken (nothing
        written) when another job holds it."""
        rid = values["request_id"]
        held = self._query(db, _HELD, (rid, key)).fetchall()
        if held:
            raise RequestIdTaken(rid, held[0][0])
        args = (
            key,
            rid,
            values.get("attempts", attempts),
            values.get("submitted_at") or values["updated_at"],
            values.get("origin"),
            values.get("key_id"),
            key,
        )
        if not self._guarded(db, _INSERT, args):
            owner = self._query(db, _HELD, (rid, key)).fetchall()
            raise RequestIdTaken(rid, owner[0][0] if owner else "?")

    def _guarded(self, db: Any, sql: str, args: tuple[Any, ...]) -> bool:
        """Run ``sql``; False when a unique index refused it (nothing written)."""
        try:
            self._query(db, sql, args)
        except sqlite3.IntegrityError:
            return False
        return True

    def _taken(self, db: Any, exc: RequestIdTaken) -> dict[str, Any]:
        """The fields of a job failed because its request id is another job's."""
        found = self._query(db, "SELECT row FROM jobs WHERE key = ?", (exc.owner,)).fetchone()
        return {
            "status": JobStatus.FAILED.value,
            "request_id": None,
            "error": held_message(exc.request_id, found[0] if found else "?", exc.owner),
            "error_type": DUPLICATE_REQUEST_ID,
        }
