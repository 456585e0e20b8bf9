"""run --retry-failed / --retry-cancelled: only those jobs run again; the rest stay as they are."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner
from runs import cli_args, mock_config, plan_for, prompts, rows, run, subprocess_env

from batchgen.cli import cli
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.ledger.store import Ledger
from batchgen.mock import MockServer
from batchgen.mock.stats import payload_digest
from batchgen.plan.build import Plan

S = JobStatus
WORD = "forbidden"  # in prompts 0 and 5 of 10: the emulator refuses them (422)


async def first_run(tmp_path: Path, server: MockServer) -> tuple[Plan, dict[str, JobRow]]:
    """10 jobs: 2 refused by the content policy (failed), 2 cancelled before submit, 6 done."""
    plan = plan_for(prompts(tmp_path, 10, word=WORD), tmp_path / "out")
    with Ledger.in_folder(plan.output_dir) as ledger:
        ledger.sync(plan.jobs, plan.endpoint.id)
        for job in plan.jobs[1:3]:  # as `batchgen cancel --keys K` does for pending jobs
            ledger.transition(
                job.key,
                S.CANCELLED,
                error="cancelled by user before submit",
                error_type="cancelled",
            )
    result = await run(plan, server)
    assert result.outcome == "failed"
    assert "2 failed; 2 cancelled" in result.message
    before = {job.key: job for job in rows(Path(plan.output_dir))}
    statuses = [before[job.key].status for job in plan.jobs]
    F, C, D = S.FAILED, S.CANCELLED, S.DONE
    assert statuses == [F, C, C, D, D, F, D, D, D, D]
    return plan, before


def submits(server: MockServer, job: JobRow) -> int:
    count: int = server.stats()["submits_by_payload"].get(payload_digest(job.payload), 0)
    return count


def assert_untouched(job: JobRow, before: JobRow, server: MockServer) -> None:
    """Same state, request id, file hash and number of submits as after the first run."""
    assert (job.status, job.request_id, job.sha256, job.attempts) == (
        before.status,
        before.request_id,
        before.sha256,
        before.attempts,
    ), job
    assert submits(server, job) == (0 if before.request_id is None else 1)


async def test_resume_leaves_failed_and_cancelled_jobs(tmp_path: Path) -> None:
    """A plain rerun submits nothing: failed and cancelled jobs stay as they are."""
    async with MockServer(mock_config(policy_word=WORD)) as server:
        plan, before = await first_run(tmp_path, server)
        sent = sum(server.stats()["submits_by_payload"].values())
        result = await run(plan, server)
        assert sum(server.stats()["submits_by_payload"].values()) == sent == 8
        for job in rows(Path(plan.output_dir)):
            assert_untouched(job, before[job.key], server)
    assert result.outcome == "failed"


async def test_retry_failed_leaves_refusals_unless_all(tmp_path: Path) -> None:
    """Jobs refused by the content policy stay failed on `--retry-failed` (a new try would be
    refused, and billed, again), with a line saying `--retry-failed all` sends them."""
    async with MockServer(mock_config(policy_word=WORD)) as server:
        plan, before = await first_run(tmp_path, server)
        args = cli_args(Path(plan.input_path), Path(plan.output_dir), server.base_url)[3:]
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, [*args, "--retry-failed"], env=subprocess_env()
        )
        assert "2 failed job(s) were refused by the provider" in result.output
        # The next step, said after the final line: fix the rows, or send them all again.
        assert (
            "2 refused by the provider (validation, content policy): fix those rows, or "
            f"batchgen run --out {plan.output_dir} --retry-failed all" in result.output
        )
        assert result.exit_code == 1, result.output
        for job in rows(Path(plan.output_dir)):
            assert_untouched(job, before[job.key], server)


async def test_retry_failed_all_resubmits_only_failed_jobs(tmp_path: Path) -> None:
    """`run --retry-failed all` (the policy word gone): failed jobs get new request ids and
    end done, their attempts counting both payments (a fresh budget from retry_from); done
    and cancelled jobs are untouched."""
    async with MockServer(mock_config(policy_word=WORD)) as server:
        plan, before = await first_run(tmp_path, server)
        server.config.policy_word = None
        args = cli_args(Path(plan.input_path), Path(plan.output_dir), server.base_url)[3:]
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, [*args, "--retry-failed", "all"], env=subprocess_env()
        )
        assert "2 failed job(s) to run again" in result.output
        assert "8 of 10 done; 2 cancelled" in result.output
        assert result.exit_code == 1, result.output  # the cancelled ones are not done
        out = Path(plan.output_dir)
        with Ledger.in_folder(out, readonly=True) as ledger:
            for job in ledger.jobs():
                old = before[job.key]
                if old.status is not S.FAILED:
                    assert_untouched(job, old, server)
                    continue
                assert job.status is S.DONE, job
                assert job.request_id not in (None, old.request_id)
                assert ledger.requests(job.key) == [old.request_id, job.request_id]
                assert (job.attempts, job.retry_from) == (2, 1)
                assert (job.error, job.possibly_duplicate) == (None, False)
                assert submits(server, job) == 2
                assert job.video_path is not None
                assert (out / job.video_path).is_file()


async def test_retry_cancelled_resubmits_only_cancelled_jobs(tmp_path: Path) -> None:
    """`run --retry-cancelled`: cancelled jobs are submitted and end done; failed jobs (still
    refused) and done jobs are untouched."""
    async with MockServer(mock_config(policy_word=WORD)) as server:
        plan, before = await first_run(tmp_path, server)
        result = await run(plan, server, retry_cancelled=True)
        assert result.outcome == "failed"
        assert "8 of 10 done; 2 failed" in result.message
        for job in rows(Path(plan.output_dir)):
            old = before[job.key]
            if old.status is not S.CANCELLED:
                assert_untouched(job, old, server)
                continue
            assert job.status is S.DONE, job
            assert job.request_id is not None
            assert (job.attempts, submits(server, job)) == (1, 1)


async def test_retried_uncertain_submit_stays_flagged(tmp_path: Path) -> None:
    """A job failed as an uncertain submit (--on-uncertain-submit fail) is retried flagged
    possibly_duplicate: its first POST may have created a job."""
    source = prompts(tmp_path, 2)
    out = tmp_path / "out"
    async with MockServer(mock_config(fault_submit_drop=1.0)) as server:
        result = await run(plan_for(source, out, on_uncertain_submit="fail"), server)
        assert result.outcome == "failed"
        server.config.fault_submit_drop = 0.0
        plan = plan_for(source, out, on_uncertain_submit="fail")
        result = await run(plan, server, retry_failed=True)
    assert result.outcome == "done", result.message
    for job in rows(out):
        assert (job.status, job.possibly_duplicate, job.attempts) == (S.DONE, True, 2)
