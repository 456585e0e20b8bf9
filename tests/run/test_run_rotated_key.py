"""A key rotated mid-batch: the new key in the same variable finishes the folder, following the
old key's jobs, fetching every paid video, running the rows never sent, paying nothing twice."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from runs import FAST, connection, mock_config, plan_for, prompts, rows, run, subprocess_env
from test_run_resume import until

from batchgen.api.providers import Connection
from batchgen.cli import cli
from batchgen.ledger.states import JobStatus
from batchgen.mock import MockConfig, MockServer
from batchgen.mock.stats import payload_digest
from batchgen.plan.build import Plan
from batchgen.run.progress import Reporter
from batchgen.run.runner import Runner

S = JobStatus
OLD, NEW = "key-before-rotation", "key-after-rotation"
AT_PROVIDER = (S.QUEUED, S.RUNNING, S.COMPLETED)


def key_id(key: str) -> str:
    return f"BATCHGEN_MOCK_KEY:{hashlib.sha256(key.encode()).hexdigest()[:8]}"


async def stop_mid_batch(plan: Plan, server: MockServer, out: Path) -> None:
    """Run ``plan`` with OLD during a CDN outage until two videos are paid (their URLs
    known, not downloaded) and two jobs are at the provider; then stop it at once."""
    server.config.fault_file_503 = 1.0
    runner = Runner(plan, connection(server, OLD), timing=FAST)
    task = asyncio.create_task(runner.run())

    def far_enough() -> bool:
        jobs = rows(out) if (out / "batchgen.db").exists() else []
        paid = sum(job.status is S.DOWNLOADING and job.video_url is not None for job in jobs)
        return paid >= 2 and sum(job.status in AT_PROVIDER for job in jobs) >= 2

    await until(far_enough)
    runner.abort()
    await task
    server.config.fault_file_503 = 0.0


def logged(server: MockServer, key: str) -> Connection:
    """The connection, with the emulator's request log (as fal has): a submit whose answer
    was lost when a run stopped is looked for there before it is sent again."""
    return replace(connection(server, key), platform_url=server.base_url)


def sent_twice_only_flagged(stats: dict[str, Any], out: Path) -> None:
    """Every payload the emulator saw more than once is a row flagged possibly_duplicate: a
    submit whose answer was lost as the run stopped, which this key could not look up."""
    flagged = {payload_digest(job.payload): job.possibly_duplicate for job in rows(out)}
    again = [digest for digest, n in stats["submits_by_payload"].items() if n > 1]
    assert all(flagged[digest] for digest in again), again
    assert max(stats["submits_by_payload"].values()) <= 2


def config() -> MockConfig:
    return mock_config(api_keys=(OLD,), max_in_progress=2, latency=300.0, latency_jitter=0.5)


async def test_a_rotated_key_finishes_the_folder(tmp_path: Path) -> None:
    """OLD revoked, NEW (same account) in the same variable: the resume follows OLD's jobs
    with NEW, downloads the paid videos, submits the unsent rows with NEW: every row done,
    each payload submitted once."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 10), out, concurrency=4)
    async with MockServer(config()) as server:
        await stop_mid_batch(plan, server, out)
        before = rows(out)
        unsent = {job.key for job in before if job.status is S.PENDING}
        assert unsent
        server.config.api_keys = (NEW,)  # OLD is revoked: 401 for it from now on
        reporter = Reporter()
        result = await Runner(plan, logged(server, NEW), timing=FAST, reporter=reporter).run()
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert set(stats["submits_by_payload"].values()) == {1}
    assert sum(stats["foreign_key_requests"].values()) >= 2
    assert any("submitted with a key this run does not hold" in n for n in reporter.notes)
    after = {job.key: job for job in rows(out)}
    assert {job.status for job in after.values()} == {S.DONE}
    assert {after[key].key_id for key in unsent} == {key_id(NEW)}
    sent_before = {job.key for job in before if job.key not in unsent}
    assert {after[key].key_id for key in sent_before} == {key_id(OLD)}


@pytest.mark.parametrize("answer", ["refuse", "unknown"])
async def test_jobs_another_account_will_not_show_are_left_not_paid_again(
    tmp_path: Path, answer: str
) -> None:
    """NEW is another account's key, so the provider answers 403 (or 404) for OLD's jobs:
    those jobs stay in flight (neither failed nor sent again, NEW not retired), the paid
    videos are fetched, the unsent rows done with NEW; the advice names OLD's key; once
    OLD works again a resume fetches the rest, each payload submitted once in all."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 10), out, concurrency=4)
    async with MockServer(config()) as server:
        await stop_mid_batch(plan, server, out)
        before = {job.key: job for job in rows(out)}
        server.config.api_keys = (NEW,)
        server.config.foreign_keys = answer
        result = await Runner(plan, logged(server, NEW), timing=FAST).run()
        jobs = {job.key: job for job in rows(out)}
        left = [job for job in jobs.values() if job.status is not S.DONE]
        assert result.outcome == "failed", result.message
        assert left
        assert all(job.key_id == key_id(OLD) and job.status in AT_PROVIDER for job in left)
        assert all(before[job.key].status in AT_PROVIDER for job in left)
        paid = [key for key, job in before.items() if job.status is S.DOWNLOADING]
        assert all(jobs[key].status is S.DONE for key in paid)
        assert f"{len(left)} left in flight (submitted with another key" in result.message
        advice = [step for step in result.next_steps if "may be paid" in step]
        assert len(advice) == 1
        assert key_id(OLD) in advice[0]
        assert OLD not in advice[0]

        server.config.api_keys = (OLD, NEW)
        again = await Runner(plan, logged(server, OLD), timing=FAST).run()
        stats = server.stats()
    assert again.outcome == "done", again.message
    sent_twice_only_flagged(stats, out)  # NEW, another account's, cannot read OLD's log


async def test_cancel_with_a_rotated_key_leaves_a_folder_that_runs_again(tmp_path: Path) -> None:
    """batchgen cancel with NEW (another account's) cannot cancel OLD's jobs: it says so per
    job, stops nothing else, and a run with NEW then finishes what NEW can, sending nothing
    twice."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 10), out, concurrency=4)
    async with MockServer(config()) as server:
        await stop_mid_batch(plan, server, out)
        server.config.api_keys = (NEW,)
        server.config.foreign_keys = "refuse"
        args = ["cancel", str(out), "--base-url", server.base_url]
        env = subprocess_env(BATCHGEN_MOCK_KEY=NEW)
        cancelled = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
        assert "submitted with another key" in cancelled.output, cancelled.output
        assert "Traceback" not in cancelled.output
        result = await run(plan, server, key=NEW)
        stats = server.stats()
    assert result.outcome == "failed", result.message
    sent_twice_only_flagged(stats, out)
    assert {job.status for job in rows(out)} <= {S.DONE, S.CANCELLED, *AT_PROVIDER}
