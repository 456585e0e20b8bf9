"""Durations as a user writes them (``900``, ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2 hours"``)
and as a message says them (``15 min``).

A bare number is seconds, as ``batchgen.plan.price.seconds_of`` reads a video's length; text
adds units: ``s``/``sec``/``seconds``, ``m``/``min``/``minutes``, ``h``/``hr``/``hours``, ``d``/
``days``, one or several (``1h 30m``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from batchgen.plan.price import seconds_of
from batchgen.plan.text import shown

_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)\s*")


def duration(value: Any) -> float:
    """Seconds of ``value`` (see the module docstring); ValueError saying what is wrong."""
    seconds = seconds_of(value)
    if seconds is not None:
        return seconds
    text = value.strip().lower() if isinstance(value, str) else ""
    total, at = 0.0, 0
    for match in _PART.finditer(text):
        unit = _UNITS.get(match[2])
        if match.start() != at or unit is None:
            break
        total += float(match[1]) * unit
        at = match.end()
    if not text or at != len(text) or not math.isfinite(total):
        raise ValueError(
            f"{shown(value)} is not a duration: give seconds (900) or units (15m, 1h30m)"
        )
    return total


def spoken(seconds: float) -> str:
    """``seconds`` as a message says it: ``45 s``, ``15 min``, ``90 min``, ``3 h 30 min``,
    ``2 days``."""
    whole = round(seconds)
    if whole < 120:
        return f"{seconds:g} s" if whole < 10 else f"{whole} s"
    if whole < 2 * 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min" if rest < 30 or minutes >= 10 else f"{minutes} min {rest} s"
    if whole < 2 * 86400:
        hours, rest = divmod(round(whole / 60), 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{whole / 86400:.3g} days"
