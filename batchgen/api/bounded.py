"""JSON from outside, read with bounds: no depth, size or length an answer can choose hurts.

``json.loads`` recurses once per level of nesting, so an answer nested 100,000 levels deep
raises ``RecursionError`` (and so would every later ``json.dumps`` of it); a 20 MB result that
is mostly a ``logs`` list would be buffered whole. ``Pruner`` reads JSON text chunk by chunk,
as it arrives, and keeps a bounded copy of it: a container deeper than ``depth`` levels, a
string longer than ``string`` bytes and the items of a list past ``items`` are replaced or
dropped (each leaves a short string saying so), and the copy may not outgrow ``keep`` bytes
(``TooLarge``). What batchgen reads in an answer (a request id, a status word, a video's
``url``) is shallow and short, so it survives. ``loads`` is ``json.loads`` with these bounds:
small, shallow text (every answer batchgen usually sees) is parsed as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

DEPTH = 64  # levels of nesting kept (fal's outputs use 3 or 4)
STRING = 64 * 1024  # bytes of one string kept (a signed video URL is ~2 KB)
ITEMS = 100  # items of one list kept (fal's outputs list a few videos or images)
DIGITS = 1000  # digits of an integer read as one (longer: kept as its text, never an error)
KEEP = 16 * 1024 * 1024  # bytes of pruned text
_FAST = 1024 * 1024  # text this small with fewer brackets than DEPTH is parsed as it is

_OUTSIDE = re.compile(rb'[\[\]{},"]')  # what changes the state outside a string
_INSIDE = re.compile(rb'["\\]')  # what ends a string or escapes a byte in it
# What a dropped part is read by: whole strings at once, brackets, or a string cut by the chunk.
_SKIPPING = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]|"')


class TooLarge(ValueError):
    """The pruned text would outgrow its bound."""


class Pruner:
    """A bounded copy of JSON text fed in chunks (see the module docstring). ``text()`` is
    valid JSON when the input was; ``dropped`` counts what was left out."""

    __slots__ = (
        "_closing",
        "_escape",
        "_in_string",
        "_long",
        "_out",
        "_skip",
        "_stack",
        "_start",
        "depth",
        "dropped",
        "items",
        "keep",
        "string",
    )

    def __init__(
        self, *, depth: int = DEPTH, string: int = STRING, items: int = ITEMS, keep: int = KEEP
    ) -> None:
        self.depth, self.string, self.items, self.keep = depth, string, items, keep
        self.dropped = 0
        self._out = bytearray()
        self._stack: list[list[int]] = []  # per open container kept: [is a list, items seen]
        self._skip = 0  # levels inside what is being dropped (0: keeping)
        self._closing = False  # the dropped part is the rest of a list: keep its "]"
        self._in_string = self._escape = self._long = False
        self._start = 0  # where the string being read starts in the copy

    def __repr__(self) -> str:
        return f"<Pruner {len(self._out)} bytes kept, {self.dropped} dropped>"

    def text(self) -> bytes:
        return bytes(self._out)

    def feed(self, chunk: bytes) -> None:
        """Read ``chunk``, the next part of the text; TooLarge when the copy would outgrow
        ``keep``."""
        i, n = 0, len(chunk)
        while i < n:
            i = self._string(chunk, i) if self._in_string else self._outside(chunk, i)
        if len(self._out) > self.keep:
            raise TooLarge(f"more than {self.keep} bytes of JSON after pruning")

    def _string(self, chunk: bytes, i: int) -> int:
        if self._escape:  # the byte after a backslash, whatever it is
            self._escape = False
            self._keep_in_string(chunk[i : i + 1])
            return i + 1
        found = _INSIDE.search(chunk, i)
        if found is None:
            self._keep_in_string(chunk[i:])
            return len(chunk)
        j = found.start()
        self._keep_in_string(chunk[i:j])
        if chunk[j] == 0x5C:  # a backslash
            self._keep_in_string(b"\\")
            self._escape = True
            return j + 1
        self._in_string = False
        if self._skip:
            return j + 1
        if self._long:
            self._long = False
            self.dropped += 1
            self._out += b'"(a string longer than %d bytes: left out by batchgen)"' % self.string
        else:
            self._out += b'"'
        return j + 1

    def _keep_in_string(self, data: bytes) -> None:
        if self._skip or self._long or not data:
            return
        self._out += data
        if len(self._out) - self._start > self.string:
            del self._out[self._start :]
            self._long = True

    def _skipping(self, chunk: bytes, i: int) -> int:
        """Read on through a dropped part (strings whole, at C speed) until it ends."""
        for found in _SKIPPING.finditer(chunk, i):
            token = found.group()
            if token == b'"':  # a string that goes on in the next chunk
                self._in_string = True
                return found.end()
            if len(token) > 1:
                continue
            if token in b"[{":
                self._skip += 1
                continue
            self._skip -= 1
            if not self._skip:
                if self._closing:
                    self._closing = False
                    if self._stack:
                        self._stack.pop()
                    self._out += token
                return found.end()
        return len(chunk)

    def _outside(self, chunk: bytes, i: int) -> int:
        if self._skip:
            return self._skipping(chunk, i)
        found = _OUTSIDE.search(chunk, i)
        j = len(chunk) if found is None else found.start()
        self._out += chunk[i:j].translate(None, b" \t\r\n")  # numbers, words and colons
        if found is None:
            return j
        char = chunk[j]
        if char == 0x22:  # '"'
            self._in_string = True
            self._start = len(self._out)
            self._out += b'"'
        elif char in (0x5B, 0x7B):  # '[' '{'
            if len(self._stack) >= self.depth:
                self._out += b'"(nested deeper than %d levels: left out by batchgen)"' % self.depth
                self.dropped += 1
                self._skip = 1
            else:
                self._stack.append([char == 0x5B, 0])
                self._out.append(char)
        elif char in (0x5D, 0x7D):  # ']' '}'
            if self._stack:
                self._stack.pop()
            self._out.append(char)
        else:  # ','
            top = self._stack[-1] if self._stack else None
            if top is not None and top[0]:
                top[1] += 1
                if top[1] >= self.items:
                    self._out += b',"(more items: left out by batchgen)"'
                    self.dropped += 1
                    self._skip, self._closing = 1, True
                    return j + 1
            self._out.append(char)
        return j + 1


def loads(text: bytes | str) -> Any:
    """``text`` parsed as JSON within the bounds of ``Pruner``; ValueError when it is not
    JSON (or would outgrow ``KEEP`` even pruned). A byte that is not UTF-8 is read as U+FFFD
    and an integer of more than ``DIGITS`` digits as its text: one odd value in an answer
    does not make the rest of it (a video's URL) unreadable."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if not _plain(data):
        pruner = Pruner()
        pruner.feed(data)
        data = pruner.text()
    try:
        return json.loads(data, parse_int=_integer)
    except UnicodeDecodeError:
        return json.loads(data.decode("utf-8", "replace"), parse_int=_integer)


def left_out(data: bytes) -> int:
    """How many parts of ``data`` ``loads`` leaves out (0 for small, shallow text, at once)."""
    if _plain(data):
        return 0
    pruner = Pruner(keep=len(data) + 1)  # every kept byte fits: count, never refuse
    pruner.feed(data)
    return pruner.dropped


def _plain(data: bytes) -> bool:
    """Text small and shallow enough that ``json.loads`` reads it as it is, safely."""
    return len(data) <= _FAST and data.count(b"[") + data.count(b"{") < DEPTH


def _integer(digits: str) -> int | str:
    return int(digits) if len(digits) <= DIGITS else digits
