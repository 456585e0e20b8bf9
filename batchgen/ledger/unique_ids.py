"""The migration that makes a request id one job's: the duplicates an older batchgen recorded.

Before it, a proxy that answered two submits with one request id left two jobs holding it, and
both took the one video as their own. ``dedupe`` keeps each id with the job first given it
(the earliest in the request history), fails every other job that holds it now as a provider
fault (``duplicate_request_id``, naming the owner; ``--retry-failed`` sends it again, flagged a
possible duplicate), and drops the id from their history, so that the unique index on
``requests (request_id)`` can be made. ``mark`` is the driver's placeholder (``?`` or ``%s``).
"""

from __future__ import annotations

import time
from typing import Any

DUPLICATE_REQUEST_ID = "duplicate_request_id"


def held_message(request_id: str, owner_row: object, owner: str) -> str:
    """The error of a job whose submit was answered with a request id another job holds."""
    return (
        f"the provider answered this job's submit with request id {request_id}, which it "
        f"had already given row {owner_row} (job {owner[:8]}): a provider fault; that job's "
        "video is not this row's. A job may have been made (and billed) for this row under "
        "an id never given: --retry-failed sends it again"
    )


def dedupe(db: Any, mark: str = "?") -> None:
    """Keep each request id with its first job (see the module docstring)."""
    seen: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    rows = db.execute(
        "SELECT request_id, key FROM requests ORDER BY submitted_at, attempt, key"
    ).fetchall()
    for request_id, key in rows:
        owner = seen.setdefault(request_id, key)
        if owner != key:
            extra.append((request_id, key))
    for request_id, key in extra:
        owner = seen[request_id]
        found = db.execute(f"SELECT row FROM jobs WHERE key = {mark}", (owner,)).fetchone()
        db.execute(
            f"UPDATE jobs SET status = 'failed', error_type = {mark}, error = {mark}, "
            f"request_id = NULL, updated_at = {mark} WHERE key = {mark} AND request_id = {mark}",
            (
                DUPLICATE_REQUEST_ID,
                held_message(request_id, found[0] if found else "?", owner),
                time.time(),
                key,
                request_id,
            ),
        )
        db.execute(
            f"DELETE FROM requests WHERE request_id = {mark} AND key = {mark}", (request_id, key)
        )
    db.execute("CREATE UNIQUE INDEX requests_request_id ON requests (request_id)")
