"""Verified downloads: .part, Range resume, size and MP4 checks, caps, no credentials."""

from __future__ import annotations

import asyncio
import errno
import gzip
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from folders import mp4_bytes
from scripted import Handler, reply, scripted

from batchgen.api.backoff import Backoff
from batchgen.api.sessions import file_session
from batchgen.errors import DiskError, PermanentError, RetryableError
from batchgen.plan.settings import RunSettings
from batchgen.run.download import Downloader, Link, looks_whole, video_of
from batchgen.run.partfile import part_path
from batchgen.run.timing import Timing

VIDEO = mp4_bytes(os.urandom(300_000))
DIGEST = hashlib.sha256(VIDEO).hexdigest()


def serve(
    data: bytes = VIDEO, *, cut: int | None = None, ranges: bool = True, length: bool = True
) -> Handler:
    """A file route: honours Range (if ``ranges``), cuts the body at ``cut`` bytes."""

    async def handler(request: web.Request) -> web.StreamResponse:
        start = 0
        header = request.headers.get("Range")
        response = web.StreamResponse(status=200)
        if ranges and header:
            start = int(header.removeprefix("bytes=").rstrip("-"))
            response.set_status(206)
            response.headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if length:
            response.content_length = len(data) - start
        await response.prepare(request)
        body = data[start:] if cut is None else data[start:cut]
        await response.write(body)
        if cut is not None and request.transport is not None:
            request.transport.close()
            return response
        await response.write_eof()
        return response

    return handler


class Sleeps(list[float]):
    """Injected waits: each one recorded, and the clock (``now``) moved on by it."""

    now = 0.0

    async def __call__(self, delay: float) -> None:
        self.append(delay)
        self.now += delay

    def clock(self) -> float:
        return self.now


class Fresh:
    """A caller's ``fresh``: answers ``links`` in turn (the last one again), or raises."""

    def __init__(self, *links: Link | Exception) -> None:
        self.links, self.calls = list(links), 0

    async def __call__(self) -> Link:
        self.calls += 1
        link = self.links[min(self.calls, len(self.links)) - 1]
        if isinstance(link, Exception):
            raise link
        return link


@pytest.fixture
async def files() -> AsyncIterator[aiohttp.ClientSession]:
    async with file_session() as session:
        yield session


def downloader(
    session: aiohttp.ClientSession,
    patience: float = 1.0,
    sleeps: Sleeps | None = None,
    *,
    base: float = 0.001,
    cap: float = 1.0,
    **kwargs: Any,
) -> Downloader:
    """Waits from ``base`` doubling to ``cap`` (no jitter), on the clock of ``sleeps``."""
    sleeps = sleeps if sleeps is not None else Sleeps()
    backoff = Backoff(base=base, cap=cap, random=lambda: 0.5)
    return Downloader(
        session, backoff=backoff, patience=patience, sleep=sleeps, clock=sleeps.clock, **kwargs
    )


async def test_download_verifies_and_renames(tmp_path: Path, files: aiohttp.ClientSession) -> None:
    """A whole file lands under its final name with its sha256; no .part is left."""
    dest = tmp_path / "videos" / "a.mp4"
    async with scripted(serve()) as server:
        got = await downloader(files).fetch(server.url + "/f.mp4", dest, expected_size=len(VIDEO))
    assert (got.path, got.bytes, got.sha256) == (dest, len(VIDEO), DIGEST)
    assert dest.read_bytes() == VIDEO
    assert not part_path(dest).exists()


