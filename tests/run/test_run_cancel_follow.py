"""A cancel is not an outcome until the provider says so: a cancelled job is followed to its end."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import aiohttp
from click.testing import CliRunner
from mock_fixtures import AUTH, submit, wait_completed
from runs import (
    FAST,
    assert_all_verified,
    connection,
    mock_config,
    plan_for,
    prompts,
    rows,
    run,
    subprocess_env,
)
from test_run_resume import until

from batchgen.cli import cli
from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
from batchgen.mock import MockServer
from batchgen.run.runner import Runner

S = JobStatus
# Jobs of ~100 ms, a --job-timeout of 40 ms, and the cancel's grace of 120 ms (FAST timing).
TIMED_OUT = {"job_timeout": 40}


def once_each(server: MockServer) -> bool:
    return all(n == 1 for n in server.stats()["submits_by_payload"].values())


async def test_timed_out_job_that_completes_anyway_is_collected(tmp_path: Path) -> None:
    """A job whose --job-timeout cancel the provider ignores completes within the grace: its
    paid video is downloaded and the row says it completed after its timeout."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 3), out, **TIMED_OUT)
    async with MockServer(mock_config(latency=100.0, fault_cancel_ignored=1.0)) as server:
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert all(n == 1 for n in stats["submits_by_payload"].values())
    for job in rows(out):
        assert job.error_type == "completed_after_cancel"
        assert job.error == "completed after its --job-timeout; paid for, so its video is kept"


async def test_timed_out_job_cancelled_at_the_provider_fails_as_timed_out(
    tmp_path: Path,
) -> None:
    """A job whose cancel the provider honours is followed until it says so, then fails as
    timed out (not resubmitted, no video expected)."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 2), out, **TIMED_OUT)
    async with MockServer(mock_config(latency=100.0)) as server:
        result = await run(plan, server)
        assert once_each(server)
    assert result.outcome == "failed"
    for job in rows(out):
        assert (job.status, job.error_type) == (S.FAILED, "timeout")
        assert job.error == "timed out after 40 s (--job-timeout); cancelled at the provider"


async def test_cancel_unresolved_after_grace_is_followed_by_the_next_run(tmp_path: Path) -> None:
    """A cancelled job still running when the grace is over stays cancelling, saying so; the
    next run follows it and collects its video when it completes: paid once, fetched once."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 1), out, **TIMED_OUT)
    async with MockServer(mock_config(latency=600.0, fault_cancel_ignored=1.0)) as server:
        result = await run(plan, server)
        assert result.outcome == "failed"
        [job] = rows(out)
        assert job.status is S.CANCELLING
        assert job.error is not None
        assert "the next run follows it" in job.error
        await until(lambda: server.stats()["jobs"]["COMPLETED"] == 1)
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert once_each_stats(stats)
    [job] = rows(out)
    assert job.error_type == "completed_after_cancel"


def once_each_stats(stats: dict[str, dict[str, int]]) -> bool:
    return all(n == 1 for n in stats["submits_by_payload"].values())


