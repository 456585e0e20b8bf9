"""The file route, standing in for fal's CDN: public, ranged, streamed, sometimes cut short.

``GET /files/{request_id}/output.mp4`` needs no Authorization (CDN files are public); any
Authorization header seen here is recorded, because a correct client never sends its key to
the CDN. With ``file_link_ttl`` the links are signed and expire (``batchgen.mock.signed``).
Bodies are generated chunk by chunk, so a 1 GB file costs no memory.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from aiohttp import web

from batchgen.mock import mp4
from batchgen.mock.emulator import EMULATOR, Emulator, answer
from batchgen.mock.queue import JobState

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# Hashing this much on the event loop would stall every other request.
_HASH_OFF_LOOP = 4 << 20


class RangeNotSatisfiable(Exception):
    """The Range header asks for bytes past the end of the file."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of a single ``bytes=`` range, or None to send the whole file.

    Headers this server does not understand (several ranges, other units, garbage) are
    ignored, which RFC 9110 allows; a range starting past the end raises RangeNotSatisfiable.
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or not (match[1] or match[2]):
        return None
    if not match[1]:
        suffix = int(match[2])
        if suffix == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size
    start = int(match[1])
    end = int(match[2]) + 1 if match[2] else size
    if match[2] and end <= start:
        return None  # last-byte-pos before first-byte-pos: invalid, so ignored
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(end, size)


@dataclass(frozen=True, slots=True)
class Ranged:
    """The head of a file answer: the whole file (200) or the range asked (206)."""

    response: web.StreamResponse
    start: int
    end: int

    @property
    def status(self) -> int:
        return self.response.status


def ranged(request: web.Request, size: int, content_type: str) -> Ranged | web.Response:
    """The head of an answer serving ``size`` bytes, or of the range asked; a 416 answer
    for a range past the end."""
    try:
        span = parse_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    start, end = span if span is not None else (0, size)
    response = web.StreamResponse(status=200 if span is None else 206)
    response.headers["Content-Type"] = content_type
    response.content_length = end - start
    response.headers["Accept-Ranges"] = "bytes"
    if span is not None:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return Ranged(response, start, end)


async def _sha256(emu: Emulator, request_id: str, video: mp4.VideoFile) -> str:
    known = emu.stats.known_hash(request_id, video.size)
    if known is None:
        if video.size > _HASH_OFF_LOOP:
            known = await asyncio.to_thread(video.sha256)
        else:
            known = video.sha256()
        emu.stats.remember_hash(request_id, video.size, known)
    return known


async def serve_file(request: web.Request) -> web.StreamResponse:
    emu = request.app[EMULATOR]
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        emu.stats.file_auth.append(authorization)
    request_id = request.match_info["request_id"]
    job = emu.queue.jobs.get(request_id)
    ttl = emu.config.file_ttl
    if (
        job is None
        or job.state is not JobState.COMPLETED
        or job.failure is not None
        or job.finished_at is None
        or request.match_info["name"] != "output.mp4"
        or (ttl is not None and emu.queue.loop.time() > job.finished_at + emu.config.scaled(ttl))
    ):
        emu.stats.record("file", 404)
        return answer({"detail": "File not found"}, 404)
    if emu.faults.file_down():
        emu.stats.faults["file_503"] += 1
        emu.stats.record("file", 503)
        return answer({"detail": "Service Unavailable"}, 503)
    if emu.config.file_link_ttl is not None:
        refusal = emu.links.problem(request_id, request.query, emu.queue.loop.time())
        if refusal is not None:
            emu.stats.faults["link_refused"] += 1
            emu.stats.record("file", 403)
            return web.Response(status=403, text=refusal, content_type="application/xml")
    video = mp4.video_file(request_id, emu.config.video_bytes)
    head = ranged(request, video.size, "video/mp4")
    emu.stats.record("file", head.status)
    if not isinstance(head, Ranged):
        return head
    response, start, end = head.response, head.start, head.end
    # Hash while streaming: a large file's first byte should not wait for its digest.
    digest = asyncio.create_task(_sha256(emu, request_id, video))
    truncate = emu.faults.truncate()
    sent = 0
    if request.method == "HEAD":
        await digest
        await response.prepare(request)
        return response
    stop = start + (end - start) // 2 if truncate else end
    try:
        await response.prepare(request)
        for piece in video.chunks(start, stop):
            await response.write(piece)
            sent += len(piece)
    except ConnectionError:
        truncate = True  # the client hung up: also an incomplete download
    else:
        if truncate:
            emu.stats.faults["truncate"] += 1
            if request.transport is not None:
                # close() (not abort()) flushes what was written, then ends the connection.
                request.transport.close()
    emu.stats.record_file(request_id, video.size, await digest, sent, full=not truncate)
    return response
