"""Files as inputs: what a ``type: file`` parameter's value names, checked before anything is sent.

A value may be an ``https://`` (or ``http://``) URL, sent as is; a ``data:`` URI, well-formed
base64 of a kind the parameter accepts, within its size limit, sent as is; or a local path
(``~`` expanded, a relative one taken against the folder it was written relative to, see
``plan.fileorigins``). A local file must be a regular, readable file whose first bytes are a
kind the parameter accepts (``plan.media``), within its size limit. It becomes an ``InputFile``
and the payload holds ``sha256:<hex>`` in its place, so a job's key depends on the file's bytes,
not on where it lies; the run replaces that reference with the URL the file was uploaded to (or
a ``data:`` URI) when it submits the job. Any other scheme (``ftp://``, ``file://``) is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from batchgen.errors import InputError
from batchgen.plan.files import not_a_file, open_regular
from batchgen.plan.media import HEAD_BYTES, Media, sniff, wanted, what_it_is
from batchgen.plan.params import Param
from batchgen.plan.text import shown

# The payload's stand-in for a local file until it is uploaded.
REF_PREFIX = "sha256:"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
_SENT_AS_IS = ("https", "http")
_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class InputFile:
    """One local file behind a parameter of a job."""

    param: str
    path: str  # absolute, as resolved when planned
    sha256: str
    size: int
    mime: str

    @property
    def ref(self) -> str:
        """What the planned payload holds for this file."""
        return REF_PREFIX + self.sha256


@dataclass(frozen=True, slots=True)
class _Read:
    """What one read of a file found: its digest, size and format."""

    sha256: str
    size: int
    head: bytes
    media: Media | None


def megabytes(size: int) -> str:
    """``62.3 MB``, ``0.025 MB`` (1 MB = 1,000,000 bytes, as specs give ``max_mb``)."""
    value = size / 1_000_000
    text = f"{value:.1f}".removesuffix(".0") if value >= 1 else f"{value:.2g}"
    return f"{text} MB"


def _too_large(what: str, size: int, param: Param) -> str:
    limit = megabytes(param.max_bytes or 0)
    exact = f" ({size:,} bytes)" if megabytes(size) == limit else ""
    return f"{what} is {megabytes(size)}{exact}, above the {limit} limit of {param.name}"


class FileReader:
    """Checks local files and hashes them, each distinct file once per plan.

    A file is known by its device, inode, size and modification time: 2,000 rows naming one
    image (by any spelling of its path) read it once; a file changed since is read again.
    ``reads`` counts the files read.
    """

    __slots__ = ("_read", "reads")

    def __init__(self) -> None:
        self._read: dict[tuple[int, int, int, int], _Read] = {}
        self.reads = 0

    def check(self, path: Path, param: Param, written: str) -> InputFile:
        """The InputFile of ``path`` (``written`` as the user wrote it) given to ``param``;
        ValueError saying what is wrong with it otherwise."""
        reason = not_a_file(path)
        if reason == "no such file" and not Path(written).is_absolute():
            reason += f" (looked for {os.path.abspath(path)})"
        if reason is not None:
            raise ValueError(f"{written}: {reason}")
        try:
            st = path.stat()
        except OSError as exc:
            raise ValueError(f"{written}: cannot read: {exc.strerror or exc}") from None
        if param.max_bytes is not None and st.st_size > param.max_bytes:
            raise ValueError(_too_large(written, st.st_size, param))
        identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        read = self._read.get(identity)
        if read is None:
            read = self._read[identity] = self._hash(path, written)
        if read.media is None or read.media.kind not in param.accept:
            raise ValueError(f"{written} is not {wanted(param.accept)}: {what_it_is(read.head)}")
        return InputFile(param.name, os.path.abspath(path), read.sha256, read.size, read.media.mime)

    def _hash(self, path: Path, written: str) -> _Read:
        digest = hashlib.sha256()
        head = b""
        size = 0
        try:
            with open_regular(path, written) as handle:
                for block in iter(lambda: handle.read(_BLOCK), b""):
                    if size < HEAD_BYTES:
                        head += block[: HEAD_BYTES - size]
                    digest.update(block)
                    size += len(block)
        except InputError as exc:
            raise ValueError(f"{written}: {exc.problems[0].message}") from None
        except OSError as exc:
            raise ValueError(f"{written}: cannot read: {exc.strerror or exc}") from None
        self.reads += 1
        return _Read(digest.hexdigest(), size, head, sniff(head))


def check_data_uri(value: str, param: Param) -> None:
    """Raise ValueError unless ``value`` is ``data:<type>;base64,<data>`` holding a kind
    ``param`` accepts within its size limit."""
    header, comma, data = value.partition(",")
    if not comma or not header.lower().endswith(";base64"):
        raise ValueError(
            f"{shown(value)}: a data: URI must be data:<type>;base64,<data> (base64 only)"
        )
    # Four characters of base64 hold three bytes: refuse a huge one before decoding it.
    if param.max_bytes is not None and len(data) // 4 * 3 > param.max_bytes + 3:
        raise ValueError(_too_large("this data: URI", len(data) // 4 * 3, param))
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"this data: URI's base64 is not well-formed ({exc})") from None
    if param.max_bytes is not None and len(raw) > param.max_bytes:
        raise ValueError(_too_large("this data: URI", len(raw), param))
    media = sniff(raw[:HEAD_BYTES])
    if media is None or media.kind not in param.accept:
        raise ValueError(
            f"this data: URI is not {wanted(param.accept)}: {what_it_is(raw[:HEAD_BYTES])}"
        )


def resolve(value: str, param: Param, base: Path, reader: FileReader) -> InputFile | None:
    """What ``value`` of ``param`` names: None for a URL or data: URI (sent as is), the
    InputFile of a local path (relative to ``base``); ValueError saying why it cannot be sent.
    """
    scheme = _SCHEME.match(value)
    if scheme is not None:
        name = scheme.group(1).lower()
        if name not in _SENT_AS_IS:
            raise ValueError(
                f"{shown(value)}: {name}:// addresses cannot be sent; give an https:// URL, "
                "a data: URI or a local path"
            )
        try:
            host = urlsplit(value).hostname
        except ValueError as exc:
            raise ValueError(f"{shown(value)}: not a URL ({exc})") from None
        if not host:
            raise ValueError(f"{shown(value)}: a URL needs a host")
        return None
    if value[:5].lower() == "data:":
        check_data_uri(value, param)
        return None
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # ~name of a user that does not exist
        raise ValueError(f"{value}: no such user's home folder") from None
    return reader.check(path if path.is_absolute() else base / path, param, value)


def local_files(files: Iterable[InputFile]) -> dict[str, int]:
    """The distinct local files (by content) among ``files``: their ``count`` and ``bytes``."""
    sizes = {f.sha256: f.size for f in files}
    return {"count": len(sizes), "bytes": sum(sizes.values())}
