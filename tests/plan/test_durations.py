"""Durations as a user writes them (--download-patience) and as messages say them."""

from __future__ import annotations

import pytest

from batchgen.plan.durations import duration, spoken


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (900, 900.0),
        ("90", 90.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("15 min", 900.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("2 hours", 7200.0),
        ("1d", 86400.0),
        ("0", 0.0),
    ],
)
def test_durations_are_read_with_or_without_units(text: object, seconds: float) -> None:
    """A bare number is seconds; units s, m, h, d (and their words) add up."""
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "15x", "m15", "15m of", "-5", True, None])
def test_a_bad_duration_says_what_to_give(text: object) -> None:
    """Anything else is a ValueError that names the value and shows what to write."""
    with pytest.raises(ValueError, match="is not a duration: give seconds"):
        duration(text)


def test_durations_are_spoken_in_their_unit() -> None:
    """Messages say 45 s, 15 min, 90 min, 3 h 30 min, 2 days."""
    assert [spoken(s) for s in (0.5, 45, 900, 150, 5400, 12600, 7200, 172800)] == [
        "0.5 s",
        "45 s",
        "15 min",
        "2 min 30 s",
        "90 min",
        "3 h 30 min",
        "2 h",
        "2 days",
    ]
