"""Real small media files for tests: PNG, JPEG, WebP, GIF, MP4, MOV, WAV, MP3 bytes.

PNG, WAV and MP4 are built here (the MP4 by the emulator's own writer); JPEG, WebP and MP3 are
tiny files made once with ffmpeg (an 8x8 red image, 30 ms of a 440 Hz tone) and kept as base64.
"""

from __future__ import annotations

import base64
import io
import struct
import wave
import zlib
from pathlib import Path

from batchgen.mock.mp4 import movie

JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAgEBAQEBAUFBQUFBQYGBgYGBgYGBgYGBgYH"
    "BwcICAgHBwcGBgcHCAgICAkJCQgICAgJCQoKCgwMCwsODg4RERT/xABMAAEBAAAAAAAAAAAAAAAAAAAABgEBAQAAAAAA"
    "AAAAAAAAAAAABgcQAQAAAAAAAAAAAAAAAAAAAAARAQAAAAAAAAAAAAAAAAAAAAD/wAARCAAIAAgDASIAAhEAAxEA/9oA"
    "DAMBAAIRAxEAPwCLAFF/f//Z"
)
WEBP = base64.b64decode("UklGRhwAAABXRUJQVlA4TA8AAAAvB8ABAAcQ9Y/+ByKi/wEA")
# An MP3 with no ID3 tag: it starts with an MPEG audio frame header.
MP3 = base64.b64decode(
    "/+MYxAANQJaceUwAAAgLdwL3ve973vSlKUpSnXve97/O007EMCYEwJiOf8OBAEMTh///nOn3dPSCHL+7EADB/hjpUkXj"
    "qLJf/+MYxAYOILa0AZJIAES6bFJJzI28hxIgN4IBEaK8GAhYvI2WUqkFiZUKu0BNKyoSCQ5/RRrWNGKf/6h9av/+tUxB"
    "TUUzLjEw/+MYxAgAAANIAcAAADBVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV"
    "VVVVVVVVVVVV"
)
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
MOV = struct.pack(">I", 20) + b"ftypqt  \x00\x00\x02\x00qt  " + struct.pack(">I", 8) + b"free"


def image_to_video_spec(max_mb: float = 10) -> str:
    """An endpoint spec shaped as the catalog's image-to-video ones (Kling 2.6 names its image
    start_image_url and takes image_url as an alias), with an audio and a video input too."""
    return (
        "id: me/image-to-video\nparameters:\n"
        "  prompt: {type: string, required: true}\n"
        "  start_image_url: {type: file, required: true, accept: [image], "
        f"max_mb: {max_mb}, aliases: [image_url]}}\n"
        "  audio_url: {type: file, accept: [audio]}\n"
        "  clip_url: {type: file, accept: [video]}\n"
        "price: {flat_usd: 0.1}\n"
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png(shade: int = 0, padding: int = 0) -> bytes:
    """A valid 2x2 PNG; ``shade`` changes its pixels, ``padding`` adds a text chunk of that size."""
    rows = b"".join(b"\x00" + bytes([shade % 256, 64, 128]) * 2 for _ in range(2))
    text = _chunk(b"tEXt", b"Comment\x00" + b"x" * padding) if padding else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + text
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def wav() -> bytes:
    """10 ms of silence, 8 kHz mono 16-bit."""
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\x00\x00" * 80)
    return out.getvalue()


def mp4() -> bytes:
    """A small real H.264 MP4 (the emulator's)."""
    return movie("media-test")


def write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` (bytes, or UTF-8 text) at ``path``, making its folder; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def png_files(folder: Path, count: int = 3) -> list[Path]:
    """``count`` small distinct PNG files in ``folder``: img0.png, img1.png, ..."""
    paths = [folder / f"img{i}.png" for i in range(count)]
    for shade, path in enumerate(paths):
        path.write_bytes(png(shade * 40))
    return paths
