"""A lost ledger is not a fresh start: ``DIR/batchgen.db`` rebuilt from ``DIR/manifest.jsonl``.

A folder whose ledger is missing (deleted, or an empty file) but that holds a manifest or videos
has been run before: starting afresh would submit, and pay for, every job again and write over
every video. ``lost_ledger`` tells the three cases apart before the ledger is opened: nothing
of an earlier run (None: a fresh start is right); a manifest to rebuild from (its records); or
videos with no readable manifest (UsageError: refused, with what to do).

``restored`` turns each manifest record into the state the ledger takes back: keys, request
ids, attempts, video URL, path and sha256, billed cost, what was sent for local files, and a
status a run can resume from. A job that was
being submitted becomes ``submit_uncertain`` (sent again only flagged ``possibly_duplicate``);
one in flight is followed by its request id; a done one keeps its video, which the run re-checks
(a missing or damaged file is downloaded again from its URL). The manifest is rewritten every
few seconds, so a job submitted in the last seconds before the ledger was lost is not in it:
that is the one case where a job can be paid for twice, and the rebuild says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchgen.errors import UsageError
from batchgen.ledger.states import JobStatus
from batchgen.places import get_at

S = JobStatus
MANIFEST = "manifest.jsonl"
# What each status of a manifest becomes when the ledger is rebuilt from it.
_AFTER_LOSS = {
    "done": S.DONE,
    "downloading": S.DOWNLOADING,
    "completed": S.COMPLETED,
    "queued": S.QUEUED,
    "running": S.RUNNING,
    "cancelling": S.CANCELLING,
    "submitting": S.SUBMIT_UNCERTAIN,
    "submit_uncertain": S.SUBMIT_UNCERTAIN,
    "pending": S.PENDING,
    "failed": S.FAILED,
    "cancelled": S.CANCELLED,
}


def lost_ledger(folder: Path, ledger_name: str) -> list[dict[str, Any]] | None:
    """The manifest records to rebuild ``folder``'s lost ledger from, or None when there is
    a ledger or nothing of an earlier run; UsageError when videos are there but no manifest."""
    ledger = folder / ledger_name
    if ledger.is_file() and ledger.stat().st_size > 0:
        return None
    manifest = folder / MANIFEST
    videos = sorted((folder / "videos").glob("*.mp4")) if (folder / "videos").is_dir() else []
    if not manifest.is_file():
        if not videos:
            return None
        raise UsageError(
            f"{folder} holds {len(videos)} video(s) but no ledger ({ledger_name}) and no "
            f"{MANIFEST} to rebuild it from: running would generate them again. Move the "
            "videos away, or give another --out"
        )
    return manifest_records(folder, ledger_name)


def manifest_records(folder: Path, ledger_name: str) -> list[dict[str, Any]]:
    """The records of ``folder``'s manifest, to rebuild its lost ledger from; UsageError when
    it cannot be read."""
    try:
        return list(_records(folder / MANIFEST))
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"{folder} has lost its ledger ({ledger_name}) and its {MANIFEST} cannot be read "
            f"to rebuild it ({exc}); nothing was sent. Restore the ledger, or give another --out"
        ) from None


def restored(record: dict[str, Any]) -> dict[str, Any] | None:
    """The ledger fields a manifest record gives back (``status`` a JobStatus), or None for a
    record without a usable key."""
    key = record.get("key")
    if not isinstance(key, str) or not key:
        return None
    status = _AFTER_LOSS.get(str(record.get("status")), S.PENDING)
    request_id = _text(record.get("request_id"))
    url = _text(record.get("video_url"))
    if status in (S.DONE, S.DOWNLOADING) and url is None:
        status = S.COMPLETED if request_id else S.SUBMIT_UNCERTAIN
    if status in (S.QUEUED, S.RUNNING, S.COMPLETED, S.CANCELLING) and request_id is None:
        status = S.SUBMIT_UNCERTAIN  # sent, but its id is not on record
    attempts = record.get("attempts")
    return {
        "key": key,
        "status": status,
        "request_id": request_id,
        "key_id": _text(record.get("api_key_id")),  # its jobs in flight need that key
        "attempts": attempts if isinstance(attempts, int) and attempts >= 0 else 0,
        "possibly_duplicate": bool(record.get("possibly_duplicate")),
        "video_url": url,
        "video_path": _text(record.get("video_path")),
        "bytes": record.get("bytes") if isinstance(record.get("bytes"), int) else None,
        "sha256": _text(record.get("sha256")),
        "billed_usd": _number(record.get("billed_usd")),
        "error": _text(record.get("error")),
        "error_type": _text(record.get("error_type")),
        "submitted_at": seconds_of(record.get("submitted_at")),
        "completed_at": seconds_of(record.get("completed_at")),
        "sent": _sent(record),
    }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _sent(record: dict[str, Any]) -> dict[str, str]:
    """What a record says its last submit sent for each local file: a file parameter's
    column (followed by its ``.path``) once it holds more than the planned reference."""
    sent = {}
    for column in record:
        name = column.removesuffix(".path")
        # A file inside a list is within its parameter's value (``image_urls.2``).
        value = record[name] if name in record else get_at(record, name)
        if column.endswith(".path") and isinstance(value, str) and not value.startswith("sha256:"):
            sent[name.removeprefix("param.")] = value
    return sent


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"line {number} is not a JSON object")
            yield record


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def seconds_of(value: Any) -> float | None:
    """Unix seconds of an ISO 8601 UTC time as batchgen writes it (``iso_utc``), or None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
