"""Where a download's bytes go: the ``Sink`` protocol, and ``PartFile``, a local video written
to ``NAME.part`` beside its final path (kept from one try to the next, resumed with Range),
fsynced and moved into place with ``os.replace`` once whole, so a video in the folder is
always whole. Object storage has its own sink (``batchgen.run.store_sink``).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import IO, Any, Protocol

from batchgen.run.foldersync import FolderSync
from batchgen.run.mp4check import mp4_problem


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


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


def _hash_into(path: Path, digest: Any) -> None:
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
