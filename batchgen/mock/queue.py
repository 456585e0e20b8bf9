"""The job model: IN_QUEUE -> IN_PROGRESS -> COMPLETED, with fal's per-account concurrency cap.

Every key is an account (a *lane*) with at most ``max_in_progress`` jobs holding a slot; the
others wait in FIFO order and are never refused. Time moves by event-loop timers, and only
jobs holding a slot have one (plus jobs submitted with a start deadline), so 100,000 queued
jobs cost memory, not CPU. A waiting job's ``queue_position`` is the count of jobs still
waiting ahead of it in its lane, computed in O(log n) without scanning the queue. Each lane
counts what tests assert on per key (``JobQueue.by_key``): jobs submitted, in flight (not yet
COMPLETED) and running, now and at most.
"""

from __future__ import annotations

import asyncio
import bisect
import enum
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from batchgen.mock.config import MockConfig
from batchgen.mock.outcomes import CLIENT_CANCELLED, USER_TIMEOUT, Failure


class JobState(enum.StrEnum):
    """The statuses a job shows; fal has no FAILED: a failed job is COMPLETED with an error."""

    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


# Queued jobs may end without running (cancel, start deadline); nothing leaves COMPLETED.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.IN_QUEUE: frozenset({JobState.IN_PROGRESS, JobState.COMPLETED}),
    JobState.IN_PROGRESS: frozenset({JobState.COMPLETED}),
    JobState.COMPLETED: frozenset(),
}


class Job:
    """One submitted request. Times are event-loop times; ``*_wall`` are epoch seconds."""

    __slots__ = (
        "billable_units",
        "deadline",
        "endpoint_id",
        "failure",
        "finished_at",
        "holds_slot",
        "id",
        "inference_time",
        "key",
        "output_key",
        "owner_app",
        "planned",
        "running",
        "seq",
        "started_at",
        "started_wall",
        "state",
        "timer",
        "waiting",
    )

    def __init__(
        self,
        request_id: str,
        endpoint_id: str,
        owner_app: str,
        key: str,
        *,
        output_key: str = "video",
        running: float = 0.0,
        planned: Failure | None = None,
        billable_units: int = 1,
    ) -> None:
        self.id = request_id
        self.endpoint_id = endpoint_id
        self.owner_app = owner_app
        self.key = key
        self.output_key = output_key
        self.running = running
        self.planned = planned
        self.billable_units = billable_units
        self.state = JobState.IN_QUEUE
        self.failure: Failure | None = None
        self.seq = -1
        self.waiting = False
        self.holds_slot = False
        self.started_at: float | None = None
        self.started_wall: float | None = None
        self.finished_at: float | None = None
        self.inference_time: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.deadline: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.state} key={self.key[:4]}…>"


class _Lane:
    """One account's queue. ``popped`` counts jobs taken off the front, waiting or not."""

    __slots__ = (
        "active",
        "cancelled",
        "max_active",
        "max_open",
        "next_seq",
        "open",
        "pickups",
        "popped",
        "queue",
        "waiters",
    )

    def __init__(self) -> None:
        self.active = 0
        self.open = 0  # submitted and not COMPLETED
        self.max_open = self.max_active = 0
        # Jobs holding a slot but still IN_QUEUE (fal's pickup delay): ahead of every waiter.
        self.pickups = 0
        self.queue: deque[Job] = deque()
        self.next_seq = 0
        self.popped = 0
        # Seqs of jobs that left the queue early but are still in the deque (removed lazily).
        self.cancelled: list[int] = []
        self.waiters: list[asyncio.Future[None]] = []


