"""The emulator's job model: FIFO per key, the concurrency cap, honest positions, timers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from batchgen.mock import MockConfig
from batchgen.mock.outcomes import CLIENT_CANCELLED, USER_TIMEOUT
from batchgen.mock.queue import TRANSITIONS, Job, JobQueue, JobState

FOREVER = 3600.0  # real seconds: the job never finishes during a test
QUEUED, RUNNING, DONE = JobState.IN_QUEUE, JobState.IN_PROGRESS, JobState.COMPLETED


def make_queue(**settings: float) -> JobQueue:
    config = MockConfig(max_in_progress=2, queue_delay=0.0, time_scale=0.001)
    for name, value in settings.items():
        setattr(config, name, value)
    return JobQueue(config)


def job(n: int, key: str = "k1", running: float = FOREVER) -> Job:
    return Job(f"job-{n}", "fal-ai/x/y", "fal-ai/x", key, running=running)


async def settle(queue: JobQueue, watched: Job, done: Callable[[], bool]) -> None:
    """Wait on the lane's change notifications until ``done()``; bounded, never a bare sleep."""
    for _ in range(200):
        if done():
            return
        await queue.wait_change(watched, 1.0)
    raise AssertionError("the queue never reached the expected state")


async def test_cap_per_key_and_fifo_positions() -> None:
    """Two jobs run per key, the rest wait in order with positions 0, 1, 2; keys don't mix."""
    queue = make_queue()
    jobs = [queue.submit(job(n)) for n in range(5)]
    other = queue.submit(job(9, key="k2"))
    assert [j.state for j in jobs] == [RUNNING, RUNNING, QUEUED, QUEUED, QUEUED]
    assert [queue.position(j) for j in jobs[2:]] == [0, 1, 2]
    assert other.state is RUNNING
    assert queue.counts == {QUEUED: 3, RUNNING: 3, DONE: 0}
    queue.close()


async def test_a_freed_slot_goes_to_the_oldest_waiter() -> None:
    """When a running job ends, the first waiting job starts and the others move up."""
    queue = make_queue()
    jobs = [queue.submit(job(n)) for n in range(4)]
    assert queue.cancel(jobs[0])
    assert jobs[0].state is DONE
    assert jobs[0].failure is CLIENT_CANCELLED
    assert jobs[2].state is RUNNING
    assert queue.position(jobs[3]) == 0
    queue.close()


async def test_cancelled_waiters_never_run_and_leave_no_gap() -> None:
    """A job cancelled while waiting is skipped; positions behind it shrink by one."""
    queue = make_queue(max_in_progress=1)
    jobs = [queue.submit(job(n)) for n in range(5)]
    assert queue.cancel(jobs[2])
    assert [queue.position(j) for j in (jobs[1], jobs[3], jobs[4])] == [0, 1, 2]
    assert queue.cancel(jobs[0])
    assert jobs[1].state is RUNNING
    assert queue.cancel(jobs[1])
    assert jobs[2].state is DONE
    assert jobs[2].started_at is None
    assert jobs[3].state is RUNNING
    assert queue.position(jobs[4]) == 0
    queue.close()


async def test_picked_up_jobs_count_ahead_of_waiters() -> None:
    """During the pickup delay a job holds its slot, shows IN_QUEUE at 0, and counts ahead."""
    queue = make_queue(max_in_progress=1, queue_delay=FOREVER)
    first, second = queue.submit(job(1)), queue.submit(job(2))
    assert (first.state, queue.position(first)) == (QUEUED, 0)
    assert queue.position(second) == 1
    queue.close()


async def test_jobs_finish_by_timer_and_report_emulated_time() -> None:
    """A job runs for its real running time and reports it in emulated seconds."""
    queue = make_queue()
    one = queue.submit(job(1, running=0.02))
    await settle(queue, one, lambda: one.state is DONE)
    assert one.failure is None
    assert one.inference_time is not None
    assert 15 <= one.inference_time < 1000  # 20 emulated seconds, give or take a slow machine


