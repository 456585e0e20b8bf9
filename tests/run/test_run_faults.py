"""The run engine under every fault the emulator injects: transient ones end done."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from runs import FAST, assert_all_verified, manifest, mock_config, plan_for, prompts, rows, run

from batchgen.mock import MockServer
from batchgen.mock.stats import payload_digest

EVERY_FAULT = {
    "fault_429": 0.1,
    "fault_429_retry_after": 0.05,
    "fault_503": 0.1,
    "fault_reset": 0.05,
    "fault_slow": 0.05,
    "fault_submit_drop": 0.05,
    "fault_runner_disconnected": 0.1,
    "fault_request_timeout": 0.05,
    "fault_truncate": 0.3,
}


async def test_every_transient_fault_ends_done(tmp_path: Path) -> None:
    """With every fault at a rate, every job ends done and verified; a payload is submitted
    more than once only after a transient job failure or a lost submit answer."""
    out = tmp_path / "out"
    async with MockServer(mock_config(**EVERY_FAULT)) as server:
        # About 1 submit in 4 fails here (a job fault, a lost answer, a reset): with 6 attempts
        # one of 60 jobs ran out in about 1 run in 30; with 10, about 1 in 10,000.
        result = await run(plan_for(prompts(tmp_path, 60), out, max_attempts=10), server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    faults = stats["faults"]
    for kind in ("429", "429_retry_after", "503", "reset", "slow", "submit_drop", "truncate"):
        assert faults.get(kind, 0) > 0, kind
    submits = stats["submits_by_payload"]
    jobs = rows(out)
    assert any(job.possibly_duplicate for job in jobs)
    assert any(job.attempts > 1 and not job.possibly_duplicate for job in jobs)
    for job in jobs:
        sent = submits[payload_digest(job.payload)]
        assert sent <= job.attempts
        if not job.possibly_duplicate:
            assert sent == job.attempts, job


async def test_possibly_duplicate_is_flagged_in_the_manifest(tmp_path: Path) -> None:
    """A submit whose answer was lost is sent again and its row says possibly_duplicate."""
    out = tmp_path / "out"
    async with MockServer(mock_config(fault_submit_drop=0.3)) as server:
        result = await run(plan_for(prompts(tmp_path, 20), out, max_attempts=8), server)
    assert result.outcome == "done", result.message
    flagged = [r for r in manifest(out) if r["possibly_duplicate"]]
    assert flagged
    assert all(r["status"] == "done" for r in flagged)


async def test_uncertain_submit_fails_when_asked(tmp_path: Path) -> None:
    """--on-uncertain-submit fail: a lost submit answer fails the job; nothing is resent."""
    out = tmp_path / "out"
    async with MockServer(mock_config(fault_submit_drop=1.0)) as server:
        result = await run(plan_for(prompts(tmp_path, 4), out, on_uncertain_submit="fail"), server)
        stats = server.stats()
    assert result.outcome == "failed"
    assert sorted(stats["submits_by_payload"].values()) == [1, 1, 1, 1]
    for job in rows(out):
        assert job.status == "failed"
        assert job.error_type == "submit_uncertain"
        assert "--on-uncertain-submit fail" in (job.error or "")


async def test_lost_answers_to_the_last_attempt_are_retried_by_retry_failed(
    tmp_path: Path,
) -> None:
    """Every submit answer lost until --max-attempts: the job fails as submit_uncertain (a
    job may exist), not as a refusal, so a plain --retry-failed sends it again, flagged."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 2)
    async with MockServer(mock_config(fault_submit_drop=1.0)) as server:
        result = await run(plan_for(source, out, max_attempts=2, reconcile="off"), server)
        assert result.outcome == "failed"
        assert {job.error_type for job in rows(out)} == {"submit_uncertain"}
        assert any("--retry-failed (submits" in step for step in result.next_steps)
        server.config.fault_submit_drop = 0.0
        again = await run(plan_for(source, out, reconcile="off"), server, retry_failed=True)
    assert again.outcome == "done", again.message
    assert all(job.possibly_duplicate for job in rows(out))


async def test_content_policy_fails_with_the_providers_message(tmp_path: Path) -> None:
    """A refused prompt fails with the provider's own message; it is not resubmitted."""
    out = tmp_path / "out"
    async with MockServer(mock_config(policy_word="forbidden")) as server:
        result = await run(plan_for(prompts(tmp_path, 10, word="forbidden"), out), server)
        stats = server.stats()
    assert result.outcome == "failed"
    failed = [job for job in rows(out) if job.status == "failed"]
    assert len(failed) == 2
    for job in failed:
        assert "forbidden" in job.payload["prompt"]
        assert "result answered 422" in (job.error or "")
        assert stats["submits_by_payload"][payload_digest(job.payload)] == 1
    assert sum(1 for job in rows(out) if job.status == "done") == 8


async def test_transient_failures_stop_at_max_attempts(tmp_path: Path) -> None:
    """A job that keeps failing transiently is submitted --max-attempts times, then fails."""
    out = tmp_path / "out"
    async with MockServer(mock_config(fault_runner_disconnected=1.0)) as server:
        result = await run(plan_for(prompts(tmp_path, 3), out, max_attempts=2), server)
        stats = server.stats()
    assert result.outcome == "failed"
    assert sorted(stats["submits_by_payload"].values()) == [2, 2, 2]
    for job in rows(out):
        assert job.status == "failed"
        assert job.error_type == "runner_disconnected"
        assert job.attempts == 2


async def test_job_timeout_cancels_and_fails(tmp_path: Path) -> None:
    """A job past --job-timeout is cancelled at the provider and fails with 'timeout'."""
    out = tmp_path / "out"
    async with MockServer(mock_config(latency=100_000)) as server:
        result = await run(plan_for(prompts(tmp_path, 3), out, job_timeout=50), server)
        stats = server.stats()
    assert result.outcome == "failed"
    assert sum(stats["requests"]["cancel"].values()) == 3
    for job in rows(out):
        assert job.status == "failed"
        assert job.error_type == "timeout"
    assert not (out / "videos").exists() or not list((out / "videos").iterdir())


async def test_broken_or_silent_streams_fall_back_to_polling(tmp_path: Path) -> None:
    """--poll stream: streams that are reset, refused or silent too long give way to polling,
    and every job still ends done."""
    out = tmp_path / "out"
    quiet = dataclasses.replace(FAST, stream_silence=60.0)  # 60 ms; keep-alives come every 2 s
    config = mock_config(latency=300.0, keepalive=2000.0, fault_reset=0.1, fault_503=0.1)
    async with MockServer(config) as server:
        plan = plan_for(prompts(tmp_path, 12), out, poll="stream", concurrency=12)
        result = await run(plan, server, timing=quiet)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert sum(stats["requests"]["stream"].values()) >= 12
    assert sum(stats["requests"]["status"].values()) >= 12
