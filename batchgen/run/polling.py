"""When to look at a job again: an adaptive poll policy learned from the run's own jobs.

fal's own client polls every 0.1 s: about 1,100 status calls for a 110 s job, all of them
eating the rate budget that submits need. We aim the first look at the time a job is likely to
be done, then at the later quantiles of the completion times seen so far (most jobs missed by
the first look end soon after it), then back off in proportion to how long the job has already
taken (a job late by a minute will not be done in the next 100 ms), never waiting more than
``max_interval``.

Until a job of this run has finished, the likely time is only a guess (the endpoint's typical
latency), and a provider may be far faster: looks start early and double (``min_interval``,
then twice the time elapsed), never past the guess, so a fast provider is seen at once and a
slow one costs a few looks for the first jobs only.

The likely time is learned from the completions of this run. A completion seen at a look is
only known to lie between the previous look and this one, so each job contributes the middle
of that interval. That estimate can move *down* as well as up: had we used the time we saw it
done, a first look aimed too late would confirm itself forever.
"""

from __future__ import annotations

import bisect
from collections import deque


class PollPolicy:
    """Delays between status looks for one run. Pure arithmetic: no clock, no I/O.

    ``seed`` is the latency guessed before any job completed (the endpoint spec's typical
    latency, or ``--expect-latency``), ``None`` when unknown; until a job completes, looks start
    at ``min_interval`` and double, never past the seed. Looks aim at the ``quantile`` of the
    learned completion times, then at each of ``ladder``; past them, ``growth`` is the fraction
    of the elapsed time waited. ``window`` bounds how many recent completions are remembered.
    """

    __slots__ = (
        "_recent",
        "_sorted",
        "growth",
        "ladder",
        "max_interval",
        "min_interval",
        "quantile",
        "seed",
    )

    def __init__(
        self,
        seed: float | None,
        *,
        min_interval: float = 0.5,
        max_interval: float = 30.0,
        growth: float = 0.25,
        quantile: float = 0.5,
        ladder: tuple[float, ...] = (0.75, 0.9),
        window: int = 64,
    ) -> None:
        if not 0 < min_interval <= max_interval:
            raise ValueError("need 0 < min_interval <= max_interval")
        if not 0 <= quantile <= 1 or growth <= 0 or window < 1:
            raise ValueError("quantile must be in [0, 1], growth above 0, window at least 1")
        self.seed = seed
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.growth = growth
        self.quantile = quantile
        self.ladder = ladder
        self._recent: deque[float] = deque(maxlen=window)
        self._sorted: list[float] = []

    def __repr__(self) -> str:
        expected = self.expected
        shown = "unknown" if expected is None else f"{expected:.3g}s"
        return f"<PollPolicy expected={shown} samples={len(self._recent)}>"

    @property
    def expected(self) -> float | None:
        """The latency a first look aims at: the learned quantile, else the seed."""
        if not self._sorted:
            return self.seed
        return self._at(self.quantile)

    def _at(self, quantile: float) -> float:
        return self._sorted[min(len(self._sorted) - 1, int(quantile * len(self._sorted)))]

    def delay(self, elapsed: float) -> float:
        """Seconds to wait before the next look at a job submitted ``elapsed`` seconds ago."""
        elapsed = max(elapsed, 0.0)
        if not self._sorted:  # nothing learned yet: look early, doubling, up to the guess
            if self.seed is None:
                wait = elapsed
            elif self.seed > elapsed:
                wait = min(elapsed, self.seed - elapsed)
            else:
                wait = self.growth * elapsed
            return min(self.max_interval, max(self.min_interval, wait))
        wait = self.growth * elapsed
        expected = self.expected
        if expected is not None and expected > elapsed:
            wait = expected - elapsed
        else:
            later = [t for t in map(self._at, self.ladder) if t > elapsed]
            if later:
                wait = min(later) - elapsed
        return min(self.max_interval, max(self.min_interval, wait))

    def observe(self, last_miss: float, seen_done: float) -> None:
        """Learn from a job seen not done at ``last_miss`` and done at ``seen_done`` (seconds
        after its submit; ``last_miss`` is 0 when the first look found it done)."""
        sample = (max(0.0, last_miss) + max(last_miss, seen_done)) / 2
        if len(self._recent) == self._recent.maxlen:
            old = self._recent[0]
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        self._recent.append(sample)
        bisect.insort(self._sorted, sample)
