"""Backoff delays and Retry-After parsing, with a fixed random source."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from batchgen.api.backoff import Backoff, parse_retry_after

MIDDLE = Backoff(base=0.5, cap=30.0, random=lambda: 0.5)  # jitter factor exactly 1


def test_delay_doubles_from_base() -> None:
    """Without jitter the delays are base, 2·base, 4·base..."""
    assert [MIDDLE.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]


def test_delay_is_capped() -> None:
    """No delay exceeds the cap (times the jitter factor)."""
    assert MIDDLE.delay(50) == 30.0
    assert MIDDLE.delay(10_000) == 30.0


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.5), (0.999, 1.499)])
def test_jitter_spans_half_to_one_and_a_half(draw: float, factor: float) -> None:
    """The random factor ranges over [0.5, 1.5)."""
    backoff = Backoff(base=1.0, random=lambda: draw)
    assert backoff.delay(1) == pytest.approx(factor)


def test_retry_after_is_a_floor() -> None:
    """A server's Retry-After is never undercut, but a longer computed delay stays."""
    assert MIDDLE.delay(1, retry_after=7.0) == 7.0
    assert MIDDLE.delay(6, retry_after=1.0) == 16.0


def test_retry_after_is_capped() -> None:
    """An absurd Retry-After is capped at retry_after_cap."""
    assert Backoff(retry_after_cap=60.0).delay(1, retry_after=86_400) == 60.0


def test_scaled_multiplies_every_duration() -> None:
    """scaled(f) shrinks base, cap and the Retry-After cap alike."""
    fast = MIDDLE.scaled(0.001)
    assert fast.delay(1) == pytest.approx(0.0005)
    assert fast.delay(100) == pytest.approx(0.03)
    assert fast.attempts == MIDDLE.attempts


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("-4", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_parse_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    """Delta-seconds are read as given (negative as 0); garbage is ignored."""
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_http_date() -> None:
    """An HTTP date is the time left until it; a past date is 0."""
    now = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Fri, 31 Jan 2025 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Fri, 31 Jan 2025 11:00:00 GMT", now) == 0.0
