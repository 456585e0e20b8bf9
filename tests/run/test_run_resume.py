"""Resume: kill -9 at any instant loses nothing; a rerun skips, polls or submits as due."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from runs import (
    assert_all_verified,
    cli_args,
    mock_config,
    plan_for,
    prompts,
    rows,
    run,
    subprocess_env,
)

from batchgen.cli import cli
from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
from batchgen.mock import MockServer
from batchgen.mock.stats import payload_digest


async def until(check: Callable[[], bool], limit: float = 30.0) -> None:
    """Wait (bounded) until ``check()`` holds, looking every 5 ms."""
    for _ in range(int(limit / 0.005)):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached in time")


async def start(args: list[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *args, env=subprocess_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def submitted(server: MockServer) -> int:
    return sum(server.stats()["submits_by_payload"].values())


def downloaded(server: MockServer) -> int:
    return len(server.stats()["files"])


async def test_kill_9_then_resume_loses_nothing(tmp_path: Path) -> None:
    """SIGKILL mid-submit and mid-download, then rerun: every job done and verified, and only
    jobs whose POST was in flight at a kill may have been submitted twice."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 60)
    async with MockServer(mock_config(latency=100.0, fault_truncate=0.2)) as server:
        args = cli_args(source, out, server.base_url)
        proc = await start(args)
        await until(lambda: submitted(server) >= 12)
        proc.send_signal(signal.SIGKILL)
        assert (await finish(proc))[0] == -signal.SIGKILL

        proc = await start(args)
        await until(lambda: downloaded(server) >= 35)
        proc.send_signal(signal.SIGKILL)
        await finish(proc)

        code, err = await finish(await start(args))
        stats = server.stats()
    assert code == 0, err
    assert_all_verified(out, stats)
    submits = stats["submits_by_payload"]
    assert len(submits) == 60
    for job in rows(out):
        sent = submits[payload_digest(job.payload)]
        assert sent <= job.attempts
        if not job.possibly_duplicate:
            assert sent == 1, job


async def test_submitted_jobs_are_polled_not_resubmitted(tmp_path: Path) -> None:
    """After a stop, jobs that have a request id are polled by it, never sent again."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 20)
    async with MockServer(mock_config(latency=200.0)) as server:
        proc = await start(cli_args(source, out, server.base_url, concurrency=20))
        await until(lambda: submitted(server) == 20)
        await until(lambda: all(j.request_id for j in rows(out)))
        proc.send_signal(signal.SIGKILL)
        await finish(proc)
        result = await run(plan_for(source, out, concurrency=20), server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert sorted(stats["submits_by_payload"].values()) == [1] * 20
    assert_all_verified(out, stats)


async def test_temp_files_of_a_killed_write_are_removed_at_start(
    server: MockServer, tmp_path: Path
) -> None:
    """The .tmp files a run killed mid-write left (manifest, run.json) are gone after the next
    run starts; the folder holds only what a finished run writes."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 2), out)
    await run(plan, server)
    old = time.time() - 3600
    for name in (
        ".manifest.csv.1a2b3c4d.tmp",
        ".manifest.jsonl.5e6f7a8b.tmp",
        ".run.json.9c0d1e2f.tmp",
    ):
        (out / name).write_text("half a file")
        os.utime(out / name, (old, old))
    result = await run(plan, server)
    assert result.outcome == "done"
    assert not list(out.glob(".*.tmp"))
    assert "removed 3 temp file(s)" in (out / "batchgen.log").read_text(encoding="utf-8")


async def test_submitting_left_by_a_crash_is_uncertain(tmp_path: Path) -> None:
    """A job left 'submitting' is treated as uncertain: sent again, flagged possibly_duplicate
    (or failed with --on-uncertain-submit fail)."""
    source = prompts(tmp_path, 2)
    results: dict[str, Any] = {}
    for policy in ("retry", "fail"):
        out = tmp_path / policy
        plan = plan_for(source, out, on_uncertain_submit=policy)
        with Ledger.in_folder(out) as ledger:
            ledger.sync(plan.jobs, plan.endpoint.id)
            ledger.transition(plan.jobs[0].key, JobStatus.SUBMITTING, attempts=1)
        async with MockServer(mock_config()) as server:
            results[policy] = await run(plan, server)
        first = rows(out)[0]
        if policy == "retry":
            assert first.status == "done"
            assert first.possibly_duplicate
            assert first.attempts == 2
        else:
            assert first.status == "failed"
            assert first.error_type == "submit_uncertain"
    assert results["retry"].outcome == "done"
    assert results["fail"].outcome == "failed"


async def test_damaged_video_is_downloaded_again(tmp_path: Path) -> None:
    """On resume, a done job whose file is missing or cut short is downloaded again."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 3)
    async with MockServer(mock_config()) as server:
        await run(plan_for(source, out), server)
        first, second = rows(out)[:2]
        assert first.video_path is not None
        assert second.video_path is not None
        (out / first.video_path).unlink()
        damaged = out / second.video_path
        damaged.write_bytes(damaged.read_bytes()[:1000])
        result = await run(plan_for(source, out), server)
        stats = server.stats()
    assert result.outcome == "done"
    assert_all_verified(out, stats)
    assert sum(stats["submits_by_payload"].values()) == 3


async def test_changed_input_adds_new_keys_and_reports_the_rest(tmp_path: Path) -> None:
    """Input edited between runs: new rows run; rows no longer there are left and reported."""
    out = tmp_path / "out"
    async with MockServer(mock_config()) as server:
        await run(plan_for(prompts(tmp_path, 4), out), server)
        result = await run(plan_for(prompts(tmp_path, 4, start=2), out), server)
    assert result.outcome == "done"
    assert len(result.orphaned) == 2
    jobs = rows(out)
    assert len(jobs) == 6
    assert all(job.status == "done" for job in jobs)
    assert sum(1 for job in jobs if not job.in_input) == 2


async def test_out_alone_resumes_the_stored_run(tmp_path: Path) -> None:
    """`batchgen run --out DIR` alone reruns what that folder was given."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 3)
    async with MockServer(mock_config()) as server:
        args = cli_args(source, out, server.base_url)
        proc = await start(args)
        await until(lambda: submitted(server) >= 1)
        proc.send_signal(signal.SIGKILL)
        await finish(proc)
        resume = ["run", "--out", str(out), "--progress", "none", "--time-scale", "0.001"]
        result = await asyncio.to_thread(CliRunner().invoke, cli, resume, env=subprocess_env())
        stats = server.stats()
    assert result.exit_code == 0, result.output
    assert_all_verified(out, stats)


def test_out_alone_without_a_run_is_a_usage_error(tmp_path: Path) -> None:
    """`batchgen run --out DIR` on a folder with no earlier run exits 2 with a message."""
    result = CliRunner().invoke(cli, ["run", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "no earlier run" in result.output
