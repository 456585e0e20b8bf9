"""Small, real, playable MP4 files, unique per job, of any size, generated without holding them.

Layout: ``ftyp``, ``moov`` (one H.264 track), ``mdat`` (the frames), then a ``free`` box that
names the request id and pads the file to the size asked for. The ``free`` box comes last so
that padding never moves the sample offsets recorded in ``moov``; players skip it.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from batchgen.mock import h264

WIDTH_MBS = 4  # 64 x 64 pixels
HEIGHT_MBS = 4
FRAMES = 4
FPS = 4
_TIMESCALE = 1000
_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
_FREE_TAG = b"batchgen-mock request_id="
_CHUNK = 1 << 20
_ZEROS = bytes(_CHUNK)


def box(kind: bytes, *parts: bytes) -> bytes:
    """An ISO BMFF box: 32-bit size, four-character type, payload."""
    payload = b"".join(parts)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    """A box whose payload starts with a version byte and 24 bits of flags."""
    return box(kind, struct.pack(">I", (version << 24) | flags), *parts)


def _frames(request_id: str) -> list[bytes]:
    """Frames whose colours come from the request id, so every job also *looks* different."""
    digest = hashlib.sha256(request_id.encode()).digest()
    frames = []
    count = WIDTH_MBS * HEIGHT_MBS
    for index in range(FRAMES):
        macroblocks = []
        for mb in range(count):
            value = digest[(mb + index * 3) % len(digest)]
            # Stay inside video range: no zero bytes, so no emulation prevention in the samples.
            y = 16 + value * 219 // 255
            cb = 16 + digest[(mb * 7 + 1) % len(digest)] * 224 // 255
            cr = 16 + digest[(mb * 5 + 2) % len(digest)] * 224 // 255
            macroblocks.append(h264.flat_macroblock(y, cb, cr))
        frames.append(h264.idr_picture(macroblocks, idr_pic_id=index % 2))
    return frames


def _moov(
    samples: list[int], mdat_payload_offset: int, sps: bytes, pps: bytes, size: tuple[int, int, int]
) -> bytes:
    width_mbs, height_mbs, fps = size
    width, height = width_mbs * 16, height_mbs * 16
    delta = _TIMESCALE // fps
    duration = delta * len(samples)
    mvhd = full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIII", 0, 0, _TIMESCALE, duration),
        struct.pack(">IH10x", 0x00010000, 0x0100), _MATRIX, bytes(24),
        struct.pack(">I", 2),
    )  # fmt: skip
    tkhd = full_box(
        b"tkhd", 0, 3,  # enabled | in movie
        struct.pack(">IIIII8xhhhH", 0, 0, 1, 0, duration, 0, 0, 0, 0), _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, _TIMESCALE, duration, 0x55C4, 0))
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"vide"), b"VideoHandler\x00")
    avcc = box(
        b"avcC",
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]),  # 4-byte NAL lengths, one SPS
        struct.pack(">H", len(sps)), sps, bytes([1]), struct.pack(">H", len(pps)), pps,
    )  # fmt: skip
    compressor = b"\x0dbatchgen-mock".ljust(32, b"\x00")
    avc1 = box(
        b"avc1",
        struct.pack(">6xHHH12xHHIIIH", 1, 0, 0, width, height, 0x00480000, 0x00480000, 0, 1),
        compressor, struct.pack(">Hh", 0x0018, -1), avcc,
    )  # fmt: skip
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
        full_box(b"stts", 0, 0, struct.pack(">III", 1, len(samples), delta)),
        full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(samples), 1)),
        full_box(b"stsz", 0, 0, struct.pack(f">II{len(samples)}I", 0, len(samples), *samples)),
        full_box(b"stco", 0, 0, struct.pack(">II", 1, mdat_payload_offset)),
    )
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    minf = box(b"minf", full_box(b"vmhd", 0, 1, bytes(8)), dinf, stbl)
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))
    return box(b"moov", mvhd, trak)


@functools.lru_cache(maxsize=512)  # a job's result, then its download, a little later
def movie(request_id: str) -> bytes:
    """``ftyp`` + ``moov`` + ``mdat`` of the job's video, without the trailing ``free`` box."""
    return encode(_frames(request_id), WIDTH_MBS, HEIGHT_MBS, FPS)


def encode(frames: list[bytes], width_mbs: int, height_mbs: int, fps: int) -> bytes:
    """A whole playable MP4 (``ftyp``, ``moov``, ``mdat``) of ``frames``, each an
    ``h264.idr_picture`` of ``width_mbs`` x ``height_mbs`` macroblocks, at ``fps``."""
    sps, pps = h264.sps(width_mbs, height_mbs), h264.pps()
    samples = [struct.pack(">I", len(nal)) + nal for nal in frames]
    ftyp = box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")
    sizes = [len(s) for s in samples]
    size = (width_mbs, height_mbs, fps)
    # stco holds a fixed-width offset, so moov's size is known before the offset is.
    moov_size = len(_moov(sizes, 0, sps, pps, size))
    moov = _moov(sizes, len(ftyp) + moov_size + 8, sps, pps, size)
    return ftyp + moov + box(b"mdat", *samples)


@dataclass(frozen=True, slots=True)
class VideoFile:
    """One job's MP4: ``head`` is held in memory, then ``size - len(head)`` zero bytes follow."""

    head: bytes
    size: int

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes in ``[start, end)`` as chunks of at most 1 MiB; ``end`` defaults to size."""
        end = self.size if end is None else min(end, self.size)
        pos = start
        while pos < end:
            if pos < len(self.head):
                piece = self.head[pos : min(end, pos + _CHUNK, len(self.head))]
            elif end - pos >= _CHUNK:
                piece = _ZEROS
            else:
                piece = bytes(end - pos)
            yield piece
            pos += len(piece)

    def sha256(self) -> str:
        """Hex sha256 of the whole file (hashing a large file takes time: run it off the loop)."""
        digest = hashlib.sha256()
        for piece in self.chunks():
            digest.update(piece)
        return digest.hexdigest()

    def read(self) -> bytes:
        """The whole file in memory: for small files and tests."""
        return b"".join(self.chunks())


def video_file(request_id: str, min_size: int = 0) -> VideoFile:
    """The video of ``request_id``, padded to at least ``min_size`` bytes (exactly, if larger
    than its natural size of about 25 KB). Same id and size, same bytes."""
    core = movie(request_id)
    text = _FREE_TAG + request_id.encode() + b"\n"
    natural = len(core) + 8 + len(text)
    size = max(natural, min_size)
    free_size = size - len(core)
    if free_size <= 0xFFFFFFFF:
        header = struct.pack(">I4s", free_size, b"free")
    else:
        # Boxes over 4 GiB carry size 1 and a 64-bit "largesize"; the padding absorbs it.
        header = struct.pack(">I4sQ", 1, b"free", free_size)
    return VideoFile(head=core + header + text, size=size)
