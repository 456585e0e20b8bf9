"""Verified downloads: .part, Range resume, size and MP4 checks, caps, no credentials."""

from __future__ import annotations

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
from batchgen.errors import DiskError, PermanentError, RetryableError
from batchgen.run.download import Downloader, file_session, looks_whole, part_path

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
    async def __call__(self, delay: float) -> None:
        self.append(delay)


@pytest.fixture
async def files() -> AsyncIterator[aiohttp.ClientSession]:
    async with file_session() as session:
        yield session


def downloader(
    session: aiohttp.ClientSession, attempts: int = 3, sleeps: Sleeps | None = None, **kwargs: Any
) -> Downloader:
    backoff = Backoff(base=0.001, attempts=attempts, random=lambda: 0.5)
    return Downloader(
        session, backoff=backoff, sleep=sleeps if sleeps is not None else Sleeps(), **kwargs
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
    """A file host answering 404 (or 410, 403) three times in a row means the video is gone
    (error_type video_gone, naming --retry-failed); one 404 between good answers does not;
    a 503 is retried."""
    for status in (404, 410, 403):
        async with scripted(reply(status, {"detail": "gone"})) as server:
            with pytest.raises(PermanentError, match="gone from the file host") as caught:
                await downloader(files).fetch(server.url + "/f", tmp_path / "a.mp4")
        assert caught.value.error_type == "video_gone"
        assert "--retry-failed" in str(caught.value)
        assert len(server.seen) == 3
    async with scripted(reply(404, {}), reply(503, text="busy"), serve()) as server:
        got = await downloader(files).fetch(server.url + "/f", tmp_path / "b.mp4")
    assert got.sha256 == DIGEST


async def test_outage_is_ridden_out(tmp_path: Path, files: aiohttp.ClientSession) -> None:
    """A file host down for many tries in a row (a CDN outage) is waited out, with growing
    waits, and the video is fetched; giving up says so with error_type download."""
    outage = [reply(503, text="busy") for _ in range(10)]
    sleeps = Sleeps()
    async with scripted(*outage, serve()) as server:
        got = await downloader(files, 14, sleeps).fetch(server.url + "/f", tmp_path / "a.mp4")
    assert got.sha256 == DIGEST
    assert len(server.seen) == 11
    assert len(sleeps) == 10
    assert sleeps == sorted(sleeps)
    assert sleeps[-1] > sleeps[0]
    async with scripted(reply(503, text="busy")) as server:
        with pytest.raises(RetryableError, match="gave up after 4 tries") as caught:
            await downloader(files, attempts=4).fetch(server.url + "/f", tmp_path / "b.mp4")
    assert caught.value.error_type == "download"


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
        got = await downloader(files, attempts=3).fetch(server.url + "/f", dest)
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
