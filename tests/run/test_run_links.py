"""Fresh links before "gone": a link the file host refuses is replaced by one read from the
job's result again, in the run and on resume; only a result the provider no longer has makes a
paid video gone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from runs import assert_all_verified, mock_config, plan_for, prompts, rows, run
from test_run_paid import downloading, file_503s, submits
from test_run_resume import until

from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer

S = JobStatus


def refused(server: MockServer) -> int:
    return int(server.stats()["faults"].get("link_refused", 0))


async def test_links_refused_after_an_outage_are_read_afresh_in_the_run(tmp_path: Path) -> None:
    """Links refused once a file-host outage ends (as signed links that expired meanwhile
    are) are replaced in the same run by fresh ones from each job's result: every video
    fetched, none gone, each job submitted once."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 6), out)
    async with MockServer(mock_config(fault_file_503=1.0)) as server:
        task = asyncio.create_task(run(plan, server))
        await until(lambda: downloading(out) == 6 and file_503s(server) >= 12)
        server.config.file_link_ttl = 3600.0  # signed links only: the plain ones are refused
        server.config.fault_file_503 = 0.0
        result = await task
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert submits(stats) == [1] * 6
    assert refused(server) == 6
    assert all("X-Amz-Signature=" in (job.video_url or "") for job in rows(out))


async def test_expired_links_are_read_afresh_on_resume(tmp_path: Path) -> None:
    """A resume whose recorded links are refused (403) reads each job's result again and
    fetches every video from the fresh link: 0 resubmits, every video fetched."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 5), out, download_patience=50)
    async with MockServer(mock_config(fault_file_503=1.0)) as server:
        assert (await run(plan, server)).outcome == "failed"
        assert downloading(out) == 5
        server.config.fault_file_503 = 0.0
        server.config.file_link_ttl = 3600.0
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert submits(stats) == [1] * 5
    assert refused(server) == 5


async def test_a_refused_link_whose_result_is_gone_is_video_gone(tmp_path: Path) -> None:
    """A refused link whose job's result the provider no longer has fails its row video_gone
    at once, saying why and that --retry-failed pays again; nothing is submitted again."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 3), out, download_patience=50)
    async with MockServer(mock_config(fault_file_503=1.0)) as server:
        assert (await run(plan, server)).outcome == "failed"
        server.config.fault_file_503 = 0.0
        server.config.file_link_ttl = 3600.0
        server.config.result_ttl = 0.0
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "failed"
    assert submits(stats) == [1] * 3
    assert refused(server) == 3
    for job in rows(out):
        assert (job.status, job.error_type) == (S.FAILED, "video_gone")
        assert job.error is not None
        assert "no longer has the job's result" in job.error
        assert "paid again ($" in job.error
