"""Is the API there? Fail fast when it never was; wait out a blip once it has answered.

A run that has never had an answer from the API (connection refused, no such host, a TLS
error) after ``give_up_after`` seconds of trying is misconfigured, not unlucky: ``Reach`` raises
``Unreachable`` naming the host, the proxy in effect (``route``: see
``batchgen.api.network.Network.route``) and the error, and the run stops (exit 1); a failure
that trying again cannot mend (a certificate not trusted) stops it at once. Once the API has
answered, a lost connection is an overnight network blip: requests keep trying (their failed
connections no longer count against their retries), and the user is told once that batchgen is
waiting for the API, since when, and again when it is back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from batchgen.errors import Unreachable

# Seconds a refused connection to this machine is tried again: a server started with the run
# (``batchgen mock & batchgen run ...``) is listening by then.
LOOPBACK_GRACE = 2.0


class Reach:
    """What one client knows of its API's reachability (see the module docstring)."""

    __slots__ = (
        "_answered",
        "_clock",
        "_first_failure",
        "_notify",
        "_route",
        "_wall",
        "down_since",
        "give_up_after",
    )

    def __init__(
        self,
        *,
        give_up_after: float = 25.0,
        notify: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        route: Callable[[str], str] | None = None,
    ) -> None:
        self.give_up_after = give_up_after
        self._notify, self._clock, self._wall = notify, clock, wall
        self._route = route
        self._first_failure: float | None = None
        self.down_since: float | None = None  # wall time; None while it answers
        self._answered = False

    @property
    def answered(self) -> bool:
        """True once the API has answered anything."""
        return self._answered

    def answer(self) -> None:
        """The API answered (any status)."""
        self._answered = True
        self._first_failure = None
        if self.down_since is not None:
            gone = self._wall() - self.down_since
            self.down_since = None
            self._say(f"the API answers again (it was out of reach for {gone:.0f} s)")

    def time_left(self) -> float | None:
        """Seconds until a never-answered API is given up on (None once it has answered; 0
        once given up, so every waiting retry gives up at once too): a retry should not sleep
        past it."""
        if self._answered or self._first_failure is None:
            return None
        return max(0.0, self.give_up_after - (self._clock() - self._first_failure))

    def cannot_connect(
        self, origin: str, reason: str, *, lasting: bool = False, nobody_here: bool = False
    ) -> bool:
        """A connection to ``origin`` failed before anything was sent. Raises Unreachable when
        the API never answered for too long, at once for a ``lasting`` failure (one no
        retry mends), and after ``LOOPBACK_GRACE`` seconds when ``nobody_here`` (this machine
        refused: no server listens); True when the caller should wait it out (retry without
        counting the try), False for an ordinary retry."""
        via = self.route(origin)
        if not self._answered:
            now = self._clock()
            if self._first_failure is None:
                self._first_failure = now
            if lasting:
                raise Unreachable(
                    f"cannot reach the API at {origin}{via}: {reason}; nothing was sent"
                )
            if nobody_here and now - self._first_failure >= min(LOOPBACK_GRACE, self.give_up_after):
                raise Unreachable(
                    f"nothing listens at {origin} on this machine (connection refused); "
                    "nothing was sent. Is its server running? For the emulator: start "
                    "`batchgen mock` first, or run with --mock for one inside this run"
                )
            if now - self._first_failure >= self.give_up_after:
                proxied = via.startswith(" through")
                check = "the proxy (or NO_PROXY), --base-url" if proxied else "--base-url"
                raise Unreachable(
                    f"cannot reach the API at {origin}{via}: {reason} (no answer for "
                    f"{self.give_up_after:g} s); nothing was sent. Check {check}, the "
                    "provider and the network, then run again"
                )
            return False
        if self.down_since is None:
            self.down_since = self._wall()
            since = datetime.fromtimestamp(self.down_since).strftime("%H:%M")
            self._say(f"waiting for the API at {origin}{via} since {since} ({reason})")
        return True

    def route(self, origin: str) -> str:
        """How ``origin`` is reached, for messages: `` through the proxy ...`` or ``""``."""
        return "" if self._route is None else self._route(origin)

    def _say(self, message: str) -> None:
        if self._notify is not None:
            self._notify(message)
