"""Small judgements about the user's text, made the same way everywhere in a plan.

``is_blank``: only whitespace and invisible characters (a cell of spaces, a zero-width space, a
stray BOM) is no text at all. ``shown``: a value quoted for a message, cut short so that a huge
cell never becomes a huge message. ``unicode_problem``: text that cannot be written as UTF-8.
``fold``: a column name as it is compared (``Aspect Ratio`` is ``aspect_ratio``). ``counted``:
``1 record``, ``2 records``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

SHOWN_CHARS = 60
# Characters that show nothing: format (Cf: zero-width space, BOM, bidi overrides...),
# controls (Cc) and line/paragraph separators, besides ordinary whitespace.
INVISIBLE = frozenset({"Cf", "Cc", "Zl", "Zp", "Zs"})
_SURROGATE = re.compile("[\ud800-\udfff]")
_SEPARATORS = re.compile(r"[\s_\-]+")


def is_blank(value: Any) -> bool:
    """True for None and for text with nothing visible in it."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    stripped = value.strip()
    if stripped.isascii() and stripped.isprintable():  # the common case, without a scan
        return not stripped
    return all(ch.isspace() or unicodedata.category(ch) in INVISIBLE for ch in stripped)


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` for a message, at most about ``limit`` characters."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    if isinstance(value, list | dict | tuple | set):
        kind = type(value).__name__
        return f"a {kind} of {len(value):,} item{'s' if len(value) != 1 else ''}"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def unicode_problem(text: str) -> str | None:
    """Why ``text`` cannot be sent or written as UTF-8, or None when it can."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (
        f"contains \\u{ord(found.group()):04x}, half of a UTF-16 pair and not a character; "
        "fix the escape that wrote it"
    )


def fold(name: str) -> str:
    """A name as names are compared: case, spaces, hyphens and underscores do not count."""
    return _SEPARATORS.sub("", name).casefold()


def counted(number: int, word: str, plural: str | None = None) -> str:
    """``1 record``, ``2 records``, ``1,000 records``: the word singular only for one."""
    return f"{number:,} {word if number == 1 else plural or word + 's'}"
