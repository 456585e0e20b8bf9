"""Verified downloads of video files: ``.part`` file, resume with Range, checks, atomic rename.

A file is streamed to ``NAME.part`` beside its final path in constant memory, hashed on the
way (``batchgen.run.partfile``). An interrupted ``.part`` is resumed with a ``Range`` request
(and its bytes hashed again first). The file is asked for as it is (``Accept-Encoding:
identity``); a host that sends it gzip-encoded all the same is decoded, its ``Content-Length``
(of the encoding) not compared, and not resumed from an encoded range. The file counts only
when its size matches both
``Content-Length`` and the result's ``file_size`` (when given) and it is a whole MP4
(``batchgen.run.mp4check``: the top-level boxes add up to exactly the file, ``ftyp`` first,
``moov`` present, which is what decides when no size was announced); then it is fsynced and
moved into place with ``os.replace``, so a video in the folder is always whole.

A paid video is fetched again, never generated again. Transient failures (5xx, 429, timeouts,
broken connections, short files) are tried again with growing waits for as long as the run's
patience lasts (``batchgen.run.patience``: ``--download-patience``, 15 min; fal keeps output
files at least 7 days), then give up with ``error_type`` ``download``. A 401, 403, 404 or 410,
or a body that is a file host's refusal instead of a video (an S3 error document saying the
signature does not match or the link expired), refuses the *link*: signed links (S3 presigned
URLs, CDN tokens) expire, so when the caller gives ``fresh`` (which reads the job's result
again) a new link is asked for and tried at once. ``fresh`` raises PermanentError
(``video_gone``) when the provider no longer has the job's result, and RetryableError when the
result cannot be read just now (counted as a transient failure). The video is gone
(``error_type`` ``video_gone``) when ``LINK_TRIES`` refusals come in a row, each after a fresh
read when there is one. What the caller records decides what a later run does: ``download``
and ``disk`` are fetched again (see ``batchgen.run.download_pool``); ``video_refused`` (too
big, not a video) waits for ``--retry-failed``; only ``video_gone`` is generated again, by
``--retry-failed``, paid again.

File hosts are public CDNs: the session given here must carry no credentials (see
``batchgen.api.sessions.file_session``), so nothing leaks to them, through redirects either.

A local file that cannot be written (disk full, permission denied, name too long, a file
where the folder should be) raises ``DiskError``, never a bare OSError: the caller decides
whether one job failed or the disk did.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import math
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from batchgen.api.answers import describe
from batchgen.api.backoff import Backoff
from batchgen.api.classify import classify
from batchgen.errors import (
    ApiError,
    DiskError,
    PermanentError,
    RetryableError,
    open_files_error,
    too_many_open_files,
)
from batchgen.run.foldersync import FolderSync
from batchgen.run.mp4check import mp4_problem
from batchgen.run.partfile import PartFile, Sink
from batchgen.run.patience import RESULTS, Patience

log = logging.getLogger("batchgen.http")
CHUNK = 256 * 1024
# error_types of a failed download (see the module docstring).
DISK = "disk"  # the video could not be written here
DOWNLOAD = "download"
VIDEO_GONE = "video_gone"
VIDEO_REFUSED = "video_refused"
# A file host answering one of these refuses the link (a signed link expired, a file gone);
# this many refusals in a row, each after the result was read again when the caller can, and
# the file is gone.
REFUSED_STATUSES = frozenset({401, 403, 404, 410})
LINK_TRIES = 3
# batchgen's own error_type of a body that is a file host's refusal, not the video.
LINK_REFUSED = "link_refused"
HEAD = 2048  # the first bytes of a body kept, to tell a refusal sent as a body from a video
_REFUSAL = re.compile(
    rb"SignatureDoesNotMatch|AccessDenied|Request has expired|ExpiredToken|InvalidToken|"
    rb"(?i:signature (?:has )?expired|token (?:has |is )?expired|link (?:has )?expired)"
)
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
# A new link to a video, and its announced size: re-read from the job's result.
Link = tuple[str, int | None]
Fresh = Callable[[], Awaitable[Link]]


@dataclass(frozen=True, slots=True)
class Fetched:
    """A verified file in its final place."""

    path: Path | str  # a local path, or an object's URL
    bytes: int
    sha256: str


def looks_whole(path: Path, size: int | None) -> bool:
    """Check of a finished video: present, of the recorded size, a whole MP4 (box walk)."""
    try:
        with path.open("rb") as handle:
            actual = os.fstat(handle.fileno()).st_size
            return (size is None or actual == size) and mp4_problem(handle) is None
    except OSError:
        return False


class Downloader:
    """Fetches files with retries. Holds no concurrency limit: the caller's workers do."""

    __slots__ = (
        "_backoff",
        "_folders",
        "_max_bytes",
        "_patience",
        "_session",
        "_sleep",
        "_timeout",
    )

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        backoff: Backoff | None = None,
        patience: float = 900.0,
        max_bytes: int | None = None,
        read_timeout: float = 60.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)  # its attempts are not used
        self._patience = Patience(patience, clock)
        self._max_bytes = max_bytes
        self._timeout = aiohttp.ClientTimeout(total=None, connect=30.0, sock_read=read_timeout)
        self._sleep = sleep
        self._folders = FolderSync()  # the videos' folder fsyncs, shared (group fsync)

    @property
    def folder_fsyncs(self) -> int:
        """How many folder fsyncs the videos fetched so far took (see ``FolderSync``)."""
        return self._folders.fsyncs

    async def fetch(
        self,
        url: str,
        dest: Path | Sink,
        *,
        expected_size: int | None = None,
        name: str | None = None,
        fresh: Fresh | None = None,
    ) -> Fetched:
        """Download ``url`` to ``dest`` (a path: through ``dest.part``, resumed if present;
        or a ``Sink``); raise PermanentError (file gone, too big, not an MP4), RetryableError
        (out of patience) or DiskError (``dest`` cannot be written; it names ``name``, else
        ``dest``). ``fresh`` gives a new link to the video when the file host refuses this
        one (see the module docstring)."""
        sink = PartFile(dest, self._folders) if isinstance(dest, Path) else dest
        try:
            return await self._fetch(url, sink, expected_size, fresh)
        except OSError as exc:  # network errors became RetryableError in _once: this is local
            if isinstance(exc, FileExistsError):  # mkdir: a file where a folder must be
                exc = NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            raise DiskError.from_os(name or str(sink.where), exc) from None

    async def _fetch(
        self, url: str, sink: Sink, expected_size: int | None, fresh: Fresh | None
    ) -> Fetched:
        sink.prepare()
        if (
            self._max_bytes is not None
            and expected_size is not None
            and expected_size > self._max_bytes
        ):
            raise PermanentError(
                f"video is {expected_size} bytes, above --max-file-bytes {self._max_bytes}",
                error_type=VIDEO_REFUSED,
            )
        retry = refused = 0
        since: float | None = None  # when this download's failures without an answer began
        while True:
            kept = sink.kept()
            try:
                fetched = await self._once(url, sink, expected_size)
            except RetryableError as exc:
                error: ApiError = exc
                refused = 0
                if sink.kept() > kept:  # bytes came: the host answers, only not all of it
                    self._patience.answered(url)
                    since = None
                since, left = self._patience.failed(url, since)
            except PermanentError as exc:
                if not link_refused(exc):
                    raise
                self._patience.answered(url)  # the host is up: it refuses this link
                error, left = exc, math.inf
                refused += 1
                if refused >= LINK_TRIES:
                    raise _gone(exc, refused, fresh is not None) from None
                if fresh is not None:
                    link = await _afresh(fresh, exc)
                    if isinstance(link, RetryableError):  # the result cannot be read now
                        refused -= 1  # no refusal counts until a fresh link is refused too
                        error = link
                        since, left = self._patience.failed(RESULTS, since)
                    else:
                        self._patience.answered(RESULTS)
                        since = None
                        if link[0] != url:  # a new link: try it at once
                            url, expected_size = link
                            continue
                else:
                    since = None
            else:
                self._patience.answered(url)
                return fetched
            if left <= 0:
                raise RetryableError(str(error), status=error.status, error_type=DOWNLOAD) from None
            retry += 1
            await self._sleep(min(self._backoff.delay(retry, error.retry_after), left))

    async def _once(self, url: str, sink: Sink, expected_size: int | None) -> Fetched:
        try:
            return await self._try(url, sink, expected_size)
        finally:
            sink.stop()  # a try that ended early: keep what resumes, drop the rest

    async def _try(self, url: str, sink: Sink, expected_size: int | None) -> Fetched:
        offset = sink.kept()
        # Byte counts and ranges are of the file itself: ask for it as it is (see _encoded).
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        started = time.perf_counter()
        try:
            async with self._session.get(url, headers=headers, timeout=self._timeout) as resp:
                _log(url, resp.status, started)
                if resp.status == 416 and offset:
                    await sink.drop()  # our part is longer than the file: start over
                    raise RetryableError("range not satisfiable; starting over")
                error = classify(resp.status, resp.headers, b"", route="file")
                if error is not None:
                    raise error
                digest = hashlib.sha256()
                encoded = _encoded(resp)
                if encoded and resp.status == 206 and offset:  # a range of the encoding
                    await sink.drop()
                    raise RetryableError(f"resume answered {encoded}-encoded; starting over")
                if resp.status == 206 and offset:
                    if not _range_starts_at(resp.headers.get("Content-Range"), offset):
                        await sink.drop()
                        raise RetryableError("resume answered the wrong range; starting over")
                    await sink.hash_kept(digest)
                else:
                    offset = 0
                length = None if encoded else resp.content_length  # else: of the encoding
                total = None if length is None else offset + length
                await self._check_size(total, expected_size, sink)
                size, head = await self._stream(resp, sink, offset, digest)
        except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
            await sink.broken()  # a .part keeps what arrived; the next try asks for the rest
            raise RetryableError(f"download broke: {describe(exc)}") from None
        except OSError as exc:
            if open_files_error(exc) is None:
                raise  # the disk's: fetch makes it a DiskError
            await sink.broken()  # no descriptor for the .part now; one may be free later
            raise RetryableError(f"download waits: {too_many_open_files(exc.errno)}") from None
        for want, what in ((total, "Content-Length"), (expected_size, "file_size")):
            if want is not None and size != want:
                await sink.drop()
                raise _misread(head, f"got {size} bytes, {what} says {want}")
        problem = await sink.seal(digest.hexdigest(), size)
        if problem is not None:
            raise _misread(head, f"the file is not a whole MP4 video: {problem}")
        return Fetched(sink.where, size, digest.hexdigest())

    async def _check_size(self, total: int | None, expected: int | None, sink: Sink) -> None:
        if total is not None and expected is not None and total != expected:
            await sink.drop()
            raise RetryableError(f"Content-Length {total} but file_size {expected}")
        if self._max_bytes is not None and total is not None and total > self._max_bytes:
            await sink.drop()
            raise PermanentError(
                f"video is {total} bytes, above --max-file-bytes {self._max_bytes}"
            )

    async def _stream(
        self, resp: aiohttp.ClientResponse, sink: Sink, offset: int, digest: Any
    ) -> tuple[int, bytes]:
        """Stream the body to ``sink``; its size (with ``offset``) and its first bytes."""
        size, head = offset, b""
        await sink.open(offset)
        async for chunk in resp.content.iter_chunked(CHUNK):
            if len(head) < HEAD:
                head += chunk[: HEAD - len(head)]
            size += len(chunk)
            if self._max_bytes is not None and size > self._max_bytes:
                await sink.drop()
                raise PermanentError(
                    f"video is larger than --max-file-bytes {self._max_bytes}",
                    error_type=VIDEO_REFUSED,
                )
            await sink.write(chunk)
            digest.update(chunk)
        return size, head