async def test_user_cancel_beside_a_live_run_is_followed_by_it(tmp_path: Path) -> None:
    """`batchgen cancel` on a running job of a live run: the run follows the job it was told
    to cancel; a cancel the provider ignores ends with the video kept, a cancel it honours
    ends cancelled."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 2), out, job_timeout=100_000)
    # 1.5 s real: two `batchgen cancel` commands must land while the jobs run, on a busy CI too.
    config = mock_config(latency=1500.0, latency_jitter=0.0, max_in_progress=2)
    async with MockServer(config) as server:
        runner = Runner(plan, connection(server), timing=FAST)
        task = asyncio.create_task(runner.run())
        await until(lambda: (out / "batchgen.db").exists() and running(out) == 2)
        ignored, honoured = (job.key for job in rows(out))
        for key, ignore in ((ignored, 1.0), (honoured, 0.0)):
            server.config.fault_cancel_ignored = ignore
            args = ["cancel", str(out), "--keys", key, "--provider", "mock"]
            done = await asyncio.to_thread(
                CliRunner().invoke,
                cli,
                [*args, "--base-url", server.base_url],
                env=subprocess_env(),
            )
            assert done.exit_code == 0, done.output
        result = await task
        stats = server.stats()
    assert result.outcome == "failed", result.message  # one is cancelled, not done
    jobs = {job.key: job for job in rows(out)}
    assert jobs[ignored].status is S.DONE
    assert (
        jobs[ignored].error == "completed after the user's cancel; paid for, so its video is kept"
    )
    assert (out / str(jobs[ignored].video_path)).is_file()
    # The run may read the provider's end before or after `cancel` records its own word.
    assert jobs[honoured].status is S.CANCELLED
    assert "cancel" in str(jobs[honoured].error)
    assert once_each_stats(stats)


def running(out: Path) -> int:
    return sum(job.status is S.RUNNING for job in rows(out))


async def test_timeout_cancel_interrupted_before_its_answer_fails_as_timed_out(
    tmp_path: Path,
) -> None:
    """A job left cancelling for its --job-timeout (the run was killed before the provider's
    answer was read) ends failed as timed out on resume, not cancelled: --retry-failed takes it."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 1), out)
    async with MockServer(mock_config(latency=100_000.0)) as server:
        async with aiohttp.ClientSession() as session:
            rid = (await submit(session, server, plan.jobs[0].payload))["request_id"]
            url = f"{server.base_url}/fal-ai/kling-video/requests/{rid}/cancel"
            async with session.put(url, headers=AUTH) as answer:
                assert answer.status == 200
            await wait_completed(session, server, rid)
        with Ledger.in_folder(out) as ledger:
            ledger.sync(plan.jobs, plan.endpoint.id)
            key = plan.jobs[0].key
            ledger.transition(key, S.SUBMITTING, attempts=1)
            ledger.transition(key, S.RUNNING, request_id=rid, submitted_at=time.time())
            ledger.transition(key, S.CANCELLING, error_type="timeout")
        result = await run(plan, server)
    assert result.outcome == "failed"
    [job] = rows(out)
    assert (job.status, job.error_type) == (S.FAILED, "timeout")
    assert job.error is not None
    assert job.error.endswith("(--job-timeout); cancelled at the provider")


async def test_jobs_running_past_their_timeout_keep_their_slots(tmp_path: Path) -> None:
    """Jobs that run on past --job-timeout and the cancel's grace (the provider ignores the
    cancel) still count against --concurrency until they end: never more than 2 in flight
    at the provider under --concurrency 2, and each paid video is collected."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 4), out, concurrency=2, job_timeout=100)
    # Jobs of 400 ms; timed out at 100 ms, the grace over at ~220 ms: two slots must wait.
    config = mock_config(latency=400.0, latency_jitter=0.0, fault_cancel_ignored=1.0)
    timing = dataclasses.replace(FAST, stuck_after=20.0)
    async with MockServer(config) as server:
        result = await Runner(plan, connection(server), timing=timing).run()
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert once_each_stats(stats)
    [lane] = stats["keys"].values()
    assert lane["max_in_flight"] == 2
    assert {job.error_type for job in rows(out)} == {"completed_after_cancel"}


async def test_past_the_ceiling_a_stuck_job_gives_its_slot_back_saying_so(
    tmp_path: Path,
) -> None:
    """A job that outlives the ceiling (a multiple of --job-timeout) frees its slot: the
    other jobs go on, the stuck one stays cancelling for the next run, and a note says how
    many may still be running and billed."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 3), out, concurrency=1, job_timeout=40)
    config = mock_config(latency=100_000.0, fault_cancel_ignored=1.0)
    timing = dataclasses.replace(FAST, stuck_after=5.0)
    async with MockServer(config) as server:
        runner = Runner(plan, connection(server), timing=timing)
        result = await runner.run()
        stats = server.stats()
    assert result.outcome == "failed"
    assert {job.status for job in rows(out)} == {S.CANCELLING}
    assert sum(stats["submits_by_payload"].values()) == 3
    assert any(
        "may be running and billed at the provider" in note for note in runner.reporter.notes
    )
    for job in rows(out):
        assert job.error is not None
        assert "its slot went to another job; the next run follows it" in job.error
