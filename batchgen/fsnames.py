"""File and folder names that no text encoding can hold, kept and shown without raising.

Python gives a name whose bytes the file system encoding cannot decode (any non-ASCII byte when
UTF-8 mode is off under ``LC_ALL=C``; a byte that is not UTF-8 under any locale) as text with
*surrogates* (U+DC80..U+DCFF, PEP 383's ``surrogateescape``): such text opens the file again,
but no encoder takes it, so SQLite, JSON files and a terminal all refuse it. Here:

- ``json_text`` escapes lone surrogates in JSON text (``\\udcff``), which ``json.loads`` turns
  back into the same name: the ledger keeps the very path, and a resume opens it again;
- ``escaped`` is a name for people (``json_escaped``: the same inside JSON text): its bytes
  read as UTF-8 where they are, each other byte as ``\\xff`` (``café-\\xff``); for text that
  is stored and shown, never opened again;
- ``argument_text`` reads a command-line argument's bytes as the UTF-8 text they spell;
- ``install_output_escapes`` makes the process's standard output and error show what they
  cannot encode escaped the same way, so no message ever raises; a text file opened with
  ``errors=ESCAPE`` (``errors=JSON_ESCAPE``: JSON) writes as ``escaped`` (``json_text``) does,
  costing nothing until such a name comes.
"""

from __future__ import annotations

import codecs
import json
import re
import sys

_SURROGATE = re.compile("[\ud800-\udfff]")
_RUNS = re.compile("[\ud800-\udfff]+")
_BYTES = re.compile("[\udc80-\udcff]+")  # surrogateescape's stand-ins for bytes 0x80..0xff
_SLASH = "backslashreplace"
# The codec error handlers by name, for a text file opened with ``errors=``: ``ESCAPE`` shows
# a name as ``escaped`` does; ``JSON_ESCAPE`` writes JSON as ``json_text`` does.
ESCAPE = "batchgen.escape"
JSON_ESCAPE = "batchgen.json"


def has_surrogates(text: str) -> bool:
    """True when ``text`` holds a character no encoder takes (an undecodable byte's stand-in)."""
    # isascii() reads a flag CPython keeps: most text (ids, JSON of ASCII prompts) costs nothing.
    return not text.isascii() and _SURROGATE.search(text) is not None


def json_text(text: str) -> str:
    """JSON text (as ``json.dumps(..., ensure_ascii=False)`` writes it) with every lone
    surrogate written as its ``\\uXXXX`` escape: valid UTF-8, and read back unchanged.

    Lone surrogates can only be inside JSON strings, so the escape is always in one.
    """
    if not has_surrogates(text):
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def json_escaped(text: str) -> str:
    """JSON text with each name shown as ``escaped`` shows it (``"café-\\\\xff"``: the
    backslash escaped, as JSON needs): for pages people read, not for data read back."""
    if not has_surrogates(text):
        return text
    return _RUNS.sub(lambda m: json.dumps(escaped(m[0]))[1:-1], text)


def escaped(text: str) -> str:
    """``text`` as people can read it: each undecodable byte as ``\\xNN``, and the bytes that
    make UTF-8 as what they spell (under ``LC_ALL=C`` the bytes of ``é`` are stand-ins too, and
    show as é); a surrogate that stands for no byte as ``\\udXXX``."""
    if not has_surrogates(text):
        return text
    text = _BYTES.sub(lambda m: bytes(ord(c) - 0xDC00 for c in m[0]).decode("utf-8", _SLASH), text)
    return text.encode("utf-8", _SLASH).decode("utf-8")


def argument_text(text: str) -> str:
    """A command-line argument as the text its bytes spell in UTF-8 (under ``LC_ALL=C``, the
    bytes of ``café`` arrive as stand-ins); ValueError when they are not UTF-8 text."""
    if not _BYTES.search(text):
        return text
    try:
        return _BYTES.sub(lambda m: bytes(ord(c) - 0xDC00 for c in m[0]).decode("utf-8"), text)
    except UnicodeDecodeError:
        raise ValueError(f"'{escaped(text)}' is not UTF-8 text") from None


def _escape(error: UnicodeError) -> tuple[bytes, int]:
    """The codec error handler: what ``escaped`` shows, in the stream's encoding where it can
    (else as Python writes it: ``\\xe9``, ``\\u2019``). Bytes, since an encoder takes only
    ASCII text from a handler."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    shown = escaped(error.object[error.start : error.end])
    try:
        return shown.encode(error.encoding), error.end
    except UnicodeError:
        return shown.encode("ascii", _SLASH), error.end


def _json_escape(error: UnicodeError) -> tuple[str, int]:
    """The codec error handler of JSON text: each character as its ``\\uXXXX`` escape."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    return "".join(f"\\u{ord(c):04x}" for c in text), error.end


def install_output_escapes() -> None:
    """Make ``sys.stdout`` and ``sys.stderr`` escape what their encoding cannot write (see
    ``_escape``) instead of raising. A stream in ASCII (the C locale) is made UTF-8, as click
    writes to it anyway (it would turn each undecodable byte into ``?``); a stream that is no
    text file is left alone."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        ascii = codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "ascii"
        try:
            if ascii:
                reconfigure(encoding="utf-8", errors=ESCAPE)
            else:
                reconfigure(errors=ESCAPE)
        except (ValueError, OSError, LookupError):  # closed, or not reconfigurable
            pass


codecs.register_error(ESCAPE, _escape)
codecs.register_error(JSON_ESCAPE, _json_escape)
