"""A refused key (401/403/402, exhausted balance) stops the whole run at once: exit 3."""

from __future__ import annotations

from pathlib import Path

from runs import cli_args, mock_config, plan_for, prompts, rows, run
from test_run_resume import finish, start, submitted, until

from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer

S = JobStatus


async def test_bad_key_stops_before_anything_is_created(tmp_path: Path) -> None:
    """With a refused key no job is created, at most one submit per slot is tried, and every
    job stays pending."""
    out = tmp_path / "out"
    async with MockServer(mock_config()) as server:
        result = await run(
            plan_for(prompts(tmp_path, 30), out, concurrency=4), server, key="wrong-key"
        )
        stats = server.stats()
    assert result.outcome == "fatal"
    assert "API key was refused" in result.message
    assert stats["submits_by_payload"] == {}
    assert sum(stats["requests"]["submit"].values()) <= 4
    assert {job.status for job in rows(out)} <= {S.PENDING, S.SUBMITTING}
    assert sum(1 for job in rows(out) if job.status is S.PENDING) >= 26


async def test_key_revoked_mid_run_exits_3_and_submits_nothing_more(tmp_path: Path) -> None:
    """A key refused mid-run (polls answer 401) stops the run with exit 3 and a clear
    message; no job is created after that."""
    out = tmp_path / "out"
    async with MockServer(mock_config(latency=200.0)) as server:
        proc = await start(cli_args(prompts(tmp_path, 40), out, server.base_url, concurrency=4))
        await until(lambda: submitted(server) >= 4)
        server.config.api_keys = ("someone-else",)
        created = submitted(server)
        code, err = await finish(proc)
        stats = server.stats()
    assert code == 3, err
    assert "fatal: the API key was refused (401" in err
    assert submitted(server) == created
    assert stats["requests"]["submit"].get("401", 0) <= 4
    assert all(job.status is not S.DONE or job.sha256 for job in rows(out))
