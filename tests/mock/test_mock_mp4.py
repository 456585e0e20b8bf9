"""The emulator's videos: real MP4 structure, a decodable H.264 track, unique bytes per job."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from batchgen.mock import h264, mp4

RID = "0b6c8d3e-1111-4222-8333-444455556666"


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int, int]]:
    """The boxes laid end to end in ``data[start:end]``: (type, offset, size, header size)."""
    end = len(data) if end is None else end
    found = []
    pos = start
    while pos < end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        assert header <= size <= end - pos, (kind, size)
        found.append((kind, pos, size, header))
        pos += size
    assert pos == end
    return found


def child(data: bytes, parent: tuple[bytes, int, int, int], kind: bytes, skip: int = 0):
    """The one box of ``kind`` inside ``parent`` (``skip``: bytes of payload before children)."""
    _, offset, size, header = parent
    matches = [b for b in boxes(data, offset + header + skip, offset + size) if b[0] == kind]
    assert len(matches) == 1, kind
    return matches[0]


def payload(data: bytes, box: tuple[bytes, int, int, int]) -> bytes:
    return data[box[1] + box[3] : box[1] + box[2]]


def test_top_level_boxes_tile_the_file() -> None:
    """A video is ftyp, moov, mdat, free, and their sizes add up to the file size."""
    data = mp4.video_file(RID).read()
    top = boxes(data)
    assert [b[0] for b in top] == [b"ftyp", b"moov", b"mdat", b"free"]
    assert sum(b[2] for b in top) == len(data)
    assert payload(data, top[0])[:4] == b"isom"


def test_sample_table_points_at_the_frames_in_mdat() -> None:
    """stco points at mdat's payload and stsz's sample sizes add up to exactly that payload."""
    data = mp4.video_file(RID).read()
    top = {b[0]: b for b in boxes(data)}
    stbl = top[b"moov"]
    for kind in (b"trak", b"mdia", b"minf", b"stbl"):
        stbl = child(data, stbl, kind)
    stco = payload(data, child(data, stbl, b"stco"))
    stsz = payload(data, child(data, stbl, b"stsz"))
    _, count, offset = struct.unpack(">III", stco)
    assert count == 1
    mdat = top[b"mdat"]
    assert offset == mdat[1] + mdat[3]
    _, sample_size, samples = struct.unpack_from(">III", stsz)
    sizes = struct.unpack_from(f">{samples}I", stsz, 12)
    assert sample_size == 0
    assert samples == mp4.FRAMES
    assert sum(sizes) == mdat[2] - mdat[3]
    pos = offset
    for size in sizes:  # each sample is one length-prefixed IDR NAL unit
        (nal_length,) = struct.unpack_from(">I", data, pos)
        assert nal_length == size - 4
        assert data[pos + 4] & 0x1F == 5
        pos += size


def test_sample_entry_is_avc1_with_baseline_parameter_sets() -> None:
    """The track is avc1 whose avcC holds a Baseline SPS and a PPS."""
    data = mp4.video_file(RID).read()
    stbl = next(b for b in boxes(data) if b[0] == b"moov")
    for kind in (b"trak", b"mdia", b"minf", b"stbl"):
        stbl = child(data, stbl, kind)
    stsd = child(data, stbl, b"stsd")
    avc1 = child(data, stsd, b"avc1", skip=8)  # version/flags + entry_count
    avcc = payload(data, child(data, avc1, b"avcC", skip=78))  # VisualSampleEntry fields
    assert avcc[0] == 1
    (sps_length,) = struct.unpack_from(">H", avcc, 6)
    sps = avcc[8 : 8 + sps_length]
    assert sps[0] & 0x1F == 7
    assert sps[1] == 66
    assert avcc[8 + sps_length] == 1
    assert avcc[8 + sps_length + 3] & 0x1F == 8


def test_every_job_gets_its_own_bytes() -> None:
    """Two request ids give different files; the same id gives the same file again."""
    first = mp4.video_file(RID).read()
    other = mp4.video_file("9d4f2f44-2222-4333-8444-555566667777").read()
    assert hashlib.sha256(first).digest() != hashlib.sha256(other).digest()
    assert mp4.video_file(RID).read() == first
    assert RID.encode() in first


def test_padding_reaches_the_exact_size_and_streams_in_ranges() -> None:
    """A padded video has exactly the size asked for, and any range of chunks is that slice."""
    video = mp4.video_file(RID, 3_000_123)
    data = video.read()
    assert video.size == len(data) == 3_000_123
    assert [b[0] for b in boxes(data)] == [b"ftyp", b"moov", b"mdat", b"free"]
    for start, end in ((0, 10), (len(video.head) - 5, len(video.head) + 5), (2_999_000, None)):
        assert b"".join(video.chunks(start, end)) == data[start:end]
    assert video.sha256() == hashlib.sha256(data).hexdigest()


def test_a_video_over_4_gib_uses_a_64_bit_free_box() -> None:
    """Padding past 4 GiB switches the free box to size 1 plus a 64-bit largesize."""
    video = mp4.video_file(RID, 5 << 30)
    core = mp4.movie(RID)
    size, kind, large = struct.unpack_from(">I4sQ", video.head, len(core))
    assert (size, kind) == (1, b"free")
    assert large == video.size - len(core) == (5 << 30) - len(core)


def test_emulation_prevention_escapes_start_code_prefixes() -> None:
    """Two zero bytes followed by a byte up to 3 get a 0x03 inserted between them."""
    assert h264.escape(b"\x00\x00\x01\x00\x00\x00") == b"\x00\x00\x03\x01\x00\x00\x03\x00"
    assert h264.escape(b"\x00\x00\x04") == b"\x00\x00\x04"


def test_exp_golomb_codes() -> None:
    """ue(v) and se(v) write the codes the H.264 spec tabulates."""
    writer = h264.BitWriter()
    writer.ue(0)  # 1
    writer.ue(3)  # 00100
    writer.se(-1)  # 011
    writer.trailing_bits()  # 1 then zeros: 1 00100 011 1 000000
    assert writer.getvalue() == bytes([0b10010001, 0b11000000])


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_ffmpeg_decodes_every_frame(tmp_path: Path) -> None:
    """Where ffmpeg exists, it decodes all frames of a video without a single error."""
    path = tmp_path / "output.mp4"
    path.write_bytes(mp4.video_file(RID, 100_000).read())
    run = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert run.stderr == ""
    frames = [line for line in run.stdout.splitlines() if line and not line.startswith("#")]
    assert len(frames) == mp4.FRAMES
