"""Verified downloads of video files: ``.part`` file, resume with Range, checks, atomic rename.

A file is streamed to ``NAME.part`` beside its final path in constant memory, hashed on the
way. An interrupted ``.part`` is resumed with a ``Range`` request (and its bytes hashed again
first). The file is asked for as it is (``Accept-Encoding: identity``); a host that sends it
gzip-encoded all the same is decoded, its ``Content-Length`` (of the encoding) not compared,
and not resumed from an encoded range. The file counts only when its size matches both
``Content-Length`` and the result's ``file_size`` (when given) and it is a whole MP4
(``batchgen.run.mp4check``: the top-level boxes add up to exactly the file, ``ftyp`` first,
``moov`` present, which is what decides when no size was announced); then it is fsynced and
moved into place with ``os.replace``, so a video in the folder is always whole.

A paid video is fetched again, never generated again: transient failures (5xx, timeouts, broken
connections, short files) are retried patiently, for minutes (fal keeps output files at least 7
days); a 404, 410 or 403 is retried too before the file counts as gone for good
(``error_type`` ``video_gone``). What the caller records decides what a later run does:
``download`` (gave up on a transient failure) and ``disk`` are fetched again from the recorded
URL; ``video_refused`` (too big, not a video) waits for ``--retry-failed``; only ``video_gone``
is generated again, by ``--retry-failed``.

File hosts are public CDNs: the session given here must carry no credentials (see
``file_session``), so nothing leaks to them, through redirects either.

A local file that cannot be written (disk full, permission denied, name too long, a file
where the folder should be) raises ``DiskError``, never a bare OSError: the caller decides
whether one job failed or the disk did.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import aiohttp

from batchgen.api.backoff import Backoff
from batchgen.api.classify import classify
from batchgen.errors import DiskError, PermanentError, RetryableError
from batchgen.run.foldersync import FolderSync
from batchgen.run.mp4check import mp4_problem
from batchgen.version import __version__

log = logging.getLogger("batchgen.http")
CHUNK = 256 * 1024
# error_types of a failed download (see the module docstring).
DISK = "disk"  # the video could not be written here
DOWNLOAD = "download"
VIDEO_GONE = "video_gone"
VIDEO_REFUSED = "video_refused"
# A file host answering one of these this many times in a row means the file is gone.
GONE_STATUSES = frozenset({403, 404, 410})
GONE_TRIES = 3
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True, slots=True)
class Fetched:
    """A verified file in its final place."""

    path: Path | str  # a local path, or an object's URL
    bytes: int
    sha256: str


def file_session(**kwargs: Any) -> aiohttp.ClientSession:
    """A session for file hosts: no Authorization, no cookies, no proxy credentials."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": f"batchgen/{__version__}"},
        **kwargs,
    )


def looks_whole(path: Path, size: int | None) -> bool:
    """Check of a finished video: present, of the recorded size, a whole MP4 (box walk)."""
    try:
        with path.open("rb") as handle:
            actual = os.fstat(handle.fileno()).st_size
            return (size is None or actual == size) and mp4_problem(handle) is None
    except OSError:
        return False


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


class Downloader:
    """Fetches files with retries. Holds no concurrency limit: the caller's workers do."""

    __slots__ = ("_backoff", "_folders", "_max_bytes", "_session", "_sleep", "_timeout")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        backoff: Backoff | None = None,
        max_bytes: int | None = None,
        read_timeout: float = 60.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._backoff = backoff or Backoff(base=1.0, cap=60.0, attempts=14)
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
    ) -> Fetched:
        """Download ``url`` to ``dest`` (a path: through ``dest.part``, resumed if present;
        or a ``Sink``); raise PermanentError (file gone, too big, not an MP4), RetryableError
        (gave up) or DiskError (``dest`` cannot be written; it names ``name``, else
        ``dest``)."""
        sink = PartFile(dest, self._folders) if isinstance(dest, Path) else dest
        try:
            return await self._fetch(url, sink, expected_size)
        except OSError as exc:  # network errors became RetryableError in _once: this is local
            if isinstance(exc, FileExistsError):  # mkdir: a file where a folder must be
                exc = NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            raise DiskError.from_os(name or str(sink.where), exc) from None

    async def _fetch(self, url: str, sink: Sink, expected_size: int | None) -> Fetched:
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
        retry = gone = 0
        while True:
            try:
                return await self._once(url, sink, expected_size)
            except RetryableError as exc:
                error: RetryableError | PermanentError = exc
                gone = 0
            except PermanentError as exc:
                if exc.status not in GONE_STATUSES:
                    raise
                gone += 1
                if gone >= GONE_TRIES:
                    raise PermanentError(
                        f"the video file is gone from the file host ({exc}, {gone} times); "
                        "run --retry-failed to generate it again (paid again)",
                        status=exc.status,
                        error_type=VIDEO_GONE,
                    ) from None
                error = exc
            retry += 1
            if retry >= self._backoff.attempts:
                raise RetryableError(
                    f"download gave up after {retry} tries: {error}", error_type=DOWNLOAD
                ) from None
            await self._sleep(self._backoff.delay(retry, error.retry_after))

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
                size = await self._stream(resp, sink, offset, digest)
        except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
            await sink.broken()  # a .part keeps what arrived; the next try asks for the rest
            raise RetryableError(f"download broke: {type(exc).__name__}: {exc}") from None
        for want, what in ((total, "Content-Length"), (expected_size, "file_size")):
            if want is not None and size != want:
                await sink.drop()
                raise RetryableError(f"got {size} bytes, {what} says {want}")
        problem = await sink.seal(digest.hexdigest(), size)
        if problem is not None:
            raise RetryableError(f"the file is not a whole MP4 video: {problem}")
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
    ) -> int:
        size = offset
        await sink.open(offset)
        async for chunk in resp.content.iter_chunked(CHUNK):
            size += len(chunk)
            if self._max_bytes is not None and size > self._max_bytes:
                await sink.drop()
                raise PermanentError(
                    f"video is larger than --max-file-bytes {self._max_bytes}",
                    error_type=VIDEO_REFUSED,
                )
            await sink.write(chunk)
            digest.update(chunk)
        return size