def link_refused(exc: PermanentError) -> bool:
    """True when the file host refused the link rather than failed (see the module
    docstring): a fresh link may well be fetched."""
    return exc.status in REFUSED_STATUSES or exc.error_type == LINK_REFUSED


def _misread(head: bytes, problem: str) -> ApiError:
    """A body that failed its checks: the link refused when it reads as a file host's refusal
    (an S3 or CDN error document: a signature that does not match, an expired link or token),
    else a transient failure (a cut-off or garbled transfer)."""
    found = _REFUSAL.search(head)
    if found is None:
        return RetryableError(problem)
    return PermanentError(
        f"the file host sent a refusal instead of the video ({found[0].decode()}): {problem}",
        error_type=LINK_REFUSED,
    )


async def _afresh(fresh: Fresh, refusal: PermanentError) -> Link | RetryableError:
    """A new link for the one ``refusal`` refused; or why not, when the result cannot be
    read just now. The video is gone (PermanentError) when the provider no longer has the
    job's result."""
    try:
        return await fresh()
    except RetryableError as exc:
        return exc
    except PermanentError as exc:
        raise PermanentError(
            f"{refusal}; {exc}", status=refusal.status, error_type=exc.error_type or VIDEO_GONE
        ) from None


def _gone(exc: PermanentError, times: int, afresh: bool) -> PermanentError:
    where = ", from links read afresh from the result too" if afresh else ""
    return PermanentError(
        f"the video file is gone from the file host ({exc}, {times} times{where})",
        status=exc.status,
        error_type=VIDEO_GONE,
    )


