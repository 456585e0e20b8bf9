"""The emulator's file route: public, ranged, hashed in the stats, and as large as asked."""

from __future__ import annotations

import asyncio
import hashlib

import aiohttp
import pytest
from mock_fixtures import AUTH, fast_config, submit, wait_completed

from batchgen.mock import MockServer
from batchgen.mock.files import RangeNotSatisfiable, parse_range


async def finished_video(session: aiohttp.ClientSession, server: MockServer) -> dict:
    """Run one job to completion and return its result's video File."""
    job = await submit(session, server)
    await wait_completed(session, server, job["request_id"])
    async with session.get(job["response_url"], headers=AUTH) as r:
        video: dict = (await r.json())["video"]
    video["request_id"] = job["request_id"]
    video["response_url"] = job["response_url"]
    return video


async def test_download_is_public_and_matches_the_stats(server: MockServer, session) -> None:
    """The file needs no key, is an MP4 of file_size bytes, and its sha256 is in the stats."""
    video = await finished_video(session, server)
    async with session.get(video["url"]) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "video/mp4"
        assert r.headers["Accept-Ranges"] == "bytes"
        assert int(r.headers["Content-Length"]) == video["file_size"]
        data = await r.read()
    assert data[4:8] == b"ftyp"
    entry = server.stats()["files"][video["request_id"]]
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert (entry["size"], entry["downloads"], entry["truncated"]) == (len(data), 1, 0)
    assert server.stats()["file_auth"] == {"count": 0, "schemes": [], "values": []}


async def test_authorization_sent_to_the_file_route_is_recorded(server: MockServer, session):
    """A client that leaks its key to the CDN is caught: the header is counted and kept."""
    video = await finished_video(session, server)
    async with session.get(video["url"], headers={"Authorization": "Bearer leaked"}) as r:
        assert r.status == 200
    assert server.stats()["file_auth"] == {
        "count": 1,
        "schemes": ["Bearer"],
        "values": ["Bearer leaked"],
    }


async def test_ranges(server: MockServer, session) -> None:
    """bytes=a-b, a- and -n answer 206 with Content-Range and exactly those bytes."""
    video = await finished_video(session, server)
    async with session.get(video["url"]) as r:
        full = await r.read()
    size = len(full)
    for header, start, end in (
        ("bytes=0-99", 0, 100),
        ("bytes=100-", 100, size),
        ("bytes=-50", size - 50, size),
        (f"bytes=10-{size + 1000}", 10, size),
    ):
        async with session.get(video["url"], headers={"Range": header}) as r:
            assert r.status == 206, header
            assert r.headers["Content-Range"] == f"bytes {start}-{end - 1}/{size}"
            assert await r.read() == full[start:end]


async def test_unsatisfiable_and_ignored_ranges(server: MockServer, session) -> None:
    """A range past the end is 416 with bytes */size; several ranges get the whole file."""
    video = await finished_video(session, server)
    size = video["file_size"]
    async with session.get(video["url"], headers={"Range": f"bytes={size}-"}) as r:
        assert r.status == 416
        assert r.headers["Content-Range"] == f"bytes */{size}"
    async with session.get(video["url"], headers={"Range": "bytes=0-1,5-6"}) as r:
        assert r.status == 200
        assert len(await r.read()) == size


async def test_head_gives_the_size_without_a_body(server: MockServer, session) -> None:
    """HEAD on a file answers its Content-Length and no bytes."""
    video = await finished_video(session, server)
    async with session.head(video["url"]) as r:
        assert r.status == 200
        assert int(r.headers["Content-Length"]) == video["file_size"]
        assert await r.read() == b""


async def test_missing_files_are_404(server: MockServer, session) -> None:
    """Unknown ids, other names, unfinished jobs and failed jobs have no file."""
    video = await finished_video(session, server)
    server.config.latency = 3_600_000.0
    running = await submit(session, server)
    base = server.base_url
    for url in (
        f"{base}/files/nope/output.mp4",
        video["url"].replace("output.mp4", "other.mp4"),
        f"{base}/files/{running['request_id']}/output.mp4",
    ):
        async with session.get(url) as r:
            assert r.status == 404, url
    server.config.latency = 20.0
    refused = await submit(session, server, {"duration": "7"})
    await wait_completed(session, server, refused["request_id"])
    async with session.get(f"{base}/files/{refused['request_id']}/output.mp4") as r:
        assert r.status == 404


async def test_large_videos_stream_at_the_configured_size(server: MockServer, session) -> None:
    """video_bytes pads every video to that exact size, streamed in chunks, hash included."""
    server.config.video_bytes = 20_000_000
    video = await finished_video(session, server)
    assert video["file_size"] == 20_000_000
    digest = hashlib.sha256()
    received = 0
    async with session.get(video["url"]) as r:
        async for piece in r.content.iter_chunked(1 << 20):
            digest.update(piece)
            received += len(piece)
    assert received == 20_000_000
    # The emulator records a download once its answer has gone out: a moment after it arrives.
    for _ in range(500):
        served = server.stats()["files"].get(video["request_id"])
        if served is not None:
            break
        await asyncio.sleep(0.01)
    assert served is not None
    assert served["sha256"] == digest.hexdigest()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", (0, 1)),
        ("bytes=5-", (5, 100)),
        ("bytes=-10", (90, 100)),
        ("bytes=-1000", (0, 100)),
        ("bytes=9-3", None),
        ("items=0-5", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    """Single byte ranges become [start, end); anything not understood means the whole file."""
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0"])
def test_parse_range_unsatisfiable(header: str) -> None:
    """A range that selects no byte of the file is unsatisfiable."""
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


async def test_signed_links_expire_and_the_result_gives_a_fresh_one(session) -> None:
    """With file_link_ttl, a result names its video by a signed link: it serves the file; a
    tampered, a plain and an expired link answer 403 with S3's XML error; reading the
    result again gives a fresh link that works."""
    async with MockServer(fast_config(file_link_ttl=3600.0)) as server:
        video = await finished_video(session, server)
        url = video["url"]
        assert "X-Amz-Expires=" in url
        assert "X-Amz-Signature=" in url
        async with session.get(url) as r:
            assert r.status == 200
            assert (await r.read())[4:8] == b"ftyp"
        tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
        for link, code in (
            (tampered, "SignatureDoesNotMatch"),
            (url.split("?")[0], "AccessDenied"),
        ):
            async with session.get(link) as r:
                assert (r.status, r.content_type) == (403, "application/xml")
                assert f"<Code>{code}</Code>" in await r.text()
        server.config.file_link_ttl = 0.0  # links expire as they are handed out
        expired = (await finished_video(session, server))["url"]
        async with session.get(expired) as r:
            assert r.status == 403
            assert "<Message>Request has expired</Message>" in await r.text()
        server.config.file_link_ttl = 3600.0
        async with session.get(video["response_url"], headers=AUTH) as r:
            fresh = (await r.json())["video"]["url"]
        async with session.get(fresh) as r:
            assert r.status == 200
        assert server.stats()["faults"]["link_refused"] == 3
