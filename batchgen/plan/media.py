"""What a file holds, judged by its first bytes: the media kinds a ``type: file`` parameter takes.

Extensions lie (a JPEG saved as ``cat.png``, an HTML error page saved as ``cat.jpg``); the first
bytes do not. ``sniff(head)`` names the format of a file from its first ``HEAD_BYTES`` bytes:
PNG, JPEG, WebP and GIF images; MP4 and MOV videos (an ISO ``ftyp`` box); WAV, MP3, FLAC, OGG
and M4A audio. HEIC and AVIF photos are named too, with kind ``""``: no parameter takes them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bytes read to judge a file; every signature below lies within them.
HEAD_BYTES = 32
# What each kind means, for messages ("an image (PNG, JPEG, WebP or GIF)").
FORMATS = {
    "image": "an image (PNG, JPEG, WebP or GIF)",
    "video": "a video (MP4 or MOV)",
    "audio": "an audio file (WAV, MP3, FLAC, OGG or M4A)",
}
# ``ftyp`` brands of still images (HEIF/AVIF share the MP4 container).
_STILL_BRANDS = {
    b"avif": ("image/avif", "an AVIF image"),
    b"avis": ("image/avif", "an AVIF image"),
    b"heic": ("image/heic", "a HEIC image"),
    b"heix": ("image/heic", "a HEIC image"),
    b"mif1": ("image/heif", "a HEIF image"),
    b"msf1": ("image/heif", "a HEIF image"),
}


@dataclass(frozen=True, slots=True)
class Media:
    """A file's format: its kind (image, video, audio; ``""`` for one never taken), MIME type
    and name for messages (``a PNG image``)."""

    kind: str
    mime: str
    name: str


def sniff(head: bytes) -> Media | None:
    """The format of a file whose first bytes are ``head``, or None when it is none we know."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Media("image", "image/png", "a PNG image")
    if head.startswith(b"\xff\xd8\xff"):
        return Media("image", "image/jpeg", "a JPEG image")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Media("image", "image/gif", "a GIF image")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Media("image", "image/webp", "a WebP image")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Media("audio", "audio/wav", "a WAV audio file")
    if head[4:8] == b"ftyp":
        return _iso(head[8:12])
    if head.startswith(b"fLaC"):
        return Media("audio", "audio/flac", "a FLAC audio file")
    if head.startswith(b"OggS"):
        return Media("audio", "audio/ogg", "an OGG audio file")
    if head.startswith(b"ID3") or _mpeg_audio_frame(head):
        return Media("audio", "audio/mpeg", "an MP3 audio file")
    return None


def _iso(brand: bytes) -> Media:
    """An ISO base media file (``ftyp`` first) by its major brand."""
    if brand in _STILL_BRANDS:
        return Media("", *_STILL_BRANDS[brand])
    if brand in (b"M4A ", b"M4B "):
        return Media("audio", "audio/mp4", "an M4A audio file")
    if brand == b"qt  ":
        return Media("video", "video/quicktime", "a MOV video")
    return Media("video", "video/mp4", "an MP4 video")


def _mpeg_audio_frame(head: bytes) -> bool:
    """True when ``head`` starts with an MPEG audio frame header (an MP3 without ID3 tag).

    Eleven sync bits, then a valid version, layer, bitrate and sample rate: AAC's ADTS header
    shares the sync bits but has layer 0.
    """
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def wanted(accept: tuple[str, ...]) -> str:
    """What a parameter taking ``accept`` wants, in words: ``an image (PNG, ...) or ...``."""
    return " or ".join(FORMATS[kind] for kind in accept)


def what_it_is(head: bytes) -> str:
    """What a file that is none of the wanted kinds holds, in words, for a message."""
    media = sniff(head)
    if media is not None:
        return f"it is {media.name}"
    if not head:
        return "it is empty"
    if all(32 <= byte < 127 or byte in (9, 10, 13) for byte in head):
        return "it holds text"
    return "its bytes are no format batchgen knows"