class JobQueue:
    """All jobs of one emulator, by request id, and their lanes."""

    __slots__ = ("_config", "_lanes", "_loop", "closed", "counts", "jobs")

    def __init__(self, config: MockConfig) -> None:
        self._config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lanes: dict[str, _Lane] = {}
        self.jobs: dict[str, Job] = {}
        self.counts = dict.fromkeys(JobState, 0)
        self.closed = False

    def __repr__(self) -> str:
        counts = ", ".join(f"{state}={n}" for state, n in self.counts.items())
        return f"<JobQueue {counts} lanes={len(self._lanes)}>"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def submit(self, job: Job, start_timeout: float | None = None) -> Job:
        """Enqueue ``job``; if given, ``start_timeout`` emulated seconds is its start deadline."""
        self.jobs[job.id] = job
        self.counts[JobState.IN_QUEUE] += 1
        lane = self._lanes.get(job.key)
        if lane is None:
            lane = self._lanes[job.key] = _Lane()
        if start_timeout is not None:
            delay = self._config.scaled(start_timeout)
            job.deadline = self.loop.call_later(delay, self._expire, job)
        job.seq = lane.next_seq
        lane.next_seq += 1
        lane.open += 1
        lane.max_open = max(lane.max_open, lane.open)
        job.waiting = True
        lane.queue.append(job)
        # Also starts older waiters if a test raised max_in_progress since the last change.
        self._fill(lane)
        return job

    def by_key(self) -> dict[str, dict[str, int]]:
        """Per key: ``submits``, ``in_flight`` (not COMPLETED), ``max_in_flight``, and
        ``max_in_progress`` (the most holding one of its ``max_in_progress`` slots at once)."""
        return {
            key: {
                "submits": lane.next_seq,
                "in_flight": lane.open,
                "max_in_flight": lane.max_open,
                "max_in_progress": lane.max_active,
            }
            for key, lane in self._lanes.items()
        }

    def position(self, job: Job) -> int:
        """How many IN_QUEUE jobs of the same key are ahead of ``job`` (0 once picked up)."""
        if not job.waiting:
            return 0
        lane = self._lanes[job.key]
        ahead = job.seq - lane.popped - bisect.bisect_left(lane.cancelled, job.seq)
        return lane.pickups + ahead

    def cancel(self, job: Job, *, ignored: bool = False) -> bool:
        """Ask ``job`` to stop; False if it had already completed.

        A waiting job is removed and never runs; a running one stops now, unless ``ignored``
        (its runner ignores the signal). Either way it ends COMPLETED / client_cancelled.
        """
        if job.state is JobState.COMPLETED:
            return False
        if job.state is JobState.IN_PROGRESS and ignored:
            return True
        self._complete(job, CLIENT_CANCELLED)
        return True

    async def wait_change(self, job: Job, within: float) -> bool:
        """Wait until something changes in ``job``'s lane; False if nothing did ``within``
        seconds (a stream then sends its keep-alive)."""
        lane = self._lanes.get(job.key)
        if self.closed or lane is None:  # shut down, or forgotten by a reset
            return True
        future: asyncio.Future[None] = self.loop.create_future()
        lane.waiters.append(future)
        done, _ = await asyncio.wait({future}, timeout=within)
        if not done:
            future.cancel()
            if future in lane.waiters:
                lane.waiters.remove(future)
        return bool(done)

    def close(self) -> None:
        """Stop every timer and release every waiter (server shutdown)."""
        self.closed = True
        for job in self.jobs.values():
            self._cancel_timers(job)
        for lane in self._lanes.values():
            self._notify(lane)

    def clear(self) -> None:
        """Forget every job (``POST /_mock/reset``)."""
        self.close()
        self.closed = False
        self.jobs.clear()
        self._lanes.clear()
        self.counts = dict.fromkeys(JobState, 0)

    def _move(self, job: Job, new: JobState) -> None:
        if new not in TRANSITIONS[job.state]:
            raise RuntimeError(f"job {job.id}: {job.state} -> {new} is not allowed")
        self.counts[job.state] -= 1
        self.counts[new] += 1
        job.state = new

    def _pick_up(self, lane: _Lane, job: Job) -> None:
        lane.active += 1
        lane.max_active = max(lane.max_active, lane.active)
        lane.pickups += 1
        job.holds_slot = True
        delay = self._config.scaled(self._config.queue_delay)
        if delay > 0:
            job.timer = self.loop.call_later(delay, self._start, job)
        else:
            self._start(job)

    def _start(self, job: Job) -> None:
        if job.deadline is not None:
            job.deadline.cancel()
            job.deadline = None
        lane = self._lanes[job.key]
        lane.pickups -= 1
        self._move(job, JobState.IN_PROGRESS)
        job.started_at = self.loop.time()
        job.started_wall = time.time()
        job.timer = self.loop.call_later(job.running, self._complete, job, job.planned)
        self._notify(lane)

    def _expire(self, job: Job) -> None:
        job.deadline = None
        if job.state is JobState.IN_QUEUE:
            self._complete(job, USER_TIMEOUT)

    def _complete(self, job: Job, failure: Failure | None) -> None:
        lane = self._lanes[job.key]
        if job.waiting:
            job.waiting = False
            bisect.insort(lane.cancelled, job.seq)
        elif job.holds_slot and job.state is JobState.IN_QUEUE:
            lane.pickups -= 1
        self._cancel_timers(job)
        self._move(job, JobState.COMPLETED)
        lane.open -= 1
        job.failure = failure
        job.finished_at = self.loop.time()
        if job.started_at is not None:
            job.inference_time = (job.finished_at - job.started_at) / self._config.time_scale
        if job.holds_slot:
            job.holds_slot = False
            lane.active -= 1
            self._fill(lane)
        self._notify(lane)

    def _fill(self, lane: _Lane) -> None:
        while lane.queue and lane.active < self._config.max_in_progress:
            job = lane.queue.popleft()
            lane.popped += 1
            if not job.waiting:
                del lane.cancelled[bisect.bisect_left(lane.cancelled, job.seq)]
                continue
            job.waiting = False
            self._pick_up(lane, job)

    @staticmethod
    def _cancel_timers(job: Job) -> None:
        for handle in (job.timer, job.deadline):
            if handle is not None:
                handle.cancel()
        job.timer = job.deadline = None

    @staticmethod
    def _notify(lane: _Lane) -> None:
        waiters, lane.waiters = lane.waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)


@dataclass(frozen=True, slots=True)
class Logged:
    """One submit as the log keeps it."""

    request_id: str
    endpoint_id: str
    key: str
    sent: float  # epoch seconds
    json_input: dict[str, Any]
