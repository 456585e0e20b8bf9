"""How long downloads keep trying a file host that fails (``--download-patience``).

A download that fails without an answer (5xx, 429, a timeout, a broken connection, a file cut
short) is tried again, with growing waits, until ``seconds`` have passed since its failures
began, or since its host's did, whichever began first. A host's failures begin with the first
failed try of any download from it, and end with any answer from it (a video, a refusal, bytes
that made progress). A link refused whose job's result cannot be read again just now (the API
down) counts the same way, against the result route (``RESULTS``) instead of a file host. So in
an outage that outlasts the patience, the videos queued behind the
first ones do not each wait a patience of their own: once the host has failed for ``seconds``,
a download from it gives up at its first failure, and a run with a thousand videos to fetch
leaves them all for the next run moments later. A host failing one download in ten never runs
out: its other downloads keep answering.

Time is read from ``clock`` (monotonic: it stops while the machine sleeps, so a night in
suspend is not counted as an outage).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

RESULTS = "results"  # the provider's result route, read again for fresh links


class Patience:
    """The patience of a run's downloads, shared by all of them (see the module docstring)."""

    __slots__ = ("_clock", "_down", "seconds")

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._down: dict[str, float] = {}  # host -> when its failures began

    def __repr__(self) -> str:
        return f"<Patience {self.seconds:g}s, {len(self._down)} host(s) failing>"

    def answered(self, source: str) -> None:
        """``source`` (a file's URL, or ``RESULTS``) answered: its failures, if any, are over."""
        self._down.pop(_host(source), None)

    def failed(self, source: str, since: float | None) -> tuple[float, float]:
        """A try from ``source`` (a file's URL, or ``RESULTS``) failed without an answer;
        ``since``: when this download's failures began (None: with this one). Returns that
        time, and the seconds of patience left (zero or less: give up)."""
        now = self._clock()
        since = now if since is None else since
        began = min(since, self._down.setdefault(_host(source), now))
        return since, self.seconds - (now - began)


def _host(source: str) -> str:
    return source if source == RESULTS else urlsplit(source).netloc.lower()
