"""Is a file a whole MP4? A walk over its top-level boxes, reading only their headers.

An MP4 (ISO BMFF) file is a sequence of boxes, each starting with a 32-bit big-endian size and
a 4-character type; size 1 means a 64-bit size follows, size 0 means "to the end of the file".
A whole file starts with ``ftyp``, holds a ``moov`` (without it no player can read the video),
and its boxes add up to exactly its size: a cut-off download leaves a last box that runs past
the end, and trailing garbage leaves bytes no box accounts for. This is what decides when no
``Content-Length`` or ``file_size`` gave the size, and what re-checks videos on resume.

The same walk runs on a file (``mp4_problem``: it seeks from header to header) and on bytes as
they stream past (``Mp4Stream``: a video streamed to object storage is judged before it is
committed, with no second read).
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

# A real video has a handful of top-level boxes; a walk this long is not an MP4.
MAX_BOXES = 10_000
HEADER = 16  # the longest box header: size, type, 64-bit size


class BoxWalk:
    """The top-level boxes seen so far: ``next`` is where the next header starts; ``header``
    takes its bytes (``HEADER`` of them, fewer at the end of the file)."""

    __slots__ = ("_last", "kinds", "next", "problem", "to_end")

    def __init__(self) -> None:
        self.next = 0
        self.kinds: list[bytes] = []
        self.problem: str | None = None
        self.to_end = False  # the last box said "to the end of the file"
        self._last = (0, "?")  # offset and name of the last box

    @property
    def walking(self) -> bool:
        """True while another header is wanted (no problem yet, no box to the end)."""
        return self.problem is None and not self.to_end

    def header(self, data: bytes) -> None:
        offset = self.next
        if len(self.kinds) >= MAX_BOXES:
            self.problem = f"more than {MAX_BOXES} top-level boxes"
            return
        if len(data) < 8:
            self.problem = f"a box header is cut off at byte {offset}"
            return
        length, kind = struct.unpack(">I4s", data[:8])
        if length == 1:
            if len(data) < HEADER:
                self.problem = f"a 64-bit box header is cut off at byte {offset}"
                return
            length = struct.unpack(">Q", data[8:HEADER])[0]
        name = kind.decode("ascii", "replace") if kind.isascii() and kind.isalnum() else "?"
        self.kinds.append(kind)
        self._last = (offset, name)
        if length == 0:
            self.to_end = True
        elif length < 8:
            self.problem = f"box {name!r} at byte {offset} has an impossible size {length}"
        else:
            self.next = offset + length

    def verdict(self, size: int) -> str | None:
        """Why a file of ``size`` bytes with these boxes is not a whole MP4, or None."""
        if self.problem is not None:
            return self.problem
        if not self.to_end and self.next > size:
            offset, name = self._last
            return f"box {name!r} at byte {offset} runs past the end: the file is cut off"
        if not self.kinds or self.kinds[0] != b"ftyp":
            return "it does not start with an 'ftyp' box"
        if b"moov" not in self.kinds:
            return "it has no 'moov' box"
        return None


def mp4_problem(handle: BinaryIO) -> str | None:
    """Why the file open in ``handle`` is not a whole MP4, or None when it is."""
    size = os.fstat(handle.fileno()).st_size
    walk = BoxWalk()
    while walk.walking and walk.next < size:
        handle.seek(walk.next)
        walk.header(handle.read(HEADER))
    return walk.verdict(size)


class Mp4Stream:
    """``mp4_problem`` for bytes as they pass: ``feed`` every chunk in order, then ``problem``.
    Keeps only the last ``HEADER`` bytes, whatever the file's size."""

    __slots__ = ("_seen", "_tail", "_walk")

    def __init__(self) -> None:
        self._walk = BoxWalk()
        self._seen = 0  # bytes fed so far
        self._tail = b""  # the last HEADER of them: a header may start there

    def feed(self, chunk: bytes) -> None:
        walk, end = self._walk, self._seen + len(chunk)
        while walk.walking and walk.next < end:
            data = self._at(walk.next, chunk)
            if len(data) < HEADER:
                break  # the rest comes with the next chunk (or the file ends here)
            walk.header(data)
        self._tail = (self._tail + chunk[-HEADER:])[-HEADER:]
        self._seen = end

    def problem(self) -> str | None:
        """Why the bytes fed are not a whole MP4, or None when they are."""
        walk = self._walk
        if walk.walking and walk.next < self._seen:  # a last header of fewer than 16 bytes
            walk.header(self._at(walk.next, b""))
        return walk.verdict(self._seen)

    def _at(self, offset: int, chunk: bytes) -> bytes:
        """Up to ``HEADER`` bytes from ``offset``, which lies in ``chunk`` or in the tail (a
        header starts at most 8 bytes after the previous one, read whole)."""
        if offset >= self._seen:
            start = offset - self._seen
            return chunk[start : start + HEADER]
        before = self._tail[len(self._tail) - (self._seen - offset) :]
        return (before + chunk[:HEADER])[:HEADER]


def is_whole_mp4(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` opens and is a whole MP4 (see ``mp4_problem``)."""
    try:
        with open(path, "rb") as handle:
            return mp4_problem(handle) is None
    except OSError:
        return False
