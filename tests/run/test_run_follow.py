"""Following jobs through a proxy that has only a result route (quickrouter's documented shape)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from runs import (
    FAST,
    KEY,
    assert_all_verified,
    cli_args,
    connection,
    mock_config,
    plan_for,
    prompts,
    rows,
    run,
    subprocess_env,
)
from test_run_resume import finish, start, submitted, until

from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer
from batchgen.mock.stats import payload_digest
from batchgen.run.progress import Reporter
from batchgen.run.runner import Runner

S = JobStatus
SWITCHED = "which its result route knows: following jobs by their result"


def status_404s(stats: dict[str, Any]) -> int:
    return int(stats["requests"].get("status", {}).get("404", 0))


def submitted_once(stats: dict[str, Any]) -> bool:
    return all(n == 1 for n in stats["submits_by_payload"].values())


async def test_auto_switches_to_result_polling_once(tmp_path: Path) -> None:
    """Against a result-only proxy, auto follows every job to done: the first status 404s
    switch the run to result polling, said once, and no job fails as unknown."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 30), out)
    reporter = Reporter()
    async with MockServer(mock_config(status_route=False)) as server:
        result = await run(plan, server, follow="auto", reporter=reporter)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert submitted_once(stats)
    assert 1 <= status_404s(stats) <= plan.settings.concurrency  # only looks before the switch
    assert set(stats["requests"]["status"]) == {"404"}
    assert [note for note in reporter.notes if SWITCHED in note] == [reporter.notes[-1]]
    assert len([n for n in reporter.notes if SWITCHED in n]) == 1
    assert "stream" not in stats["requests"]


async def test_result_mode_with_faults(tmp_path: Path) -> None:
    """Result polling rides out 429s, ingress 503s and runner errors like status polling does:
    every job done, none failed as unknown, runner errors resubmitted."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 40), out, max_attempts=8)
    faults = {
        "fault_429": 0.1,
        "fault_429_retry_after": 0.05,
        "fault_503": 0.1,
        "fault_runner_disconnected": 0.15,
        "fault_request_timeout": 0.05,
    }
    async with MockServer(mock_config(status_route=False, seed=5, **faults)) as server:
        result = await run(plan, server, follow="auto")
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert stats["requests"]["result"].get("503", 0) > 0  # runner errors and ingress 503s
    assert stats["requests"]["result"].get("429", 0) > 0
    assert all(job.error_type != "unknown_request" for job in rows(out))
    assert any(job.attempts > 1 for job in rows(out))  # runner errors were submitted again


async def test_stream_mode_falls_back_to_result_polling(tmp_path: Path) -> None:
    """``--poll stream`` through a proxy without a stream route still ends with every job done."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 12), out, poll="stream")
    async with MockServer(mock_config(status_route=False)) as server:
        result = await run(plan, server, follow="auto")
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert submitted_once(stats)


async def test_forced_result_mode_never_looks_at_status(tmp_path: Path) -> None:
    """``follow=result`` on a server that has a status route still uses only the result route,
    and reads each job's result exactly once after it is done."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 10), out)
    async with MockServer(mock_config()) as server:
        result = await run(plan, server, follow="result")
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert "status" not in stats["requests"]
    assert stats["requests"]["result"].get("200") == 10


async def test_resume_in_result_mode(tmp_path: Path) -> None:
    """A run stopped with jobs in flight at a result-only proxy resumes by request id: only a job
    whose POST was cut off is sent again (flagged), and the resumed run never looks at status."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 24), out)
    async with MockServer(mock_config(status_route=False, latency=60.0)) as server:
        runner = Runner(plan, connection(server, follow="auto"), timing=FAST)
        task = asyncio.create_task(runner.run())
        await until(lambda: submitted(server) >= 10)
        runner.abort()
        await task
        in_flight = [job for job in rows(out) if job.status in (S.QUEUED, S.RUNNING)]
        assert in_flight
        looked = status_404s(server.stats())
        result = await run(plan, server, follow="result")
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    submits = stats["submits_by_payload"]
    for job in rows(out):
        assert submits[payload_digest(job.payload)] == 1 or job.possibly_duplicate
    assert status_404s(stats) == looked
    assert {job.request_id for job in in_flight} <= {job.request_id for job in rows(out)}


async def test_follow_status_fails_clearly_then_auto_resumes(tmp_path: Path) -> None:
    """``--follow status`` through a result-only proxy stops the run at its first look (exit 3,
    saying why and what to use) with every job still in flight, not failed; ``--follow auto``
    then finishes them without submitting any again."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 6)
    # Every POST is answered long before the first look (expected latency: 0.3 s real).
    async with MockServer(mock_config(status_route=False, latency=300.0)) as server:
        args = cli_args(source, out, server.base_url, expect_latency=300)
        code, err = await finish(await start([*args, "--follow", "status"]))
        assert code == 3, err
        assert "has no status route" in err
        assert "--follow result" in err
        assert not [job for job in rows(out) if job.status is S.FAILED]
        first = server.stats()["submits_by_payload"]

        code, err = await finish(await start([*args, "--follow", "auto"]))
        stats = server.stats()
    assert code == 0, err
    assert stats["submits_by_payload"] == first
    assert_all_verified(out, stats)
    settings = json.loads((out / "run.json").read_text(encoding="utf-8"))["settings"]
    assert settings["follow"] == "auto"


async def test_default_provider_through_a_result_only_proxy(tmp_path: Path) -> None:
    """``--base-url`` at a result-only proxy with the default provider (fal, no --provider):
    every job done and submitted once, the switch to result polling said once."""
    out = tmp_path / "out"
    async with MockServer(mock_config(status_route=False)) as server:
        args = cli_args(prompts(tmp_path, 12), out, server.base_url)
        at = args.index("--provider")
        del args[at : at + 2]
        proc = await asyncio.create_subprocess_exec(
            *args,
            env=subprocess_env(FAL_KEY=KEY),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        code, err = await finish(proc)
        stats = server.stats()
    assert code == 0, err
    assert_all_verified(out, stats)
    assert submitted_once(stats)
    assert err.count(SWITCHED) == 1
    assert (
        json.loads((out / "run.json").read_text(encoding="utf-8"))["settings"]["provider"] == "fal"
    )