def _encoded(resp: aiohttp.ClientResponse) -> str | None:
    """The ``Content-Encoding`` (gzip...) of a file host that encoded the file although asked
    for ``identity``; None for the file as it is. aiohttp decodes it, so the bytes written
    are the file's, while ``Content-Length`` and ranges count the encoded ones."""
    coding = resp.headers.get("Content-Encoding", "").strip().lower()
    return coding if coding not in ("", "identity") else None


def _range_starts_at(header: str | None, offset: int) -> bool:
    match = _RANGE.fullmatch((header or "").strip())
    return match is not None and int(match.group(1)) == offset


def _log(url: str, status: int, started: float) -> None:
    if log.isEnabledFor(logging.INFO):
        bare = url.split("?", 1)[0]  # signed CDN URLs carry tokens in the query
        log.info("GET %s %s %.0fms", bare, status, (time.perf_counter() - started) * 1000)


def video_of(output: dict[str, Any], key: str) -> tuple[str | None, int | None]:
    """The video URL and ``file_size`` in a result: ``output[key]`` (a File, or a bare URL
    as some proxies answer), else the first File, else the first of a list of Files."""
    own = output.get(key)
    if isinstance(own, str) and own.startswith(("https://", "http://")):
        return own, None
    if isinstance(own, list) and own:
        own = own[0]
    candidates = [own] + [v for k, v in output.items() if k != key]
    for value in candidates:
        if isinstance(value, dict) and isinstance(value.get("url"), str):
            size = value.get("file_size")
            ok = isinstance(size, int) and not isinstance(size, bool) and size >= 0
            return value["url"], size if ok else None
    return None, None
