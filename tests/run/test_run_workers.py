"""Several workers on one batch in a shared PostgreSQL ledger: no job submitted twice, every
video right, and the jobs of a worker killed with SIGKILL finished by the others."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import socket
from pathlib import Path
from typing import Any

import pgserver
import pytest
from runs import FAST, cli_args, connection, mock_config, plan_for, prompts, sha256
from test_run_resume import finish, start

from batchgen.errors import UsageError
from batchgen.ledger.opener import open_shared
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.mock import MockServer
from batchgen.mock.stats import payload_digest
from batchgen.run.runner import Runner

S = JobStatus
# Leases of 2 s, a beat every 50 ms: a dead worker's jobs move on within seconds.
SHARED = dataclasses.replace(FAST, lease=2.0, heartbeat=0.05)


def batch_rows(url: str, batch: str) -> list[JobRow]:
    with open_shared(url, batch, readonly=True) as ledger:
        return ledger.jobs()


async def held_at_provider(url: str, batch: str, folder: str, at_least: int) -> dict[str, str]:
    """Once the worker downloading to ``folder`` holds ``at_least`` jobs the provider has:
    their keys and request ids. Read in a thread, so the emulator in this loop keeps
    serving; bounded by the test's timeout."""

    def look() -> dict[str, str]:
        try:
            with open_shared(url, batch, readonly=True) as ledger:
                ids = [w.id for w in ledger.workers() if w.folder == folder]
                held = set(ledger.held_by(ids[0])) if ids else set()
                jobs = ledger.jobs([S.QUEUED, S.RUNNING])
        except UsageError:  # no batch yet
            return {}
        return {job.key: str(job.request_id) for job in jobs if job.key in held}

    while True:
        found = await asyncio.to_thread(look)
        if len(found) >= at_least:
            return found
        await asyncio.sleep(0.05)


def assert_every_video_right(jobs: list[JobRow], stats: dict[str, Any]) -> None:
    """Every job done, its video in the worker folder the ledger names, equal (sha256, size)
    to what the emulator served for its request."""
    host = socket.gethostname()
    for job in jobs:
        assert job.status is S.DONE, (job.key, job.status, job.error)
        assert job.video_dir is not None
        assert job.video_path is not None
        where, folder = job.video_dir.split(":", 1)
        assert where == host
        path = Path(folder) / job.video_path
        served = stats["files"][job.request_id]
        assert (sha256(path), path.stat().st_size) == (served["sha256"], served["size"])
        assert job.sha256 == served["sha256"]


async def test_three_workers_share_a_batch_and_submit_nothing_twice(
    tmp_path: Path, postgres: pgserver.Server, batch: str
) -> None:
    """Three in-process runs on one batch, each downloading to its own folder: every job is
    submitted once (emulator: one submit per payload), done and verified, the work spread
    over the workers, and each run ends done."""
    source = prompts(tmp_path, 60)
    async with MockServer(mock_config()) as server:
        runners = [
            Runner(
                plan_for(source, tmp_path / f"w{i}", concurrency=4),
                connection(server),
                timing=SHARED,
                ledger=postgres.url,
                batch=batch,
            )
            for i in range(3)
        ]
        results = await asyncio.gather(*(runner.run() for runner in runners))
        stats = server.stats()
    assert [r.outcome for r in results] == ["done"] * 3
    jobs = batch_rows(postgres.url, batch)
    assert len(jobs) == 60
    assert sorted(stats["submits_by_payload"].values()) == [1] * 60
    assert {payload_digest(job.payload) for job in jobs} == set(stats["submits_by_payload"])
    assert_every_video_right(jobs, stats)
    assert len({job.video_dir for job in jobs}) == 3  # each worker did some
    assert not any(job.possibly_duplicate for job in jobs)


async def test_a_worker_killed_mid_run_leaves_its_jobs_to_the_others(
    tmp_path: Path, postgres: pgserver.Server, batch: str
) -> None:
    """Three `batchgen run` processes on one batch; one is killed with SIGKILL while its jobs
    run at the provider. Once its leases run out the other two follow those jobs by request
    id (no new submit) and finish the batch: every job done and verified, one submit each
    (only a POST in flight at the kill may be sent again, flagged)."""
    source = prompts(tmp_path, 40)
    async with MockServer(mock_config(latency=600.0, max_in_progress=12)) as server:
        procs = []
        for i in range(3):
            args = cli_args(source, tmp_path / f"w{i}", server.base_url, concurrency=4)
            args += ["--ledger", postgres.url, "--batch", batch, "--lease", "1.5"]
            procs.append(await start(args))
        victim = procs[0]

        left = await held_at_provider(postgres.url, batch, str(tmp_path / "w0"), at_least=3)
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
        outcomes = [await finish(proc) for proc in procs[1:]]
        stats = server.stats()
    assert victim.returncode == -9
    for code, err in outcomes:
        assert code == 0, err
    jobs = batch_rows(postgres.url, batch)
    assert len(jobs) == 40
    assert_every_video_right(jobs, stats)
    by_key = {job.key: job for job in jobs}
    for key, request_id in left.items():  # followed by the others, never sent again
        assert by_key[key].request_id == request_id
        assert by_key[key].video_dir != f"{socket.gethostname()}:{tmp_path / 'w0'}"
        assert stats["submits_by_payload"][payload_digest(by_key[key].payload)] == 1
    for job in jobs:
        if not job.possibly_duplicate:
            assert stats["submits_by_payload"][payload_digest(job.payload)] == 1


async def test_max_cost_holds_for_the_whole_batch(
    tmp_path: Path, postgres: pgserver.Server, batch: str
) -> None:
    """Three workers given --max-cost $2.45 on 30 jobs of $0.35 each: seven are submitted in
    all, one submit each; the batch's committed spend, read all along, never passes the cap;
    the other 23 stay pending and unsent, each saying so, and every run ends held by it."""
    source = tmp_path / "p.csv"
    source.write_text("prompt\n" + "".join(f"shot {i}\n" for i in range(30)))
    seen: list[float] = []
    async with MockServer(mock_config()) as server:
        runners = [
            Runner(
                plan_for(source, tmp_path / f"w{i}", concurrency=4, max_cost=2.45),
                connection(server),
                timing=SHARED,
                ledger=postgres.url,
                batch=batch,
            )
            for i in range(3)
        ]
        running = asyncio.gather(*(runner.run() for runner in runners))
        while not running.done():  # the batch's committed spend, as the workers move
            seen.append(await asyncio.to_thread(committed_now, postgres.url, batch))
        results = await running
        stats = server.stats()
    assert sorted(stats["submits_by_payload"].values()) == [1] * 7
    jobs = batch_rows(postgres.url, batch)
    assert sum(job.status is S.DONE for job in jobs) == 7
    held = [job for job in jobs if job.status is not S.DONE]
    assert len(held) == 23
    for job in held:
        assert (job.status, job.attempts) == (S.PENDING, 0)
        assert job.error is not None
        assert job.error.startswith("not submitted: it would take the committed spend to $2.80")
        assert job.error.endswith("above --max-cost $2.45")
    assert seen
    assert max(seen) <= 2.45 + 1e-9
    assert committed_now(postgres.url, batch) == pytest.approx(2.45)
    for result in results:
        assert result.outcome == "failed"
        assert result.held_by_cost > 0
        assert "--max-cost reached" in result.message


def committed_now(url: str, batch: str) -> float:
    try:
        with open_shared(url, batch, readonly=True) as ledger:
            return ledger.committed_usd()
    except UsageError:  # no batch yet
        return 0.0
