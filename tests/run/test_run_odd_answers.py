"""Answers nobody expects, through a proxy in front of the emulator: a result nested 100,000
levels deep or 20 MB long, one request id for two submits, a refusal in a 200."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner
from oddproxy import odd
from runs import assert_all_verified, cli_args, mock_config, plan_for, prompts, rows, run
from scripted import scripted

from batchgen.cli import cli
from batchgen.ledger.states import JobStatus
from batchgen.ledger.unique_ids import DUPLICATE_REQUEST_ID
from batchgen.mock import MockServer

S = JobStatus


@pytest.mark.parametrize("habit", ["deep", "huge"])
async def test_a_result_too_deep_or_too_long_still_gives_its_video(
    tmp_path: Path, habit: str
) -> None:
    """A result holding a debug object 100,000 levels deep, or a 20 MB logs list, before the
    video: no RecursionError, every video fetched and verified, each job submitted once; the
    ledger keeps a bounded copy of what was left out."""
    out = tmp_path / "out"
    async with (
        MockServer(mock_config()) as server,
        aiohttp.ClientSession() as session,
        scripted(odd(server.base_url, session, habit)) as proxy,
    ):
        result = await run(plan_for(prompts(tmp_path, 3), out, concurrency=3), proxy.url)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert set(stats["submits_by_payload"].values()) == {1}
    assert result.spent_usd == pytest.approx(sum(job.cost_usd or 0.0 for job in rows(out)))
    log = (out / "batchgen.log").read_text()
    assert log.count("part(s) left out (too deep or too long)") == 3
    assert (out / "batchgen.db").stat().st_size < 5_000_000


async def test_one_request_id_for_two_submits_is_flagged_never_two_videos(
    tmp_path: Path,
) -> None:
    """A proxy that answers every 2nd submit with the previous submit's request id: the
    ledger holds each id for one job; the second row fails as a provider fault naming the
    first; no two rows share a request id or a video; --retry-failed sends it again."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 4)
    async with (
        MockServer(mock_config()) as server,
        aiohttp.ClientSession() as session,
        scripted(odd(server.base_url, session, "repeat")) as proxy,
    ):
        result = await run(plan_for(source, out, concurrency=1), proxy.url)
        jobs = rows(out)
        flagged = [job for job in jobs if job.status is S.FAILED]
        done = [job for job in jobs if job.status is S.DONE]
        assert result.outcome == "failed", result.message
        assert len(flagged) == 2
        assert len(done) == 2
        assert {job.error_type for job in flagged} == {DUPLICATE_REQUEST_ID}
        ids = [job.request_id for job in done]
        assert len(set(ids)) == 2
        assert all(job.request_id is None for job in flagged)
        videos = {hashlib.sha256((out / str(job.video_path)).read_bytes()).digest() for job in done}
        assert len(videos) == 2
        owners = {job.row for job in done}
        for job in flagged:
            assert "a provider fault" in str(job.error)
            assert any(f"row {row} " in str(job.error) for row in owners)
        assert any("--retry-failed" in step for step in result.next_steps)

        again = await run(plan_for(source, out, concurrency=1), server, retry_failed=True)
        stats = server.stats()
    assert again.outcome == "done", again.message
    jobs = rows(out)
    assert len({job.request_id for job in jobs}) == 4
    assert all(job.possibly_duplicate for job in jobs if job.key in {f.key for f in flagged})
    assert sum(stats["submits_by_payload"].values()) == 6  # 4 + the 2 flagged, sent again


async def test_a_balance_refusal_in_a_200_stops_at_once(tmp_path: Path) -> None:
    """Submits answered 200 {"detail": "Insufficient balance"} with no request id: the run
    stops after its first submit with exit 3, commits $0.00, and every row stays pending."""
    out = tmp_path / "out"
    async with (
        MockServer(mock_config()) as server,
        aiohttp.ClientSession() as session,
        scripted(odd(server.base_url, session, "balance")) as proxy,
    ):
        args = cli_args(prompts(tmp_path, 20), out, proxy.url, concurrency=1)[3:]
        env = {"BATCHGEN_MOCK_KEY": "test-key"}
        done = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert done.exit_code == 3, done.output
    assert "Insufficient balance" in done.output
    assert sum(seen.method == "POST" for seen in proxy.seen) == 1
    assert {job.status for job in rows(out)} == {S.PENDING}
    assert "committed $0.00" in done.output, done.output
