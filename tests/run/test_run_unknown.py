"""Request ids the provider no longer knows (404): the job fails at once, clearly; retryable."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import aiohttp
from click.testing import CliRunner
from mock_fixtures import AUTH, submit, wait_completed
from runs import mock_config, plan_for, prompts, rows, run

from batchgen.api.providers import IN_PROCESS
from batchgen.cli import cli
from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
from batchgen.mock import MockServer
from batchgen.plan.build import build_plan
from batchgen.run.outcome import next_steps

S = JobStatus
NEVER_SEEN = "7a1e0c52-0000-4000-8000-000000000000"
LONG_GONE = "7a1e0c52-0000-4000-8000-000000000001"


def unknown(rid: str) -> str:
    return f"request {rid} is unknown to the provider (expired?)"


async def test_forgotten_requests_fail_once_then_retry(tmp_path: Path) -> None:
    """Ids the provider forgot (a status 404 that the result route confirms, or a result 404;
    one long past its job timeout too) fail their job, naming the id; --retry-failed submits
    them anew, all end done."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 3), out)
    lost, old, expired = (job.key for job in plan.jobs)
    async with MockServer(mock_config(result_ttl=0.0)) as server:
        async with aiohttp.ClientSession() as session:
            finished = (await submit(session, server, headers=AUTH))["request_id"]
            await wait_completed(session, server, finished)
        with Ledger.in_folder(out) as ledger:
            ledger.sync(plan.jobs, plan.endpoint.id)
            now = time.time()
            for key, rid, status, submitted in (
                (lost, NEVER_SEEN, S.QUEUED, now),
                (old, LONG_GONE, S.RUNNING, now - 100_000),
                (expired, finished, S.COMPLETED, now),
            ):
                ledger.transition(key, S.SUBMITTING, attempts=1)
                ledger.transition(key, status, request_id=rid, submitted_at=submitted)
        result = await run(plan, server)
        stats = server.stats()
        assert result.outcome == "failed"
        # Past its time or not, a job gets one real look before it is given up on.
        assert stats["status_requests"] == {NEVER_SEEN: 1, LONG_GONE: 1}
        assert "cancel" not in stats["requests"]  # nothing to cancel: the provider forgot both
        assert stats["requests"]["result"] == {"404": 3}  # one per job: the route that decides
        assert sum(stats["submits_by_payload"].values()) == 1  # the direct submit above
        jobs = {job.key: job for job in rows(out)}
        for key, rid in ((lost, NEVER_SEEN), (old, LONG_GONE), (expired, finished)):
            assert (jobs[key].status, jobs[key].error) == (S.FAILED, unknown(rid))
            assert jobs[key].error_type == "unknown_request"

        server.config.result_ttl = None
        result = await run(plan, server, retry_failed=True)
    assert result.outcome == "done", result.message
    for job in rows(out):
        assert job.status is S.DONE
        assert job.request_id not in (NEVER_SEEN, LONG_GONE, finished)


def test_mock_run_resumed_on_a_fresh_emulator(tmp_path: Path) -> None:
    """`batchgen run --out DIR` after a killed --mock run: the jobs that were in flight in
    its emulator (queued, and completed with a video link there) died with it and are
    submitted again, free, without --retry-failed; all end done, and the run says so."""
    source = tmp_path / "prompts.csv"
    source.write_text("prompt\na red kite\na blue door\na green field\n", encoding="utf-8")
    out = tmp_path / "out"
    plan = build_plan(source, output=out)
    first, second = plan.jobs[0].key, plan.jobs[1].key
    with Ledger.in_folder(out) as ledger:  # as a killed --mock run leaves it
        ledger.sync(plan.jobs, plan.endpoint.id)
        for key, rid in ((first, NEVER_SEEN), (second, LONG_GONE)):
            ledger.transition(key, S.SUBMITTING, attempts=1)
            ledger.transition(
                key, S.QUEUED, request_id=rid, submitted_at=time.time(), origin=IN_PROCESS
            )
        ledger.transition(second, S.COMPLETED, video_url="http://127.0.0.1:9/files/x/output.mp4")
    fast = ["--progress", "none", "--time-scale", "0.001"]
    result = CliRunner().invoke(cli, ["run", str(source), "--out", str(out), "--mock", *fast])
    assert result.exit_code == 0, result.output
    said = "2 job(s) were in flight in the emulator of an earlier run"
    assert said in (out / "batchgen.log").read_text(encoding="utf-8")
    jobs = rows(out)
    assert [job.status for job in jobs] == [S.DONE] * 3
    assert {jobs[0].request_id, jobs[1].request_id}.isdisjoint({NEVER_SEEN, LONG_GONE})
    assert len(list((out / "videos").glob("*.mp4"))) == 3


def test_an_interrupted_mock_run_says_its_jobs_in_flight_are_submitted_again(
    tmp_path: Path,
) -> None:
    """Stopped with jobs in its own emulator, a --mock run's next steps say a resume submits
    them again, free, not "cancel them at the provider"."""
    source = tmp_path / "prompts.csv"
    source.write_text("prompt\na red kite\n", encoding="utf-8")
    out = tmp_path / "out"
    plan = build_plan(source, output=out)
    with Ledger.in_folder(out) as ledger:
        ledger.sync(plan.jobs, plan.endpoint.id)
        key = plan.jobs[0].key
        ledger.transition(key, S.SUBMITTING, attempts=1)
        ledger.transition(key, S.QUEUED, request_id=NEVER_SEEN, origin=IN_PROCESS)
        engine = SimpleNamespace(
            fatal=None,
            stopped=None,
            stranded=0,
            unshown=Counter(),
            held_by_cost=0,
            downloads_left=0,
        )
        steps = next_steps(ledger, ledger.counts(), engine, out, True, True)  # type: ignore[arg-type]
        elsewhere = next_steps(ledger, ledger.counts(), engine, out, True)  # type: ignore[arg-type]
    assert steps == [
        f"1 job(s) were in flight in this run's emulator, which ends with it: batchgen run "
        f"--out {out} submits them again (free)"
    ]
    assert elsewhere[0].startswith("1 job(s) still at the provider (billed if they run)")
