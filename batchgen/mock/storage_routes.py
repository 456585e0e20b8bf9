"""The storage routes, as the protocol notes have fal's (see ``storage`` for what they hold).

- ``POST /storage/auth/token?storage_type=fal-cdn-v3`` (API key): ``{token, token_type,
  base_url, expires_at}``, ``base_url`` being this server;
- ``POST /files/upload`` (token): the raw bytes, up to 100 MiB: ``{access_url}``;
- ``POST /files/upload/multipart`` (token): ``{access_url, uploadId}``; then ``PUT
  {access_url}/multipart/{uploadId}/{n}`` per part (answered with its ``ETag``) and ``POST
  {access_url}/multipart/{uploadId}/complete`` with ``{"parts": [{"partNumber", "etag"}]}``;
- ``POST /storage/upload/initiate`` (API key) with ``{file_name, content_type}``: ``{upload_url,
  file_url}``; then ``PUT`` the bytes to ``upload_url`` (no auth: the URL is the secret);
- ``POST /storage/upload/initiate-multipart`` (API key), as fal's JS client sends a file above
  90 MiB: ``{upload_url, file_url}``; ``PUT {upload_url}/{n}`` per part answers ``{partNumber,
  etag}``, ``POST {upload_url}/complete`` with the parts stores it;
- ``GET {access_url}``: the file, public, with Range support.

Every finished upload is counted in the stats by its sha256, with how it came.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime

from aiohttp import web

from batchgen.mock.emulator import EMULATOR, Emulator, answer, public_base
from batchgen.mock.files import Ranged, ranged
from batchgen.mock.storage import Pending, stored

STORAGE_TYPE = "fal-cdn-v3"
SIMPLE_LIMIT = 100 * 1024 * 1024
MAX_PARTS = 10_000
_CHUNK = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _name(request: web.Request, given: object = None) -> str:
    name = given if isinstance(given, str) else request.headers.get("X-Fal-File-Name", "")
    return _UNSAFE.sub("_", name)[:200].strip(".") or "upload.bin"


def _content_type(request: web.Request, given: object = None) -> str:
    if isinstance(given, str) and given:
        return given
    return request.headers.get("Content-Type") or "application/octet-stream"


def _access_url(request: web.Request, file_id: str, name: str) -> str:
    return f"{public_base(request, None)}/files/up/{file_id}/{name}"


async def _body(
    request: web.Request, emu: Emulator, limit: int | None = None
) -> list[bytes] | None:
    """The request body in pieces, counted in the stats; None when above ``limit``."""
    pieces: list[bytes] = []
    size = 0
    async for piece in request.content.iter_chunked(_CHUNK):
        size += len(piece)
        emu.stats.upload_bytes += len(piece)
        if limit is None or size <= limit:
            pieces.append(piece)
    return None if limit is not None and size > limit else pieces


def _not_found(what: str) -> web.Response:
    return answer({"detail": f"{what} not found"}, 404)


async def token(request: web.Request, emu: Emulator, key: str) -> web.Response:
    kind = request.query.get("storage_type")
    if kind != STORAGE_TYPE:
        return answer({"detail": f"Unsupported storage_type {kind!r}"}, 400)
    value, expires = emu.storage.issue_token()
    return answer(
        {
            "token": value,
            "token_type": "Bearer",
            "base_url": public_base(request, None),
            "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
        }
    )


async def upload(request: web.Request, emu: Emulator, key: str) -> web.Response:
    pieces = await _body(request, emu, SIMPLE_LIMIT)
    if pieces is None:
        return answer({"detail": "File too large for a simple upload: use multipart"}, 413)
    file_id, name = emu.storage.new_id(), _name(request)
    emu.storage.files[file_id] = done = stored(name, _content_type(request), pieces)
    emu.stats.record_upload(done.sha256, done.size, "simple")
    return answer({"access_url": _access_url(request, file_id, name)})


async def multipart(request: web.Request, emu: Emulator, key: str) -> web.Response:
    file_id, name = emu.storage.new_id(), _name(request)
    upload_id = emu.storage.new_id()
    emu.storage.pending[upload_id] = Pending(file_id, name, _content_type(request))
    return answer({"access_url": _access_url(request, file_id, name), "uploadId": upload_id})


def _under_way(request: web.Request, emu: Emulator) -> Pending | None:
    info = request.match_info
    pending = emu.storage.pending.get(info["upload_id"])
    if pending is None or (pending.file_id, pending.name) != (info["file_id"], info["name"]):
        return None
    return pending


async def part(request: web.Request, emu: Emulator, key: str) -> web.Response:
    pending = _under_way(request, emu)
    if pending is None:
        return _not_found("Upload")
    kept = await _keep_part(request, emu, pending)
    if isinstance(kept, web.Response):
        return kept
    return web.Response(status=200, headers={"ETag": kept[1]})


async def _keep_part(
    request: web.Request, emu: Emulator, pending: Pending
) -> tuple[int, str] | web.Response:
    """Keep the part the request carries: its number and ETag, or the 400 of a bad number."""
    number = request.match_info["part"]
    if not number.isdigit() or not 1 <= int(number) <= MAX_PARTS:
        return answer({"detail": f"Part number must be 1 to {MAX_PARTS}"}, 400)
    pieces = await _body(request, emu) or []
    digest = hashlib.md5(usedforsecurity=False)
    for piece in pieces:
        digest.update(piece)
    etag = f'"{digest.hexdigest()}"'
    pending.parts[int(number)] = (pieces, etag)
    return int(number), etag


async def complete(request: web.Request, emu: Emulator, key: str) -> web.Response:
    pending = _under_way(request, emu)
    if pending is None:
        return _not_found("Upload")
    refused = await _assemble(request, emu, pending, "multipart")
    return refused or answer({"access_url": _access_url(request, pending.file_id, pending.name)})


async def _assemble(
    request: web.Request, emu: Emulator, pending: Pending, via: str
) -> web.Response | None:
    """Store the file the listed parts make, or the 400 saying what is wrong with the list."""
    try:
        listed = json.loads(await request.read())["parts"]
        wanted = [(int(p["partNumber"]), str(p["etag"])) for p in listed]
    except (ValueError, KeyError, TypeError):
        return answer({"detail": 'Expected {"parts": [{"partNumber", "etag"}]}'}, 400)
    numbers = sorted(n for n, _ in wanted)
    if not wanted or numbers != list(range(1, len(numbers) + 1)):
        return answer({"detail": "Parts must be numbered 1, 2, ... without gaps"}, 400)
    for number, etag in wanted:
        held = pending.parts.get(number)
        if held is None or held[1] != etag:
            return answer({"detail": f"Part {number}: no such part with ETag {etag}"}, 400)
    pieces = [piece for n in numbers for piece in pending.parts[n][0]]
    del emu.storage.pending[request.match_info["upload_id"]]
    emu.storage.files[pending.file_id] = done = stored(pending.name, pending.content_type, pieces)
    emu.stats.record_upload(done.sha256, done.size, via)
    return None


async def initiate(request: web.Request, emu: Emulator, key: str) -> web.Response:
    return await _initiate(request, emu, "/storage/put")


async def initiate_multipart(request: web.Request, emu: Emulator, key: str) -> web.Response:
    """The JS client's large-file upload: parts are PUT to ``{upload_url}/{n}``."""
    return await _initiate(request, emu, "/storage/multipart")


