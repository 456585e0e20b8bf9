"""Which text encoding a spreadsheet export is in, decided before a line is read.

Spreadsheets save text three ways: UTF-8 (with or without a BOM), UTF-16 with a BOM (Excel's
"Unicode Text") and the Windows code page (Excel's plain "CSV" on Windows, cp1252 in Western
Europe and the Americas). ``sniff_encoding`` picks one by looking at the bytes; the file is then
read line by line in it (``files.text_lines``).

cp1252 is chosen only for a file that is not UTF-8, is all ASCII up to its first byte that is
not UTF-8, and decodes as cp1252 throughout. A file that is UTF-8 in one place and not in
another (two exports pasted together) stays UTF-8, and its bad byte is reported at its line.
"""

from __future__ import annotations

import codecs
import io

UTF8 = "utf-8-sig"
UTF16 = "utf-16"
CP1252 = "cp1252"
_BLOCK = 1 << 16
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def sniff_encoding(handle: io.BufferedReader) -> str:
    """``UTF16``, ``CP1252`` or ``UTF8`` for the seekable file ``handle``, left where it was.

    Reads the file once more at most (twice for a cp1252 file), a block at a time.
    """
    if handle.peek(2)[:2] in _UTF16_BOMS:
        return UTF16
    start = handle.tell()
    try:
        if not _ascii_then_not_utf8(handle):
            return UTF8
        handle.seek(start)
        for block in iter(lambda: handle.read(_BLOCK), b""):
            try:
                block.decode(CP1252)
            except UnicodeDecodeError:  # five bytes cp1252 leaves undefined
                return UTF8
        return CP1252
    finally:
        handle.seek(start)


def _ascii_then_not_utf8(handle: io.BufferedReader) -> bool:
    """True when the bytes stop being UTF-8 before anything but ASCII was seen."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    earlier = True  # every block before ``block`` was ASCII
    block = b""
    for following in iter(lambda: handle.read(_BLOCK), b""):
        earlier = earlier and block.isascii()
        block = following
        try:
            decoder.decode(block)
        except UnicodeDecodeError as exc:
            return earlier and block[: max(exc.start, 0)].isascii()
    pending = len(decoder.getstate()[0])
    # A file may end inside a "character": "café" in cp1252 with no line end after it.
    return pending > 0 and earlier and block[: len(block) - pending].isascii()


def describe(encoding: str) -> str:
    """How a note names an encoding batchgen fell back to."""
    return {CP1252: "Windows-1252 (cp1252)", UTF16: "UTF-16"}.get(encoding, encoding)