async def test_interrupted_part_is_resumed_with_range(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """An existing .part is continued with Range; the hash covers the whole file."""
    dest = tmp_path / "a.mp4"
    part_path(dest).write_bytes(VIDEO[:100_000])
    async with scripted(serve()) as server:
        got = await downloader(files).fetch(server.url + "/f", dest)
    assert server.seen[0].headers["Range"] == "bytes=100000-"
    assert got.sha256 == DIGEST
    assert dest.read_bytes() == VIDEO


async def test_truncated_transfer_resumes(tmp_path: Path, files: aiohttp.ClientSession) -> None:
    """A transfer cut short is retried from the bytes that reached the .part file (how many
    did depends on when the client noticed the cut)."""
    dest = tmp_path / "a.mp4"
    async with scripted(serve(cut=120_000), serve()) as server:
        got = await downloader(files).fetch(server.url + "/f", dest)
    assert len(server.seen) == 2
    kept = int(server.seen[1].headers.get("Range", "bytes=0-")[6:-1])
    assert 0 <= kept <= 120_000
    assert got.sha256 == DIGEST
    assert dest.read_bytes() == VIDEO


async def test_range_ignored_starts_over(tmp_path: Path, files: aiohttp.ClientSession) -> None:
    """A host that ignores Range (200) gets the file written from the start."""
    dest = tmp_path / "a.mp4"
    part_path(dest).write_bytes(b"garbage" * 1000)
    async with scripted(serve(ranges=False)) as server:
        got = await downloader(files).fetch(server.url + "/f", dest)
    assert got.sha256 == DIGEST
    assert dest.read_bytes() == VIDEO


async def test_size_mismatch_is_refused(tmp_path: Path, files: aiohttp.ClientSession) -> None:
    """A file whose size differs from the result's file_size is not accepted."""
    dest = tmp_path / "a.mp4"
    async with scripted(serve()) as server:
        with pytest.raises(RetryableError, match="file_size"):
            await downloader(files).fetch(server.url + "/f", dest, expected_size=123)
    assert not dest.exists()
    assert not part_path(dest).exists()


async def test_not_an_mp4_is_refused(tmp_path: Path, files: aiohttp.ClientSession) -> None:
    """A body without an MP4 'ftyp' box (an HTML error page) is not accepted."""
    dest = tmp_path / "a.mp4"
    async with scripted(serve(b"<html>oops</html>")) as server:
        with pytest.raises(RetryableError, match="MP4"):
            await downloader(files).fetch(server.url + "/f", dest)
    assert not dest.exists()
    assert not part_path(dest).exists()


@pytest.mark.parametrize("length", [True, False])
async def test_max_file_bytes(tmp_path: Path, files: aiohttp.ClientSession, length: bool) -> None:
    """Files above --max-file-bytes are refused, by Content-Length or while streaming."""
    dest = tmp_path / "a.mp4"
    async with scripted(serve(length=length)) as server:
        with pytest.raises(PermanentError, match="max-file-bytes"):
            await downloader(files, max_bytes=1000).fetch(server.url + "/f", dest)
    assert not part_path(dest).exists()
    with pytest.raises(PermanentError, match="max-file-bytes"):
        await downloader(files, max_bytes=1000).fetch("http://unused/", dest, expected_size=5000)


async def test_missing_file_is_gone_only_after_retries(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """Without a way to a fresh link, a file host answering 404 (or 410, 403, 401) three
    times in a row means the video is gone (error_type video_gone); one 404 between good
    answers does not; a 503 is retried."""
    for status in (404, 410, 403, 401):
        async with scripted(reply(status, {"detail": "gone"})) as server:
            with pytest.raises(PermanentError, match="gone from the file host") as caught:
                await downloader(files).fetch(server.url + "/f", tmp_path / "a.mp4")
        assert caught.value.error_type == "video_gone"
        assert f"answered {status}" in str(caught.value)
        assert len(server.seen) == 3
    async with scripted(reply(404, {}), reply(503, text="busy"), serve()) as server:
        got = await downloader(files).fetch(server.url + "/f", tmp_path / "b.mp4")
    assert got.sha256 == DIGEST


async def test_outage_is_ridden_out(tmp_path: Path, files: aiohttp.ClientSession) -> None:
    """A file host down for many tries in a row (a CDN outage) is waited out, with growing
    waits up to their cap, and the video is fetched."""
    outage = [reply(503, text="busy") for _ in range(10)]
    sleeps = Sleeps()
    async with scripted(*outage, serve()) as server:
        got = await downloader(files, 600, sleeps, base=1, cap=30).fetch(
            server.url + "/f", tmp_path / "a.mp4"
        )
    assert got.sha256 == DIGEST
    assert len(server.seen) == 11
    assert sleeps == [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]


async def test_the_default_patience_rides_out_a_twelve_minute_outage(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """With the run's default schedule (waits from 0.5 s, jittered, capped near 30 s) and
    patience (15 min), a file host down for 12 minutes is waited out: the video is fetched
    within a capped wait of the host's return, in a few dozen tries."""
    sleeps = Sleeps()
    outage = 12 * 60

    async def down_then_up(request: web.Request) -> web.StreamResponse:
        if sleeps.now < outage:
            return web.Response(status=503, text="busy")
        return await serve()(request)

    async with scripted(down_then_up) as server:
        fetcher = Downloader(
            files,
            backoff=Timing().download_backoff,
            patience=RunSettings().download_patience,
            sleep=sleeps,
            clock=sleeps.clock,
        )
        got = await fetcher.fetch(server.url + "/f", tmp_path / "a.mp4")
    assert got.sha256 == DIGEST
    assert outage <= sleeps.now <= outage + 45
    assert max(sleeps) <= 45
    assert 20 <= len(server.seen) <= 60


async def test_download_gives_up_when_its_patience_is_spent(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """A file host that keeps failing is tried until the patience is spent, the last try
    at its very end; then RetryableError (error_type download) with the last failure."""
    sleeps = Sleeps()
    async with scripted(reply(503, text="busy")) as server:
        with pytest.raises(RetryableError, match="file answered 503") as caught:
            await downloader(files, 100, sleeps, base=1, cap=30).fetch(
                server.url + "/f", tmp_path / "a.mp4"
            )
    assert caught.value.error_type == "download"
    assert sleeps == [1, 2, 4, 8, 16, 30, 30, 9]
    assert sleeps.now == 100
    assert len(server.seen) == 9


async def test_a_host_out_of_patience_fails_its_other_downloads_at_once(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """Once a host has failed for the whole patience, another download from it gives up at
    its first failure (a queue of videos is not a patience each); once the host answers,
    a new failure gets the whole patience again."""
    sleeps = Sleeps()
    fetcher = downloader(files, 10, sleeps, base=1, cap=30)
    async with scripted(reply(503, text="busy")) as server:
        with pytest.raises(RetryableError):
            await fetcher.fetch(server.url + "/a", tmp_path / "a.mp4")
        waited, tries = sleeps.now, len(server.seen)
        with pytest.raises(RetryableError):
            await fetcher.fetch(server.url + "/b", tmp_path / "b.mp4")
    assert (waited, sleeps.now, len(server.seen)) == (10, 10, tries + 1)
    async with scripted(serve(), reply(503, text="busy"), serve()) as server:
        await fetcher.fetch(server.url + "/c", tmp_path / "c.mp4")
        got = await fetcher.fetch(server.url + "/d", tmp_path / "d.mp4")
    assert got.sha256 == DIGEST
    assert sleeps.now == 11


async def test_transfers_that_make_progress_do_not_spend_the_patience(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """A host whose every transfer stalls, each one having brought more bytes, answers: the
    download goes on past the patience and gets the whole file."""
    big = mp4_bytes(os.urandom(3_000_000))
    step = len(big) // 5  # two chunks or more reach the .part before each stall

    def stall(upto: int) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            start = int(request.headers.get("Range", "bytes=0-")[6:-1])
            response = web.StreamResponse(status=206 if start else 200)
            if start:
                response.headers["Content-Range"] = f"bytes {start}-{len(big) - 1}/{len(big)}"
            response.content_length = len(big) - start
            await response.prepare(request)
            await response.write(big[start:upto])
            await asyncio.Event().wait()  # silent until the client's read timeout
            return response

        return handler

    sleeps = Sleeps()
    async with scripted(*[stall(step * n) for n in range(1, 5)], serve(big)) as server:
        fetcher = downloader(files, 3, sleeps, base=1, cap=30, read_timeout=0.05)
        got = await fetcher.fetch(server.url + "/f", tmp_path / "a.mp4")
    assert got.sha256 == hashlib.sha256(big).hexdigest()
    assert len(server.seen) == 5
    assert sleeps.now > 3


async def test_a_refused_link_is_replaced_by_a_fresh_one(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """A link the file host refuses (403: a signed link expired) is replaced at once by a
    fresh one read from the result, and the video fetched from it."""
    sleeps = Sleeps()
    async with scripted(reply(403, text="expired"), serve()) as server:
        fresh = Fresh((server.url + "/new?sig=2", len(VIDEO)))
        got = await downloader(files, sleeps=sleeps).fetch(
            server.url + "/old?sig=1", tmp_path / "a.mp4", fresh=fresh
        )
    assert got.sha256 == DIGEST
    assert [(s.path, s.query) for s in server.seen] == [("/old", "sig=1"), ("/new", "sig=2")]
    assert (fresh.calls, sleeps) == (1, [])


async def test_a_video_is_gone_when_the_result_is_gone(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """A refused link whose job's result the provider no longer has: the video is gone at
    once (video_gone), and the message says both."""
    gone = PermanentError("the provider no longer has the job's result", error_type="video_gone")
    async with scripted(reply(403, text="expired")) as server:
        with pytest.raises(PermanentError) as caught:
            await downloader(files).fetch(server.url + "/f", tmp_path / "a.mp4", fresh=Fresh(gone))
    assert caught.value.error_type == "video_gone"
    assert "file answered 403" in str(caught.value)
    assert "no longer has the job's result" in str(caught.value)
    assert len(server.seen) == 1


async def test_fresh_links_refused_too_mean_the_video_is_gone(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """A file host refusing fresh links too (the same link again, or new ones) means the
    video is gone after three refusals in a row, the result read again after the first two."""
    for links in ([("SAME", None)], [(f"/{n}", None) for n in range(1, 9)]):
        async with scripted(reply(404, {"detail": "gone"})) as server:
            fresh = Fresh(
                *[(server.url + "/f" if u == "SAME" else server.url + u, s) for u, s in links]
            )
            with pytest.raises(PermanentError, match="read afresh") as caught:
                await downloader(files).fetch(server.url + "/f", tmp_path / "a.mp4", fresh=fresh)
        assert caught.value.error_type == "video_gone"
        assert (len(server.seen), fresh.calls) == (3, 2)


async def test_a_result_that_cannot_be_read_spends_patience_not_the_video(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """A refused link whose result cannot be read just now (the API down) does not make the
    video gone: it is tried again until the patience is spent, then gives up as a download."""
    sleeps = Sleeps()
    unread = RetryableError("the result could not be read again: 503")
    async with scripted(reply(403, text="expired")) as server:
        with pytest.raises(RetryableError, match="could not be read") as caught:
            await downloader(files, 20, sleeps, base=1, cap=30).fetch(
                server.url + "/f", tmp_path / "a.mp4", fresh=Fresh(unread)
            )
    assert caught.value.error_type == "download"
    assert sleeps.now == 20
    assert len(server.seen) > 3


async def test_a_refusal_sent_as_a_body_asks_for_a_fresh_link(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """A 200 whose body is a storage's error document (signature expired) instead of the
    video is a refused link: the result is read again and the fresh link fetched."""
    refusal = (
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
        "<Message>Request has expired</Message></Error>"
    )

    async def xml(request: web.Request) -> web.StreamResponse:
        return web.Response(text=refusal, content_type="application/xml")

    async with scripted(xml, serve()) as server:
        fresh = Fresh((server.url + "/new", None))
        got = await downloader(files).fetch(server.url + "/old", tmp_path / "a.mp4", fresh=fresh)
    assert got.sha256 == DIGEST
    assert fresh.calls == 1
    assert not part_path(tmp_path / "a.mp4").exists()


async def test_cut_body_without_size_is_refused(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """A chunked body (no Content-Length, no file_size) cut in half is not accepted: the MP4
    box walk finds its last box running past the end."""

    async def half(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(VIDEO[: len(VIDEO) // 2])
        await response.write_eof()
        return response

    dest = tmp_path / "a.mp4"
    async with scripted(half, half, serve(length=False)) as server:
        got = await downloader(files).fetch(server.url + "/f", dest)
    assert (got.sha256, dest.read_bytes()) == (DIGEST, VIDEO)
    assert len(server.seen) == 3


async def test_no_credentials_to_file_hosts_or_through_redirects(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """The file session sends no Authorization, to the first host or after a redirect."""
    async with scripted(serve()) as cdn:

        async def moved(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound(cdn.url + "/real.mp4")

        async with scripted(moved) as first:
            got = await downloader(files).fetch(first.url + "/f", tmp_path / "a.mp4")
    assert got.sha256 == DIGEST
    assert [s.path for s in cdn.seen] == ["/real.mp4"]
    for seen in first.seen + cdn.seen:
        assert "Authorization" not in seen.headers
        assert "Cookie" not in seen.headers


async def test_unwritable_destination_is_a_disk_error(
    tmp_path: Path, files: aiohttp.ClientSession
) -> None:
    """A file in place of the folder, or a folder in place of the video, raises DiskError
    naming the video and the system's reason."""
    (tmp_path / "videos").write_bytes(b"not a folder")
    async with scripted(serve()) as server:
        with pytest.raises(DiskError) as caught:
            await downloader(files).fetch(
                server.url + "/f", tmp_path / "videos" / "a.mp4", name="videos/a.mp4"
            )
        assert str(caught.value) == "cannot write videos/a.mp4: Not a directory"
        assert caught.value.errno == errno.ENOTDIR
        assert server.seen == []
        (tmp_path / "out" / "b.mp4").mkdir(parents=True)
        with pytest.raises(DiskError, match=r"cannot write .*b\.mp4: Is a directory"):
            await downloader(files).fetch(server.url + "/f", tmp_path / "out" / "b.mp4")
    assert len(server.seen) == 1


def test_looks_whole(tmp_path: Path) -> None:
    """A finished file is whole when present, of its recorded size and a whole MP4: a file
    cut short or with bytes after its last box is not, even when no size was recorded."""
    path = tmp_path / "v.mp4"
    assert not looks_whole(path, None)
    path.write_bytes(VIDEO)
    assert looks_whole(path, len(VIDEO))
    assert looks_whole(path, None)
    assert not looks_whole(path, len(VIDEO) - 1)
    path.write_bytes(VIDEO[:-1])
    assert not looks_whole(path, None)
    path.write_bytes(VIDEO + b"junk")
    assert not looks_whole(path, None)
    path.write_bytes(VIDEO[24:])  # no ftyp first
    assert not looks_whole(path, None)
    path.write_bytes(b"<html>")
    assert not looks_whole(path, None)


def gzipped(data: bytes = VIDEO) -> Handler:
    """A file host that gzips the file whatever it was asked for: the whole file (200), or a
    range of its encoding (206) when asked for one; Content-Length the encoded size."""
    encoded = gzip.compress(data)

    async def handler(request: web.Request) -> web.StreamResponse:
        start = int(request.headers.get("Range", "bytes=0-")[6:-1])
        headers = {"Content-Encoding": "gzip", "Content-Type": "video/mp4"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(encoded) - 1}/{len(encoded)}"
        return web.Response(status=206 if start else 200, body=encoded[start:], headers=headers)

    return handler


async def test_gzip_encoded_file_is_decoded(tmp_path: Path, files: aiohttp.ClientSession) -> None:
    """A file host that sends the MP4 gzip-encoded although asked for identity: the file is
    decoded and kept whole (Content-Length counts the encoding, file_size the file); a .part
    is not resumed from a range of the encoding but fetched again whole."""
    async with scripted(gzipped()) as server:
        got = await downloader(files).fetch(
            server.url + "/f", tmp_path / "a.mp4", expected_size=len(VIDEO)
        )
        assert (got.sha256, (tmp_path / "a.mp4").read_bytes()) == (DIGEST, VIDEO)
        assert [seen.headers.get("Accept-Encoding") for seen in server.seen] == ["identity"]
        part_path(tmp_path / "b.mp4").write_bytes(VIDEO[:100_000])
        got = await downloader(files).fetch(server.url + "/f", tmp_path / "b.mp4")
    assert (got.sha256, (tmp_path / "b.mp4").read_bytes()) == (DIGEST, VIDEO)
    assert [seen.headers.get("Range") for seen in server.seen[1:]] == ["bytes=100000-", None]


def test_the_video_is_found_in_the_shapes_proxies_answer() -> None:
    """A File at the output key, a bare URL there, a list of Files, or the first File of
    another key; a number or null is no video."""
    url = "https://cdn.example/v.mp4"
    assert video_of({"video": {"url": url, "file_size": 5}}, "video") == (url, 5)
    assert video_of({"video": url}, "video") == (url, None)
    assert video_of({"video": [{"url": url}]}, "video") == (url, None)
    assert video_of({"clip": {"url": url}}, "video") == (url, None)
    assert video_of({"video": 7}, "video") == (None, None)
    assert video_of({"video": None, "seed": 3}, "video") == (None, None)
