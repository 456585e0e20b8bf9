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


async def test_downloads_out_of_patience_are_left_for_a_plain_resume(tmp_path: Path) -> None:
    """A file host down for longer than --download-patience leaves its rows downloading (not
    failed), their URL kept, saying so; a plain resume fetches them and pays nothing more,
    also those an older batchgen left failed (download, disk)."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 6), out, download_patience="100s")
    async with MockServer(mock_config(fault_file_503=1.0)) as server:
        result = await run(plan, server)
        assert result.outcome == "failed"
        assert "6 left to download" in result.message
        assert any("paying nothing again" in step for step in result.next_steps)
        left = rows(out)
        assert {(job.status, job.error_type) for job in left} == {(S.DOWNLOADING, "download")}
        for job in left:
            assert job.video_url
            assert job.error is not None
            assert "did not answer for 100 s" in job.error
            assert "nothing is paid again" in job.error
        server.config.fault_file_503 = 0.0
        with Ledger.in_folder(out) as ledger:  # as an older batchgen left them
            for job, error_type in zip(left[:2], ("download", "disk"), strict=True):
                ledger.update(job.key, status=S.FAILED, error_type=error_type)
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert submits(stats) == [1] * 6
    assert {job.request_id for job in left} == {job.request_id for job in rows(out)}
    assert {(job.error, job.error_type) for job in rows(out)} == {(None, None)}


async def test_gone_video_is_generated_again_only_when_asked(tmp_path: Path) -> None:
    """A video the file host says is gone (404 three times, the result read again for a fresh
    link in between) fails its row saying so, and that --retry-failed pays again, at its
    price; a plain resume leaves it; --retry-failed generates it again, and attempts count
    both payments."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 3), out)
    async with MockServer(mock_config(file_ttl=0.0)) as server:
        result = await run(plan, server)
        assert result.outcome == "failed"
        assert server.stats()["requests"]["result"]["200"] == 3 * 3  # once, then 2 afresh
        first = rows(out)
        for job in first:
            assert (job.status, job.error_type) == (S.FAILED, "video_gone")
            assert job.error is not None
            assert "gone from the file host" in job.error
            assert f"--retry-failed generates it again, paid again (${job.cost_usd:,.2f})" in (
                job.error
            )
        total = sum(job.cost_usd or 0 for job in first)
        assert any(f"paid again (${total:,.2f})" in step for step in result.next_steps)
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
