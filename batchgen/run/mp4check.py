"""Is a file a whole MP4? A walk over its top-level boxes, reading only their headers.

An MP4 (ISO BMFF) file is a sequence of boxes, each starting with a 32-bit big-endian size and
a 4-character type; size 1 means a 64-bit size follows, size 0 means "to the end of the file".
A whole file starts with ``ftyp``, holds a ``moov`` (without it no player can read the video),
and its boxes add up to exactly its size: a cut-off download leaves a last box that runs past
the end, and trailing garbage leaves bytes no box accounts for. This is what decides when no
``Content-Length`` or ``file_size`` gave the size, and what re-checks videos on resume.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

# A real video has a handful of top-level boxes; a walk this long is not an MP4.
MAX_BOXES = 10_000


def mp4_problem(handle: BinaryIO) -> str | None:
    """Why the file open in ``handle`` is not a whole MP4, or None when it is."""
    size = os.fstat(handle.fileno()).st_size
    offset, seen = 0, list[bytes]()
    while offset < size:
        if len(seen) >= MAX_BOXES:
            return f"more than {MAX_BOXES} top-level boxes"
        handle.seek(offset)
        header = handle.read(16)
        if len(header) < 8:
            return f"a box header is cut off at byte {offset}"
        length, kind = struct.unpack(">I4s", header[:8])
        if length == 1:
            if len(header) < 16:
                return f"a 64-bit box header is cut off at byte {offset}"
            length = struct.unpack(">Q", header[8:16])[0]
        elif length == 0:
            length = size - offset
        name = kind.decode("ascii", "replace") if kind.isascii() and kind.isalnum() else "?"
        if length < 8:
            return f"box {name!r} at byte {offset} has an impossible size {length}"
        if offset + length > size:
            return f"box {name!r} at byte {offset} runs past the end: the file is cut off"
        seen.append(kind)
        offset += length
    if not seen or seen[0] != b"ftyp":
        return "it does not start with an 'ftyp' box"
    if b"moov" not in seen:
        return "it has no 'moov' box"
    return None


def is_whole_mp4(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` opens and is a whole MP4 (see ``mp4_problem``)."""
    try:
        with open(path, "rb") as handle:
            return mp4_problem(handle) is None
    except OSError:
        return False
