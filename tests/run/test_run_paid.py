"""A paid video is fetched again, never generated again: file host outages and gone files."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from runs import FAST, assert_all_verified, connection, mock_config, plan_for, prompts, rows, run
from test_run_lost_ledger import lose_ledger
from test_run_resume import until

from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
from batchgen.mock import MockServer
from batchgen.run.runner import Runner

S = JobStatus


def file_503s(server: MockServer) -> int:
    return int(server.stats()["faults"].get("file_503", 0))


def downloading(out: Path) -> int:
    if not (out / "batchgen.db").exists():
        return 0
    return sum(job.status is S.DOWNLOADING for job in rows(out))


def submits(stats: dict[str, Any]) -> list[int]:
    return sorted(stats["submits_by_payload"].values())


async def test_file_host_outage_is_waited_out(tmp_path: Path) -> None:
    """A file host that answers 503 to every download for a while (a CDN outage) fails no row:
    downloads back off until it is back, and every job is submitted once."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 8), out)
    async with MockServer(mock_config(fault_file_503=1.0)) as server:
        task = asyncio.create_task(run(plan, server))
        await until(lambda: file_503s(server) >= 16)
        server.config.fault_file_503 = 0.0
        result = await task
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert submits(stats) == [1] * 8
    assert {job.attempts for job in rows(out)} == {1}


async def test_failed_downloads_are_fetched_again_not_generated_again(tmp_path: Path) -> None:
    """Rows whose download gave up keep their video URL; a plain resume fetches them from it
    and pays nothing more; --retry-failed does the same."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 6), out)
    async with MockServer(mock_config(fault_file_503=1.0)) as server:
        result = await run(plan, server)
        assert result.outcome == "failed"
        failed = rows(out)
        assert {(job.status, job.error_type) for job in failed} == {(S.FAILED, "download")}
        assert all(job.video_url for job in failed)
        server.config.fault_file_503 = 0.0
        half = {job.key for job in failed[:3]}
        with Ledger.in_folder(out) as ledger:  # half of them as an older batchgen left them
            for key in half:
                ledger.update(key, error_type="disk")
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert submits(stats) == [1] * 6
    assert {job.request_id for job in failed} == {job.request_id for job in rows(out)}


async def test_gone_video_is_generated_again_only_when_asked(tmp_path: Path) -> None:
    """A video the file host says is gone (404 three times) fails its row saying so; a plain
    resume leaves it; --retry-failed generates it again, and attempts count both payments."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 3), out)
    async with MockServer(mock_config(file_ttl=0.0)) as server:
        result = await run(plan, server)
        assert result.outcome == "failed"
        first = rows(out)
        for job in first:
            assert (job.status, job.error_type) == (S.FAILED, "video_gone")
            assert job.error is not None
            assert "gone from the file host" in job.error
            assert "--retry-failed" in job.error
        server.config.file_ttl = None
        result = await run(plan, server)
        assert result.outcome == "failed"
        assert submits(server.stats()) == [1] * 3
        result = await run(plan, server, retry_failed=True)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert submits(stats) == [2] * 3
    with Ledger.in_folder(out, readonly=True) as ledger:
        for old in first:
            job = ledger.get(old.key)
            assert (job.status, job.attempts, job.retry_from) == (S.DONE, 2, 1)
            assert ledger.requests(job.key) == [old.request_id, job.request_id]


async def test_interrupted_outage_resumes_from_the_url(tmp_path: Path) -> None:
    """A run stopped during a file host outage leaves its jobs downloading; the next run, the
    host back, fetches them without a single new submit."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 5), out)
    async with MockServer(mock_config(fault_file_503=1.0)) as server:
        runner = Runner(plan, connection(server), timing=FAST)
        task = asyncio.create_task(runner.run())
        await until(lambda: file_503s(server) >= 5 and downloading(out) == 5)
        runner.abort()
        await task
        server.config.fault_file_503 = 0.0
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert submits(stats) == [1] * 5


async def test_failed_downloads_are_fetched_again_after_a_lost_ledger(tmp_path: Path) -> None:
    """A ledger rebuilt from the manifest keeps each failed download's URL; the next run,
    --retry-failed too, fetches those videos from it and generates none again (chaos seed 6
    paid twice for 39 jobs here)."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 6), out)
    async with MockServer(mock_config(fault_file_503=1.0)) as server:
        assert (await run(plan, server)).outcome == "failed"
        failed = rows(out)
        lose_ledger(out)
        server.config.fault_file_503 = 0.0
        result = await run(plan, server, retry_failed=True)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert submits(stats) == [1] * 6
    assert {job.request_id for job in failed} == {job.request_id for job in rows(out)}
