"""Opening the user's files: regular files only, never blocking, lines of bounded length.

A path that names a FIFO, a device or a folder is refused by name before a byte is read (a FIFO
is opened non-blocking, so a writer that never comes cannot hang a plan). Text is decoded line
by line, so a NUL byte or a byte that is not UTF-8 is reported at its own line, and one endless
line (a 200 MB cell) is refused after ``max_line`` characters instead of filling memory.
"""

from __future__ import annotations

import io
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from batchgen.errors import InputError

# Longest line read, in characters. A prompt is a few thousand; a row of many columns fits.
MAX_LINE_CHARS = 1 << 20
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # surrogateescape's stand-ins for bad bytes
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str | None:
    """What a non-regular file is (``"a FIFO (named pipe)"``...), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as an input file, or None when it is a regular file."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except (OSError, ValueError) as exc:
        return f"cannot read: {getattr(exc, 'strerror', None) or exc}"
    kind = kind_of(mode)
    return None if kind is None else f"is {kind}, not a file"


def open_regular(path: Path, name: str, line: int | None = None) -> io.BufferedReader:
    """Open ``path`` for binary reading, or raise InputError when it is not a regular file.

    The open itself is non-blocking: opening a FIFO for reading would otherwise wait for a
    writer. The kind is checked on the open descriptor, so a path swapped in between is caught.
    """
    reason = not_a_file(path)
    if reason is not None:
        raise InputError.one(name, reason, line)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError.one(name, f"cannot read: {exc.strerror or exc}", line) from None
    kind = kind_of(os.fstat(fd).st_mode)
    if kind is not None:
        os.close(fd)
        raise InputError.one(name, f"is {kind}, not a file", line)
    handle = os.fdopen(fd, "rb")
    assert isinstance(handle, io.BufferedReader)
    return handle


def text_lines(
    name: str,
    handle: io.BufferedReader,
    max_line: int = MAX_LINE_CHARS,
    encoding: str = "utf-8-sig",
) -> Iterator[tuple[int, str]]:
    """The lines of a text file, each with its 1-based number and line end.

    UTF-8 (BOM or not) unless ``encoding`` says otherwise (see ``encodings.sniff_encoding``).
    Lines end at ``\\n``, ``\\r\\n`` or ``\\r``, as spreadsheets write them. Raises InputError
    at the first line with a NUL byte, a byte that is not in the encoding, or more than
    ``max_line`` characters; memory stays within a few lines whatever the file holds.
    """
    utf8 = encoding == "utf-8-sig"
    if utf8 and handle.peek(2)[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError.one(name, "this is UTF-16 text; save it as UTF-8", 1)
    errors = "surrogateescape" if utf8 else "strict"
    # Closing the wrapper closes ``handle`` too, which its owner's ``with`` allows.
    with io.TextIOWrapper(handle, encoding=encoding, errors=errors, newline="") as text:
        number = 0
        while True:
            try:
                line = text.readline(max_line + 2)  # room for "\r\n" after a line of max_line
            except UnicodeDecodeError:
                raise InputError.one(
                    name, f"not valid {encoding.upper()} text; save it as UTF-8", number + 1
                ) from None
            if not line:
                return
            number += 1
            if len(line.rstrip("\r\n")) > max_line:
                raise InputError.one(
                    name,
                    f"this line is longer than {max_line:,} characters; "
                    "a cell that long is not a prompt (is this the right file?)",
                    number,
                )
            if "\x00" in line:
                raise InputError.one(name, "a NUL byte: this is a binary file, not text", number)
            bad = _UNDECODABLE.search(line) if utf8 else None
            if bad is not None:
                byte = ord(bad.group()) - 0xDC00
                raise InputError.one(
                    name, f"not UTF-8 text (byte 0x{byte:02x}); save it as UTF-8", number
                )
            yield number, line


def read_text(path: Path, name: str, line: int | None = None) -> str:
    """A whole text file (YAML inputs, job specs, endpoint specs), read as ``text_lines``."""
    with open_regular(path, name, line) as handle:
        return "".join(text for _, text in text_lines(name, handle))
