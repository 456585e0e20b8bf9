"""When to look at a job again: a poll policy learned from the run's own jobs.

fal's own client polls every 0.1 s: about 1,100 status calls for a 110 s job, all of them
eating the rate budget that submits need. The floor is one look per job, the one that finds it
done; this policy aims at it.

A job's time from submit to done is a *wait* in the provider's queue, then its *run*. Run times
are learned per group of jobs that run alike (an endpoint and the parameters that drive its
price, such as the duration: a 10 s Kling video takes longer than a 5 s one), as a
distribution, not one figure: from the provider's own ``inference_time`` where it gives one.
The wait is predicted from the job's ``queue_position`` (jobs ahead of it) and the provider's
throughput: the account's concurrency over the mean run time. The concurrency is read off the
submits: a job queued behind ``p`` others while ``n`` of ours are in flight means ``n - p`` run
(the least such count seen, since a job done but not yet seen done inflates it). A job with 7
ahead, 8 running jobs of 1 s, starts in about 1 s.

The first look aims at the wait plus a high quantile (``quantile``, 0.9) of the run times, so
most jobs are found done at their first look; the few that are not are looked at again at the
``ladder``'s quantiles, then in proportion to how long they have run (``growth``). A late look
costs a job a little time, but while the provider has jobs queued (the run keeps more in flight
than the account runs) its throughput does not wait for our looks. Once no job is left to
submit (``tail``), a late look delays the end of the run: looks then start at the median, and
a job past it is looked at every tenth of the median (no more often than ``min_interval``).

Until a group has completions, the likely time is a guess (the endpoint's typical latency), and
a provider may be far faster: ``scouts`` (2) jobs of the group look early and double
(``min_interval``, then the time elapsed), never past the guess; the others wait for the guess,
and ``learned`` tells the caller when to wake them sooner. Another group's run times are used
meanwhile, once there are any.

A job predicted to wait long in the queue is looked at halfway to its predicted start, then
halfway again (each look reads its queue position, so a wrong prediction is soon mended),
never further apart than ``max_interval`` once it is due: a wait of an hour costs a few looks,
not one every ``max_interval``. Such long naps end early when what was learned moves.

A completion seen at a look is only known to lie between the previous look and this one, so
each job contributes the middle of that interval, less its predicted wait. That estimate can
move *down* as well as up: had we used the time we saw it done, a first look aimed too late
would confirm itself forever.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Hashable

# Submits remembered to tell the account's concurrency.
_CAP_WINDOW = 16
# Once nothing is left to submit, a job past its median run time is looked at this often
# (a fraction of the median), no more often than ``min_interval``.
_TAIL_STEP = 0.1


class _Times:
    """A sliding window of samples, kept sorted for quantiles."""

    __slots__ = ("_recent", "_sorted")

    def __init__(self, window: int) -> None:
        self._recent: deque[float] = deque(maxlen=window)
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._sorted)

    def add(self, sample: float) -> None:
        if len(self._recent) == self._recent.maxlen:
            del self._sorted[bisect.bisect_left(self._sorted, self._recent[0])]
        self._recent.append(sample)
        bisect.insort(self._sorted, sample)

    def at(self, quantile: float) -> float:
        """The ``quantile`` of the samples, read between the two nearest (with two samples the
        median is their mean, not the larger: few samples must not aim every look late)."""
        place = quantile * (len(self._sorted) - 1)
        low = int(place)
        high = min(low + 1, len(self._sorted) - 1)
        return self._sorted[low] + (self._sorted[high] - self._sorted[low]) * (place - low)


class PollPolicy:
    """Delays between looks at jobs for one run. Pure arithmetic: no clock, no I/O.

    ``seed`` is the run time guessed before any job completed (the endpoint spec's typical
    latency, or ``--expect-latency``), ``None`` when unknown. Times are seconds: ``elapsed``
    since the job's submit; ``wait`` its predicted time in the queue (``wait_for``); ``at``
    any clock's reading of when a completion was seen (only differences are used).
    """

    __slots__ = (
        "_all",
        "_caps",
        "_ended",
        "_enlisted",
        "_groups",
        "_means_then",
        "_predicted",
        "_said",
        "_starts",
        "generation",
        "growth",
        "ladder",
        "margin",
        "max_interval",
        "min_interval",
        "quantile",
        "scouts",
        "seed",
        "tail",
        "window",
    )

    def __init__(
        self,
        seed: float | None,
        *,
        min_interval: float = 0.5,
        max_interval: float = 30.0,
        growth: float = 0.25,
        quantile: float = 0.75,
        ladder: tuple[float, ...] = (0.97, 0.995),
        window: int = 48,
        scouts: int = 2,
        margin: float = 0.05,
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
        self.window = window
        self.scouts = scouts
        self.margin = margin  # looks aim this fraction past a quantile: timers are not exact
        # Set once no job is left to submit: a late look now delays the run's end, so looks
        # aim at the median run time first, then climb the quantiles.
        self.tail = False
        self._groups: dict[Hashable, _Times] = {}
        self._all = _Times(window)
        self._enlisted: dict[Hashable, int] = {}
        self._caps: dict[Hashable, deque[int]] = {}  # by lane (key): its account's concurrency
        # job -> predicted start, group, lane
        self._starts: dict[Hashable, tuple[float, Hashable, Hashable]] = {}
        # job -> what its start was predicted from: when the provider said it, queued or
        # not, its queue position (in the order they were said: the queue's order)
        # and, for a job since seen running, when it was (it started by then)
        self._said: dict[Hashable, tuple[float, bool, int | None, float | None]] = {}
        self._ended: dict[Hashable, deque[float]] = {}  # by lane: when recent jobs ended
        # Bumped when what was learned moves (a group's first run times, its mean by more
        # than a tenth): every start predicted before is predicted again from what was said.
        self.generation = 0
        self._predicted = 0  # the generation the starts were predicted at
        self._means_then: dict[Hashable, float] = {}

    def __repr__(self) -> str:
        return (
            f"<PollPolicy groups={len(self._groups)} samples={len(self._all)} "
            f"tracked={len(self._starts)} tail={self.tail}>"
        )

    # -- what is known ----------------------------------------------------------------------

    def _times(self, group: Hashable) -> _Times | None:
        """The run times a group's looks aim by: its own, else every group's, else none."""
        own = self._groups.get(group)
        if own:
            return own
        return self._all if self._all else None

    def knows(self, group: Hashable = "") -> bool:
        """Whether looks at ``group``'s jobs aim by learned run times (not the seed)."""
        return self._times(group) is not None

    def expected(self, group: Hashable = "") -> float | None:
        """The run time a first look aims at: the learned quantile, else the seed."""
        times = self._times(group)
        return self.seed if times is None else times.at(self.quantile)

    def throughput(self, lane: Hashable = "") -> float | None:
        """Jobs the provider completes per second for one lane (an API key: an account):
        its concurrency over the mean run time; None until both are known."""
        caps = self._caps.get(lane)
        mean = self._mean("") if self._all else None
        return min(caps) / mean if caps and mean else None

    def enlist(self, group: Hashable = "") -> bool:
        """Count a new job of ``group``; True when it is one of the group's scouts (it looks
        early while nothing is learned)."""
        count = self._enlisted.get(group, 0)
        self._enlisted[group] = count + 1
        return count < self.scouts

    def track(
        self,
        key: Hashable,
        group: Hashable,
        now: float,
        *,
        queued: bool,
        queue_position: int | None = None,
        others: int | None = None,
        lane: Hashable = "",
    ) -> float:
        """Predict when job ``key`` of ``group`` starts running (on the caller's clock, read
        ``now``) and remember it; a job told queued again, or running, is predicted anew.
        ``lane``: the key it was submitted with (each key is an account, with its own queue);
        ``others``: how many other jobs of that key are in flight, at a submit's answer.

        A queued job behind ``p`` others starts when the ``p + 1``-th of the jobs in flight
        ends, each predicted to end at its start plus its group's mean run time (jobs that
        should have ended already are taken as ended); when fewer jobs than that are known,
        the queue moves at the throughput. Jobs started together end together, so a queue
        fills in waves, as the provider's does.
        """
        running = None if queue_position is None or others is None else others - queue_position
        # Only a job with others queued ahead of it tells: at position 0 it may be waiting for
        # a free runner to pick it up (fal's queue, the emulator's), not for a job to end.
        if queued and running is not None and running >= 1 and queue_position:
            self._caps.setdefault(lane, deque(maxlen=_CAP_WINDOW)).append(running)
        self.start_of(key)  # what is tracked is predicted at this generation first
        said = self._said.pop(key, None)
        if not queued and said is not None and said[1] and said[3] is None:
            # First seen running: it started after it was last said queued, and by now.
            self._said[key] = (*said[:3], now)
        else:
            self._said[key] = (now, queued, queue_position, None)
        self._starts.pop(key, None)
        return self._predict(key, group, lane)

    def start_of(self, key: Hashable) -> float | None:
        """When job ``key`` is predicted to start (see ``track``), predicted again from what
        the provider said if the run has learned since; None for a job not tracked."""
        if self._predicted != self.generation:
            self._predicted = self.generation
            tracked = list(self._starts.items())
            self._starts.clear()
            for other, (_, group, lane) in tracked:  # in the order said: ahead ones first
                self._predict(other, group, lane)
        known = self._starts.get(key)
        return None if known is None else known[0]

    def _predict(self, key: Hashable, group: Hashable, lane: Hashable) -> float:
        now, queued, position, by = self._said[key]
        start = now
        if queued and position is not None:
            start = self._start_after(now, max(0, position), key, lane)
        if by is not None:
            start = min(start, by)
        self._starts[key] = (start, group, lane)
        return start

    def forget(self, key: Hashable, ended: float | None = None) -> None:
        """The job ended (at ``ended``, on the caller's clock, when known) or is no longer
        followed: it frees its place. Its end still tells when the jobs queued behind it
        started, should their starts be predicted again."""
        known = self._starts.pop(key, None)
        self._said.pop(key, None)
        if known is not None and ended is not None:
            self._ended.setdefault(known[2], deque(maxlen=_CAP_WINDOW * 4)).append(ended)

    def _start_after(self, now: float, ahead: int, key: Hashable, lane: Hashable) -> float:
        ends = []
        running = 0  # of the jobs we know of, those running at ``now``
        means: dict[Hashable, float | None] = {}  # per group, once per call: not per job
        for other, (start, group, its_lane) in self._starts.items():
            if other == key or its_lane != lane:
                continue
            if group not in means:
                means[group] = self._mean(group)
            mean = means[group]
            if mean is not None and start + mean > now:
                ends.append(start + mean)
                running += start <= now
        ended = [end for end in self._ended.get(lane, ()) if end > now]
        ends += ended
        running += len(ended)  # in flight at ``now``, since they ended later
        # First in the queue while the jobs we know of leave a runner free: it waits to be
        # picked up, not for a job to end (behind others, every runner is busy).
        caps = self._caps.get(lane)
        if ahead == 0 and caps and running < min(caps):
            return now
        if len(ends) > ahead:
            return sorted(ends)[ahead]
        # The provider holds jobs we do not follow (another client's, or from before): pace
        # the queue by the throughput, or, while it is unknown, by the jobs we know of.
        rate = self.throughput(lane)
        if rate is None:
            return max(ends, default=now)
        return now + (ahead + 1) / rate

    def _mean(self, group: Hashable) -> float | None:
        times = self._times(group)
        if times is None:
            return self.seed
        return sum(times.at(q / 10) for q in range(1, 10)) / 9

    # -- when to look -----------------------------------------------------------------------

    def delay(
        self, elapsed: float, group: Hashable = "", *, wait: float = 0.0, scout: bool = True
    ) -> float:
        """Seconds to wait before the next look at a job submitted ``elapsed`` seconds ago."""
        elapsed = max(elapsed, 0.0)
        times = self._times(group)
        if times is None:
            return self._guess(elapsed, scout)
        ran = elapsed - wait  # how long it has run, if it started when predicted
        stretch = 1 + self.margin
        firsts = (0.5, self.quantile) if self.tail else (self.quantile,)
        aims = (times.at(q) * stretch for q in (*firsts, *self.ladder))
        later = [t for t in aims if t > ran + 1e-9]
        median = times.at(0.5) * stretch if self.tail else None
        if median is not None and ran >= median:  # each late look now delays the end
            step = max(self.min_interval, _TAIL_STEP * median)
            return max(self.min_interval, min(min(later, default=ran + step) - ran, step))
        if not later:  # past every aim: less and less often, up to the ceiling
            return self._clamp(self.growth * max(ran, elapsed * 0.5))
        pause = max(self.min_interval, min(later) - ran)
        if -ran > min(later):  # queued longer than it runs: looked at halfway to its start
            return min(pause, max(self.max_interval, -ran / 2))
        return pause  # an aim: one look where the run times say it ends

    def _guess(self, elapsed: float, scout: bool) -> float:
        """Nothing learned: scouts look early and double up to the seed; others wait for it."""
        if not scout:
            if self.seed is None:
                return self.max_interval
            # The guess, then as long again each time: the first completion (a scout's, most
            # likely) wakes them to be timed by what was learned.
            if self.seed > elapsed:
                return max(self.min_interval, self.seed - elapsed)
            return max(self.max_interval, elapsed)
        if self.seed is None:
            wait = elapsed
        elif self.seed > elapsed:
            wait = min(elapsed, self.seed - elapsed)
        else:
            wait = self.growth * elapsed
        return self._clamp(wait)

    def _clamp(self, wait: float) -> float:
        return min(self.max_interval, max(self.min_interval, wait))

    # -- learning ---------------------------------------------------------------------------

    def observe(
        self,
        last_miss: float,
        seen_done: float,
        group: Hashable = "",
        *,
        wait: float = 0.0,
        ran: float | None = None,
    ) -> bool:
        """Learn from a job seen not done at ``last_miss`` and done at ``seen_done`` (seconds
        after its submit; ``last_miss`` is 0 when the first look found it done), predicted to
        wait ``wait`` in the queue; ``ran``: how long it ran, when the provider said (then
        that is the sample, unless it is longer than the job has existed: a clock that is not
        ours, such as a time-scaled emulator's). True when what was learned moved (a group's
        first run time, or its mean by more than a tenth: ``generation`` was bumped)."""
        middle = (max(0.0, last_miss) + max(last_miss, seen_done)) / 2
        if ran is not None and ran <= seen_done:  # longer than since its submit: not believed
            sample = ran
        elif middle - wait > 0.25 * middle:
            sample = middle - wait
        else:
            sample = middle
        own = self._groups.get(group)
        if own is None:
            own = self._groups[group] = _Times(self.window)
        own.add(sample)
        self._all.add(sample)
        mean, then = self._mean(group), self._means_then.get(group)
        if mean is not None and (then is None or abs(mean - then) > 0.1 * then):
            self._means_then[group] = mean
            self.generation += 1
            return True
        return False
