"""Uncertain submits resolved from the emulator's request log (batchgen.run.reconcile)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from batchgen.ledger.states import JobStatus as S
from batchgen.mock import MockServer
from batchgen.run.progress import Reporter
from batchgen.run.runner import Runner
from batchgen.run.timing import Timing
from tests.runs import FAST, connection, mock_config, plan_for, prompts, rows


async def _run(
    server: MockServer, out: Path, source: Path, timing: Timing = FAST, **settings: Any
) -> tuple[Reporter, str]:
    reporter = Reporter()
    plan = plan_for(source, out, **{"max_attempts": 4, **settings})
    conn = replace(connection(server), platform_url=server.base_url)
    result = await Runner(plan, conn, timing=timing, reporter=reporter).run()
    return reporter, result.outcome


async def test_lost_submit_whose_job_exists_is_adopted(tmp_path: Path) -> None:
    """A submit whose answer was lost is found in the log and adopted: one submit, not flagged."""
    out = tmp_path / "out"
    async with MockServer(mock_config(fault_submit_drop=1.0)) as server:
        timing = replace(FAST, reconcile_settle=0)
        _, outcome = await _run(server, out, prompts(tmp_path, 3), timing)
        stats = server.stats()
    assert outcome == "done"
    assert sorted(stats["submits_by_payload"].values()) == [1, 1, 1]
    assert [(j.status, j.possibly_duplicate, j.attempts) for j in rows(out)] == [
        (S.DONE, False, 1)
    ] * 3


async def test_a_lost_last_attempt_that_made_a_job_is_adopted(tmp_path: Path) -> None:
    """Out of attempts, a job whose last submit's answer was lost is not failed when the log
    shows the job that submit made: it is followed to its video (chaos seed 3)."""
    out = tmp_path / "out"
    async with MockServer(mock_config(fault_submit_drop=1.0)) as server:
        timing = replace(FAST, reconcile_settle=0)
        _, outcome = await _run(server, out, prompts(tmp_path, 2), timing, max_attempts=1)
        stats = server.stats()
    assert outcome == "done"
    assert sorted(stats["submits_by_payload"].values()) == [1, 1]
    assert [(j.status, j.possibly_duplicate) for j in rows(out)] == [(S.DONE, False)] * 2


async def test_lost_submit_without_a_job_is_resent_once_unflagged(tmp_path: Path) -> None:
    """When the log shows no job for a lost submit after the settle time, it is sent once more,
    not flagged possibly_duplicate."""
    out = tmp_path / "out"
    async with MockServer(mock_config(fault_submit_drop=1.0)) as server:

        async def sleep(seconds: float) -> None:
            if seconds > 0.5:  # the settle wait: the log forgets the request, no more drops
                server.emulator.requests.clear()
                server.config.fault_submit_drop = 0.0
                return
            await asyncio.sleep(seconds)

        timing = replace(FAST, reconcile_settle=1000.0, sleep=sleep)
        _, outcome = await _run(server, out, prompts(tmp_path, 1), timing)
        stats = server.stats()
    assert outcome == "done"
    assert list(stats["submits_by_payload"].values()) == [2]
    job = rows(out)[0]
    assert (job.status, job.possibly_duplicate, job.attempts) == (S.DONE, False, 2)


async def test_unreadable_log_resends_flagged_with_one_warning(tmp_path: Path) -> None:
    """A log that answers 503 or 403: today's behaviour (sent again, flagged), said once."""
    for mode, said in (("down", "answered 503"), ("forbidden", "lacks the scope")):
        out = tmp_path / mode
        config = mock_config(fault_submit_drop=0.5, request_log=mode, seed=3)
        async with MockServer(config) as server:
            reporter, outcome = await _run(server, out, prompts(tmp_path, 6), max_attempts=8)
        assert outcome == "done"
        warned = [n for n in reporter.notes if "request log" in n]
        assert len(warned) == 1, reporter.notes
        assert said in warned[0]
        assert any(j.possibly_duplicate for j in rows(out))


async def test_reconcile_off_keeps_todays_behaviour(tmp_path: Path) -> None:
    """--reconcile off: a lost submit is sent again flagged, and the log is never read."""
    out = tmp_path / "out"
    async with MockServer(mock_config(fault_submit_drop=0.5, seed=3)) as server:
        _, outcome = await _run(server, out, prompts(tmp_path, 6), reconcile="off", max_attempts=8)
        stats = server.stats()
    assert outcome == "done"
    assert "request_log" not in stats["requests"]
    assert any(j.possibly_duplicate for j in rows(out))
