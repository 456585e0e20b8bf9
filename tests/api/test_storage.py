"""The fal storage client over loopback: token, simple and multipart uploads, retries, where
the key and the token go; data URIs."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from scripted import Scripted, hang_up, reply, scripted
from test_client import Sleeps

from batchgen.api.backoff import Backoff
from batchgen.api.datauri import data_uri, describe_data_uri
from batchgen.api.storage import StorageClient
from batchgen.errors import FatalError, PermanentError, ProtocolError
from batchgen.mock import MockServer

KEY = "storage-test-key"
TOKEN = "tok-123"


def storage(
    session: aiohttp.ClientSession, base: str, sleep: Sleeps | None = None, **options: object
) -> StorageClient:
    return StorageClient(
        session,
        base_url=base,
        api_key=KEY,
        backoff=Backoff(base=0.01, cap=0.02, attempts=6),
        sleep=Sleeps() if sleep is None else sleep,
        **options,  # type: ignore[arg-type]
    )


def token_answer(base_url: str, expires_at: str = "2999-01-01T00:00:00+00:00") -> Callable:
    return reply(
        200,
        {"token": TOKEN, "token_type": "Bearer", "base_url": base_url, "expires_at": expires_at},
    )


def by_path(**routes: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Callable:
    """A handler that answers by the last segment of the path (``token``, ``upload``...)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return await routes[request.path.rstrip("/").rsplit("/", 1)[-1]](request)

    return handler