class Sink(Protocol):
    """Where a download's bytes go: a local part file (``PartFile``), or an object being
    uploaded (``batchgen.run.store_sink``). ``Downloader`` calls, per try: ``kept`` (bytes an
    earlier try left, asked for again with Range), ``hash_kept``, ``open``, ``write`` for
    every chunk, then ``seal`` (check and put in place; a problem drops the bytes), or
    ``drop`` to start over, or ``broken`` when the connection broke; ``stop`` after every
    try (it may be cancelled: no waiting there)."""

    @property
    def where(self) -> Path | str: ...

    def prepare(self) -> None: ...

    def kept(self) -> int: ...

    async def hash_kept(self, digest: Any) -> None: ...

    async def open(self, offset: int) -> None: ...

    async def write(self, chunk: bytes) -> None: ...

    async def seal(self, sha256: str, size: int) -> str | None: ...

    async def drop(self) -> None: ...

    async def broken(self) -> None: ...

    def stop(self) -> None: ...


class PartFile:
    """A video written to ``NAME.part`` beside its final path, kept from one try to the next
    (resumed with Range), fsynced and moved into place once whole."""

    __slots__ = ("_folders", "_handle", "part", "where")

    def __init__(self, dest: Path, folders: FolderSync) -> None:
        self.where, self.part = dest, part_path(dest)
        self._folders = folders
        self._handle: IO[Any] | None = None

    def prepare(self) -> None:
        if not self.where.parent.is_dir():  # one stat when it is there (the usual case)
            self.where.parent.mkdir(parents=True, exist_ok=True)

    def kept(self) -> int:
        try:
            return self.part.stat().st_size
        except FileNotFoundError:
            return 0

    async def hash_kept(self, digest: Any) -> None:
        # hashlib lets go of the GIL on big blocks: a 1 GB part hashes aside.
        await asyncio.to_thread(_hash_into, self.part, digest)

    async def open(self, offset: int) -> None:
        self._handle = await _open_in_thread(self.part, "ab" if offset else "wb")

    async def write(self, chunk: bytes) -> None:
        assert self._handle is not None
        self._handle.write(chunk)

    async def seal(self, sha256: str, size: int) -> str | None:
        self.stop()
        problem = await asyncio.to_thread(_seal, self.part, self.where)
        if problem is not None:
            self.part.unlink(missing_ok=True)
            return problem
        await self._folders.synced(self.where.parent)  # the rename is durable from here
        return None

    async def drop(self) -> None:
        # Local file operations take microseconds: not worth a thread hop from the event loop.
        self.stop()
        self.part.unlink(missing_ok=True)

    async def broken(self) -> None:
        self.stop()  # the part stays, to be resumed

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


async def _open_in_thread(path: Path, mode: str) -> IO[Any]:
    """``path.open(mode)`` in a thread: creating a file waits on the file system's journal,
    which other files' fsyncs hold. A cancel while it opens closes the file once it is open."""
    opening: asyncio.Future[IO[Any]] = asyncio.ensure_future(asyncio.to_thread(path.open, mode))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_opened)
        raise


def _close_opened(opening: asyncio.Future[IO[Any]]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


def _seal(part: Path, dest: Path) -> str | None:
    """Check the MP4 structure, make the bytes durable, move them into place (the folder's
    fsync, shared, follows: ``batchgen.run.foldersync``); else say why not (in a thread:
    fsync of a large file takes long enough to stall every poll)."""
    with part.open("rb") as handle:
        problem = mp4_problem(handle)
        if problem is not None:
            return problem
        os.fsync(handle.fileno())
    os.replace(part, dest)
    return None


def _encoded(resp: aiohttp.ClientResponse) -> str | None:
    """The ``Content-Encoding`` (gzip...) of a file host that encoded the file although asked
    for ``identity``; None for the file as it is. aiohttp decodes it, so the bytes written
    are the file's, while ``Content-Length`` and ranges count the encoded ones."""
    coding = resp.headers.get("Content-Encoding", "").strip().lower()
    return coding if coding not in ("", "identity") else None


def _range_starts_at(header: str | None, offset: int) -> bool:
    match = _RANGE.fullmatch((header or "").strip())
    return match is not None and int(match.group(1)) == offset


def _hash_into(path: Path, digest: Any) -> None:
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def _log(url: str, status: int, started: float) -> None:
    if log.isEnabledFor(logging.INFO):
        bare = url.split("?", 1)[0]  # signed CDN URLs carry tokens in the query
        log.info("GET %s %s %.0fms", bare, status, (time.perf_counter() - started) * 1000)


def video_of(output: dict[str, Any], key: str) -> tuple[str | None, int | None]:
    """The video URL and ``file_size`` in a result: ``output[key]``, else the first File."""
    candidates = [output.get(key)] + [v for k, v in output.items() if k != key]
    for value in candidates:
        if isinstance(value, dict) and isinstance(value.get("url"), str):
            size = value.get("file_size")
            ok = isinstance(size, int) and not isinstance(size, bool) and size >= 0
            return value["url"], size if ok else None
    return None, None
