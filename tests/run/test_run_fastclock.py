"""Safety windows that only a stuck job outlives: a compressed clock whose job timeout is shorter
than the request rate lets a run look at its jobs (the windows are floored by the rate), and a
long queue that moves is not a job taking too long (its time starts again as it moves)."""

from __future__ import annotations

from pathlib import Path

from runs import assert_all_verified, mock_config, plan_for, prompts, run

from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer

JOBS = 24


async def test_a_job_timeout_shorter_than_the_rate_allows_cancels_nothing(tmp_path: Path) -> None:
    """--job-timeout 30 (30 ms on the test clock) with 8 jobs in flight at 50 requests/s (each
    looked at every 160 ms at best): jobs queued behind the emulator's 4 running outlive the
    scaled timeout, yet every job is done and no cancel is sent."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, JOBS), out, rate=50, concurrency=8, job_timeout=30)
    async with MockServer(mock_config()) as server:
        result = await run(plan, server)
        stats = server.stats()
    assert result.counts.get(JobStatus.DONE.value) == JOBS
    assert_all_verified(out, stats)
    assert "cancel" not in stats["requests"]


async def test_a_queue_longer_than_the_job_timeout_cancels_nothing(tmp_path: Path) -> None:
    """One job running at a time, 100 ms each, --job-timeout 250 ms, 6 in flight: the last
    queues for ~500 ms, but its position keeps moving (from where the submit placed it, even
    when a 1 s latency hint leaves the first look to the deadline), so every job is done
    uncancelled."""
    out = tmp_path / "out"
    settings = {"concurrency": 6, "job_timeout": 250, "expect_latency": 1000}
    plan = plan_for(prompts(tmp_path, 12), out, **settings)
    async with MockServer(mock_config(max_in_progress=1, latency=100.0)) as server:
        result = await run(plan, server)
        stats = server.stats()
    assert result.counts.get(JobStatus.DONE.value) == 12
    assert_all_verified(out, stats)
    assert "cancel" not in stats["requests"]
