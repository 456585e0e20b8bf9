"""How long to wait before trying a request again: exponential backoff with jitter.

The delay before retry ``n`` (1-based) is ``min(cap, base * 2 ** (n - 1))`` times a random
factor in [0.5, 1.5), so that many clients failing together do not retry together. A server's
``Retry-After`` (seconds or an HTTP date) is a floor: we never come back sooner than asked.
Every number, and the random source, is injectable so that tests take milliseconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class Backoff:
    """A retry schedule: ``attempts`` tries of one request in all, delays from ``delay``."""

    base: float = 0.5
    cap: float = 30.0
    attempts: int = 10
    # A proxy asking for an hour would stall a job for an hour; beyond this we still retry.
    retry_after_cap: float = 300.0
    random: Callable[[], float] = field(default=random.random, repr=False)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry)."""
        exponent = min(max(retry - 1, 0), 62)  # 2**63 would overflow nothing, but is absurd
        computed = min(self.cap, self.base * 2.0**exponent) * (0.5 + self.random())
        if retry_after is None:
            return computed
        return min(max(retry_after, computed), self.retry_after_cap)

    def scaled(self, factor: float) -> Backoff:
        """The same schedule with every duration multiplied by ``factor``."""
        return Backoff(
            base=self.base * factor,
            cap=self.cap * factor,
            attempts=self.attempts,
            retry_after_cap=self.retry_after_cap * factor,
            random=self.random,
        )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP date), or None.

    A date in the past means "now" (0); anything unreadable is ignored (None).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is not a delay
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP dates are GMT by definition
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