async def _initiate(request: web.Request, emu: Emulator, route: str) -> web.Response:
    try:
        asked = json.loads(await request.read())
    except ValueError:
        asked = None
    if not isinstance(asked, dict):
        return answer({"detail": 'Expected {"file_name", "content_type"}'}, 422)
    file_id, name = emu.storage.new_id(), _name(request, asked.get("file_name"))
    upload_id = emu.storage.new_id()
    content_type = _content_type(request, asked.get("content_type"))
    emu.storage.pending[upload_id] = Pending(file_id, name, content_type)
    base = public_base(request, None)
    return answer(
        {
            "upload_url": f"{base}{route}/{upload_id}",
            "file_url": _access_url(request, file_id, name),
        }
    )


async def js_part(request: web.Request, emu: Emulator, key: str) -> web.Response:
    """``PUT {upload_url}/{n}`` of a multipart upload the JS client began: ``{partNumber,
    etag}`` (no auth: the upload URL is the secret)."""
    pending = emu.storage.pending.get(request.match_info["upload_id"])
    if pending is None:
        return _not_found("Upload")
    kept = await _keep_part(request, emu, pending)
    if isinstance(kept, web.Response):
        return kept
    return answer({"partNumber": kept[0], "etag": kept[1]})


async def js_complete(request: web.Request, emu: Emulator, key: str) -> web.Response:
    pending = emu.storage.pending.get(request.match_info["upload_id"])
    if pending is None:
        return _not_found("Upload")
    refused = await _assemble(request, emu, pending, "js_multipart")
    return refused or answer({"file_url": _access_url(request, pending.file_id, pending.name)})


async def put(request: web.Request, emu: Emulator, key: str) -> web.Response:
    pending = emu.storage.pending.pop(request.match_info["upload_id"], None)
    if pending is None:
        return _not_found("Upload")
    pieces = await _body(request, emu) or []
    emu.storage.files[pending.file_id] = done = stored(pending.name, pending.content_type, pieces)
    emu.stats.record_upload(done.sha256, done.size, "initiate")
    return web.Response(status=200)


async def serve_upload(request: web.Request) -> web.StreamResponse:
    """``GET {access_url}``: an uploaded file, public, ranged."""
    emu = request.app[EMULATOR]
    held = emu.storage.files.get(request.match_info["file_id"])
    if held is None or held.name != request.match_info["name"]:
        emu.stats.record("upload_file", 404)
        return _not_found("File")
    head = ranged(request, held.size, held.content_type)
    emu.stats.record("upload_file", head.status)
    if not isinstance(head, Ranged):
        return head
    response = head.response
    await response.prepare(request)
    if request.method != "HEAD":
        try:
            for piece in held.span(head.start, head.end):
                await response.write(piece)
        except ConnectionError:
            pass  # the client went away
    return response