def image(tmp_path: Path, size: int = 1000, name: str = "cat.png") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * (size // 256 + 1))
    with path.open("r+b") as handle:
        handle.truncate(size)
    return path


async def fetched(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(url) as r:
        assert r.status == 200
        return await r.read()


async def test_upload_streams_the_file_and_the_storage_serves_it_back(
    server: MockServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A small file goes in one POST; its access_url serves the same bytes; one token serves
    both uploads."""
    first, second = image(tmp_path, 1000), image(tmp_path, 3000, "dog.png")
    client = storage(session, server.base_url)
    url = await client.upload(first, size=1000, mime="image/png")
    other = await client.upload(second, size=3000, mime="image/png")
    assert url.startswith(f"{server.base_url}/files/up/")
    assert url.endswith("/cat.png")
    assert await fetched(session, url) == first.read_bytes()
    assert await fetched(session, other) == second.read_bytes()
    stats = server.stats()
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    assert stats["uploads"][digest] == {"count": 1, "size": 1000, "via": {"simple": 1}}
    assert stats["upload_bytes"] == 4000
    assert stats["requests"]["storage_token"] == {"200": 1}


async def test_a_large_file_goes_in_parts_and_arrives_whole(
    server: MockServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Above the threshold, the file goes in numbered parts (several at once), each answered
    with its ETag, then completed: the storage holds exactly the file."""
    path = image(tmp_path, 95)
    client = storage(
        session, server.base_url, part_size=10, multipart_threshold=20, part_concurrency=3
    )
    url = await client.upload(path, size=95, mime="image/png")
    assert await fetched(session, url) == path.read_bytes()
    entry = server.stats()["uploads"][hashlib.sha256(path.read_bytes()).hexdigest()]
    assert entry == {"count": 1, "size": 95, "via": {"multipart": 1}}
    assert server.stats()["requests"]["storage_part"] == {"200": 10}


async def test_the_token_is_kept_until_shortly_before_it_expires(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """A token is asked for once while it lives, and again once half its short life is gone."""
    moved = 0.0
    client = storage(session, server.base_url, clock=lambda: time.time() + moved)
    first = await client.token()
    assert await client.token() is first
    moved = server.config.scaled(server.config.storage_token_ttl)  # past its end
    assert (await client.token()).token != first.token
    assert server.stats()["requests"]["storage_token"] == {"200": 2}


async def test_a_flaky_storage_is_retried_with_backoff(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """503s, a 429 with Retry-After and a lost connection are retried; then the upload works."""
    answers = iter(
        [
            reply(503, text="<html>nginx</html>"),
            reply(429, {"detail": "slow down"}, {"Retry-After": "0.5"}),
            hang_up,
            reply(502, {"detail": "bad gateway"}),
        ]
    )
    box: dict[str, Scripted] = {}

    async def upload(request: web.Request) -> web.StreamResponse:
        await request.read()
        answer = next(answers, None)
        if answer is None:
            return web.json_response({"access_url": f"{box['s'].url}/files/x/cat.png"})
        return await answer(request)

    async def token(request: web.Request) -> web.StreamResponse:
        return await token_answer(box["s"].url)(request)

    async with scripted(by_path(token=token, upload=upload)) as server:
        box["s"] = server
        sleeps = Sleeps()
        url = await storage(session, server.url, sleeps).upload(
            image(tmp_path), size=1000, mime="image/png"
        )
    assert url == f"{server.url}/files/x/cat.png"
    assert [s.path for s in server.seen] == ["/storage/auth/token", *["/files/upload"] * 5]
    assert len(sleeps) == 4
    assert sleeps[1] >= 0.5
    assert all(len(s.body) == 1000 for s in server.seen[1:])  # the file sent whole each time


async def test_a_key_refused_for_storage_is_fatal_and_says_so(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A 401 on the token call stops at once with a message naming the cause and the ways out."""
    async with scripted(reply(401, {"detail": "No storage permission"})) as server:
        with pytest.raises(FatalError) as caught:
            await storage(session, server.url).upload(image(tmp_path), size=1000, mime="x/y")
    assert len(server.seen) == 1
    message = str(caught.value)
    assert "this key may not use fal storage" in message
    assert "No storage permission" in message
    assert "--upload data" in message
    assert KEY not in message


async def test_the_key_goes_to_the_storage_host_only_and_the_token_to_its_base_url(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """The key is sent on the token call alone; the token only to the host its answer named;
    a multipart access_url on a third host gets nothing."""
    async with (
        scripted(reply(200, {"access_url": "http://cdn.test/files/a/cat.png"})) as cdn,
        scripted(reply(200, {"detail": "never asked"})) as other,
    ):
        rest_answers = [token_answer(cdn.url)]
        async with scripted(*rest_answers) as rest:
            client = storage(session, rest.url)
            await client.upload(image(tmp_path), size=1000, mime="image/png")
            cdn.answers[:] = [reply(200, {"access_url": f"{other.url}/f/b", "uploadId": "u1"})]
            small = storage(session, rest.url, multipart_threshold=10, part_size=400)
            with pytest.raises(ProtocolError, match="sends the token nowhere else"):
                await small.upload(image(tmp_path), size=1000, mime="image/png")
    assert [s.headers["Authorization"] for s in rest.seen] == [f"Key {KEY}"] * 2
    assert {s.headers["Authorization"] for s in cdn.seen} == {f"Bearer {TOKEN}"}
    assert cdn.seen[0].headers["X-Fal-File-Name"] == "cat.png"
    assert cdn.seen[0].headers["Content-Type"] == "image/png"
    assert other.seen == []


async def test_a_redirect_from_the_storage_is_not_followed(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A 307 on the token call is fatal, and its target never sees the key."""
    async with scripted(reply(200, {})) as elsewhere:
        location = {"Location": f"{elsewhere.url}/steal"}
        async with scripted(reply(307, {}, location)) as rest:
            with pytest.raises(FatalError, match="does not follow storage redirects"):
                await storage(session, rest.url).upload(image(tmp_path), size=1000, mime="a/b")
    assert elsewhere.seen == []


async def test_a_file_shorter_than_planned_fails_at_once(
    server: MockServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A file that reads short while it is sent is not retried: it is not the file planned."""
    sleeps = Sleeps()
    client = storage(session, server.base_url, sleeps)
    with pytest.raises(PermanentError, match="shorter than when it was planned"):
        await client.upload(image(tmp_path, 1000), size=5000, mime="image/png")
    assert sleeps == []
    assert server.stats()["uploads"] == {}


def test_data_uris_inline_the_bytes_and_are_recorded_by_their_size() -> None:
    """A data: URI holds the bytes in base64; the ledger's description holds only their size."""
    uri = data_uri(b"\x89PNG....", "image/png")
    assert uri == "data:image/png;base64," + base64.b64encode(b"\x89PNG....").decode()
    assert describe_data_uri("image/png", 8) == "data:image/png;base64 (8 bytes)"
