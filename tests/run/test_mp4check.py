"""The MP4 box walk: on a file (seeking) and on bytes as they stream past, the same verdicts."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from folders import mp4_bytes, playable_mp4

from batchgen.run.mp4check import Mp4Stream, mp4_problem


def box(kind: bytes, body: bytes = b"", *, wide: bool = False) -> bytes:
    if wide:
        return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body
    return struct.pack(">I4s", 8 + len(body), kind) + body


WHOLE = mp4_bytes(b"x" * 5000)
CASES = {
    "whole": WHOLE,
    "playable": playable_mp4("sea"),
    "wide mdat and a last 8-byte box": box(b"ftyp", b"isom")
    + box(b"moov")
    + box(b"mdat", b"z" * 300, wide=True)
    + box(b"free"),
    "last box to the end": box(b"ftyp", b"isom")
    + box(b"moov")
    + struct.pack(">I4s", 0, b"mdat")
    + b"q" * 100,
    "no moov": box(b"ftyp", b"isom") + box(b"mdat", b"z" * 30),
    "cut off": WHOLE[:-5],
    "trailing bytes": WHOLE + b"abc",
    "cut 64-bit header": box(b"ftyp", b"isom")
    + box(b"moov")
    + struct.pack(">I4s", 1, b"mdat")
    + b"\x00\x00",
    "impossible size": box(b"ftyp", b"isom") + struct.pack(">I4s", 3, b"moov") + bytes(20),
    "not an mp4": b"<html>not found</html>",
    "empty": b"",
}
WHOLE_ONES = {"whole", "playable", "wide mdat and a last 8-byte box", "last box to the end"}


def on_file(data: bytes, tmp_path: Path) -> str | None:
    path = tmp_path / "video.mp4"
    path.write_bytes(data)
    with path.open("rb") as handle:
        return mp4_problem(handle)


@pytest.mark.parametrize("name", list(CASES))
def test_the_stream_walk_agrees_with_the_file_walk_however_the_bytes_are_cut(
    name: str, tmp_path: Path
) -> None:
    """Fed in chunks of any sizes (1 byte, mid-header, whole), the streaming walk gives the
    file walk's verdict, and a whole file gets None from both."""
    data = CASES[name]
    expected = on_file(data, tmp_path)
    assert (expected is None) == (name in WHOLE_ONES)
    rng = random.Random(name)
    for _ in range(50):
        stream, start = Mp4Stream(), 0
        while start < len(data):
            size = rng.choice([1, 2, 7, 8, 9, 15, 16, 17, 300, 65536])
            stream.feed(data[start : start + size])
            start += size
        assert stream.problem() == expected


def test_the_stream_walk_holds_no_more_than_a_header() -> None:
    """Whatever it is fed, the stream walk keeps at most 16 bytes of it."""
    stream = Mp4Stream()
    stream.feed(mp4_bytes(bytes(3 * 2**20)))
    assert stream.problem() is None
    assert len(stream._tail) <= 16