async def test_zero_running_time_completes_on_the_next_loop_turn() -> None:
    """A zero-latency job is still IN_PROGRESS on submit, then COMPLETED right after."""
    queue = make_queue()
    one = queue.submit(job(1, running=0.0))
    assert one.state is RUNNING
    await settle(queue, one, lambda: one.state is DONE)


async def test_start_deadline_expires_a_waiting_job() -> None:
    """A job that cannot start before X-Fal-Request-Timeout ends as a user request_timeout."""
    queue = make_queue(max_in_progress=1)
    blocker = queue.submit(job(1))
    late = queue.submit(job(2), start_timeout=5.0)  # 5 emulated seconds: 5 ms
    await settle(queue, late, lambda: late.state is DONE)
    assert late.failure is USER_TIMEOUT
    assert late.started_at is None
    assert queue.cancel(blocker)
    assert queue.counts[RUNNING] == 0


async def test_a_started_job_ignores_its_start_deadline() -> None:
    """Once running, a job's start deadline no longer applies."""
    queue = make_queue()
    one = queue.submit(job(1, running=0.0), start_timeout=0.0)
    await settle(queue, one, lambda: one.state is DONE)
    assert one.failure is None


async def test_ignored_cancel_leaves_the_job_running() -> None:
    """A cancel the runner ignores is accepted, and the job keeps running."""
    queue = make_queue()
    one = queue.submit(job(1))
    assert queue.cancel(one, ignored=True)
    assert one.state is RUNNING
    assert queue.cancel(one)
    assert not queue.cancel(one)  # already completed
    queue.close()


async def test_hundred_thousand_waiting_jobs_stay_cheap() -> None:
    """100,000 queued jobs submit in well under seconds and the last one's position is exact."""
    queue = make_queue(max_in_progress=1)
    started = time.perf_counter()
    jobs = [queue.submit(job(n)) for n in range(100_000)]
    for n in range(1, 100_000, 7):
        queue.cancel(jobs[n])
    elapsed = time.perf_counter() - started
    cancelled = len(range(1, 100_000, 7))
    assert queue.position(jobs[-1]) == 99_998 - cancelled
    assert elapsed < 10
    queue.close()


def test_completed_is_final() -> None:
    """The transition table lets nothing leave COMPLETED and nothing go back to IN_QUEUE."""
    assert TRANSITIONS[DONE] == frozenset()
    assert all(QUEUED not in targets for targets in TRANSITIONS.values())


async def test_closing_releases_stream_waiters() -> None:
    """close() wakes everyone waiting for a change, so open streams can end."""
    queue = make_queue()
    one = queue.submit(job(1))
    waiter = asyncio.create_task(queue.wait_change(one, FOREVER))
    await asyncio.sleep(0)
    queue.close()
    assert await asyncio.wait_for(waiter, 5) is True


async def test_raising_the_cap_live_starts_waiters_at_the_next_submit() -> None:
    """A test may raise max_in_progress mid-run: the next submit fills the new slots in order."""
    queue = make_queue(max_in_progress=1)
    jobs = [queue.submit(job(n)) for n in range(3)]
    queue._config.max_in_progress = 3
    late = queue.submit(job(3))
    assert [j.state for j in jobs] == [RUNNING, RUNNING, RUNNING]
    assert (late.state, queue.position(late)) == (QUEUED, 0)
    queue.close()


def test_config_summary_names_what_a_user_tries() -> None:
    """The emulator's start line names its speed, cap, auth, faults and seed."""
    config = MockConfig(time_scale=0.01, fault_429=0.1, seed=1, status_route=False)
    assert config.summary() == (
        "jobs ~1.1 s (110 s x time scale 0.01); 2 running per key; auth any, any key; "
        "faults: 429 10%; no status route; seed 1"
    )
