"""Which jobs a folder command names: key prefixes (as file names show them) and input rows.

A file name ends with the job's first 8 key characters (``{key8}``), so a user copies those,
not the whole 16: any prefix that names exactly one job is enough. ``--rows 3,7-9`` names the
jobs planned from those input rows (every repeat and matrix combination of each). Every name
that fits no job, or more than one, is reported at once, so one look fixes them all.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from batchgen.errors import UsageError

_SHOWN = 3  # matches named in an "ambiguous" message


def parse_rows(text: str) -> set[int]:
    """``"3,7-9"`` -> ``{3, 7, 8, 9}``: row numbers and inclusive ranges, commas or spaces."""
    rows: set[int] = set()
    for part in text.replace(",", " ").split():
        low, dash, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            raise UsageError(
                f"--rows takes row numbers and ranges such as 3,7-9, not {part!r}"
            ) from None
        if first < 1 or last < first:
            raise UsageError(f"--rows: {part!r} is not a range of rows (rows start at 1)")
        rows.update(range(first, last + 1))
    if not rows:
        raise UsageError("--rows: no row given (for example --rows 3,7-9)")
    return rows


def resolve_keys(known: Iterable[str], prefixes: Iterable[str]) -> list[str]:
    """The full key each of ``prefixes`` names, in their order, without repeats.

    A prefix names the one key it starts (case does not matter); a UsageError lists every
    prefix that names no job and every one that names several.
    """
    ordered = sorted(known)
    found: list[str] = []
    unknown: list[str] = []
    ambiguous: list[str] = []
    for given in dict.fromkeys(p.strip() for p in prefixes):
        prefix = given.lower()
        start = bisect.bisect_left(ordered, prefix)
        matches: list[str] = []
        for key in ordered[start:]:
            if not key.startswith(prefix) or len(matches) > _SHOWN:
                break
            matches.append(key)
        if prefix and prefix in matches:  # a whole key is never ambiguous
            matches = [prefix]
        if not prefix or not matches:
            unknown.append(repr(given))
        elif len(matches) > 1:
            shown = ", ".join(matches[:_SHOWN]) + (", …" if len(matches) > _SHOWN else "")
            ambiguous.append(f"{given!r} ({shown})")
        else:
            found.append(matches[0])
    problems = []
    if unknown:
        problems.append(f"no job has a key starting {', '.join(unknown)}")
    if ambiguous:
        problems.append(
            f"more than one job has a key starting {'; '.join(ambiguous)}: give more characters"
        )
    if problems:
        raise UsageError("; ".join(problems))
    return list(dict.fromkeys(found))


def check_rows(rows: set[int], present: set[int]) -> None:
    """A UsageError naming the rows of ``rows`` that no job of the input was planned from."""
    missing = sorted(rows - present)
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", …" if len(missing) > 10 else "")
        span = f" (the input has rows {min(present)} to {max(present)})" if present else ""
        raise UsageError(f"no job at row {shown}{span}")
