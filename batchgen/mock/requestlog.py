"""fal's request log, from the emulator's own records: ``GET /v1/models/requests/by-endpoint``.

Every submit that reached the queue is recorded (even one whose answer was then dropped), with
the caller's key. A key sees its account's requests: every key's while other keys' jobs are
answered (``MockConfig.foreign_keys`` ``answer``: the keys are one account's, so a key rotated
mid-batch reads the old key's requests), else only its own. The answer's shape follows fal's
platform API reference (docs.fal.ai, "List requests by endpoint"): ``{"items": [...],
"next_cursor": str | null, "has_more": bool}``, each item with ``request_id``, ``endpoint_id``,
``started_at``, ``sent_at``, ``ended_at`` (ISO 8601, ``null`` while running), ``status_code``
and, with ``expand=payloads``, ``json_input`` and ``json_output`` (once done). Requests are
listed oldest first; ``limit`` is 1 to 100 (50 by default); the cursor encodes an offset.

``MockConfig.request_log``: ``on``; ``down`` answers 503 (no log to read); ``forbidden``
answers 403, as fal does to a key without the scope.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from batchgen.mock.emulator import Emulator, answer
from batchgen.mock.queue import Job, JobState, Logged

MAX_LIMIT = 100
DEFAULT_LIMIT = 50


def _iso(when: float | None) -> str | None:
    return None if when is None else datetime.fromtimestamp(when, UTC).isoformat()


def _when(text: str | None) -> float | None:
    if not text:
        return None
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def _item(entry: Logged, job: Job | None, payloads: bool) -> dict[str, Any]:
    done = job is not None and job.state is JobState.COMPLETED
    started = None if job is None else job.started_wall
    ended = None
    if done and job is not None:
        ran = (job.finished_at or 0.0) - (job.started_at or job.finished_at or 0.0)
        ended = (started or entry.sent) + ran
    failure = None if job is None else job.failure
    item: dict[str, Any] = {
        "request_id": entry.request_id,
        "endpoint_id": entry.endpoint_id,
        "sent_at": _iso(entry.sent),
        "started_at": _iso(started),
        "ended_at": _iso(ended),
        "status_code": (failure.http_status if failure is not None else 200) if done else None,
    }
    if payloads:
        item["json_input"] = entry.json_input
        item["json_output"] = None
        if done and job is not None and failure is None:
            item["json_output"] = {job.output_key: {"content_type": "video/mp4"}}
    return item


async def by_endpoint(request: web.Request, emu: Emulator, key: str) -> web.Response:
    """The caller's requests to ``endpoint_id`` sent in ``[start, end)``, a page at a time."""
    mode = emu.config.request_log
    if mode == "down":
        return answer({"detail": "Service Unavailable"}, 503)
    if mode == "forbidden":
        return answer({"detail": "This API key does not have access to this resource"}, 403)
    query = request.query
    endpoint_id = query.get("endpoint_id", "").strip("/")
    try:
        start, end = _when(query.get("start")), _when(query.get("end"))
        limit = int(query.get("limit", DEFAULT_LIMIT))
        offset = int(base64.b64decode(query["cursor"]).decode()) if "cursor" in query else 0
    except (ValueError, binascii.Error):
        return answer({"detail": "bad start, end, limit or cursor"}, 422)
    if not endpoint_id or not 1 <= limit <= MAX_LIMIT or offset < 0:
        return answer({"detail": f"endpoint_id is required; limit is 1 to {MAX_LIMIT}"}, 422)
    chosen = [
        e
        for e in emu.requests
        if (e.key == key or emu.config.foreign_keys == "answer")
        and e.endpoint_id == endpoint_id
        and (start is None or e.sent >= start)
        and (end is None or e.sent < end)
    ]
    page = chosen[offset : offset + limit]
    more = offset + limit < len(chosen)
    cursor = base64.b64encode(str(offset + limit).encode()).decode() if more else None
    payloads = "payloads" in query.getall("expand", [])
    return answer(
        {
            "items": [_item(e, emu.queue.jobs.get(e.request_id), payloads) for e in page],
            "next_cursor": cursor,
            "has_more": more,
        }
    )
