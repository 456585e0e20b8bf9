"""A run's ledger moves, committed by the writer thread, as the engine sees them: a move
under way when a timeout or a failure hits is never lost from the engine's view, and a
ledger that fails mid-run stops it with the ledger's message."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
import time
from pathlib import Path

import pgserver
import psycopg
import pytest
from runs import (
    FAST,
    assert_all_verified,
    connection,
    mock_config,
    plan_for,
    prompts,
    rows,
    run,
)
from test_run_resume import until

from batchgen.errors import LedgerError
from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer
from batchgen.mock.stats import payload_digest
from batchgen.run.runner import Runner

S = JobStatus


async def test_a_move_still_committing_at_the_job_timeout_is_followed_on(tmp_path: Path) -> None:
    """The job's --job-timeout passes while its move to running waits for its commit (the
    ledger locked by another process): once the move is made, the job is cancelled and ends
    timed out, not left running as if another process had moved it."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 1), out, poll="stream", job_timeout=1000)  # 1 s
    config = mock_config(queue_delay=300.0, latency=20_000.0, latency_jitter=0.0)
    async with MockServer(config) as server:
        running = asyncio.create_task(run(plan, server))
        await until(lambda: (out / "batchgen.db").exists() and rows(out)[0].status == "queued")
        submitted_at = rows(out)[0].submitted_at
        assert submitted_at is not None
        lock = sqlite3.connect(out / "batchgen.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # the writer waits: its move to running with it
        try:
            # Held past the job's deadline (and its stream's timeout), then let go.
            await until(lambda: time.time() > submitted_at + 1.2)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        result = await running
        stats = server.stats()
    job = rows(out)[0]
    assert (job.status, job.error_type) == (S.FAILED, "timeout"), (job.status, job.error)
    assert stats["requests"]["cancel"]
    assert result.outcome == "failed"


def ended(server: MockServer) -> int:
    """Looks that found a job ended: its run moves it to completed next."""
    return int(server.stats()["requests"].get("status", {}).get("200", 0))


def collected(out: Path) -> int:
    return sum(job.status in (S.COMPLETED, S.DOWNLOADING, S.DONE) for job in rows(out))


async def test_a_stop_while_moves_wait_for_their_commit_ends_and_resumes(tmp_path: Path) -> None:
    """Stopping now (SIGTERM, a second Ctrl-C) while moves wait for a ledger another process
    holds: the run ends interrupted once they are committed, its writer thread gone; the
    next run finishes every job, none sent twice unflagged."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 20), out)
    async with MockServer(mock_config(latency=200.0)) as server:
        runner = Runner(plan, connection(server), timing=FAST)
        running = asyncio.create_task(runner.run())
        await until(lambda: (out / "batchgen.db").exists() and any(j.request_id for j in rows(out)))
        lock = sqlite3.connect(out / "batchgen.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:  # until a job ended: its move to completed waits for the ledger
            await until(lambda: ended(server) > collected(out))
            runner.abort()
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        stopped = await running
        assert not any(t.name == "batchgen-ledger" for t in threading.enumerate())
        result = await run(plan, server)
        stats = server.stats()
    assert stopped.outcome == "interrupted"
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    for job in rows(out):
        sent = stats["submits_by_payload"][payload_digest(job.payload)]
        assert sent == 1 or job.possibly_duplicate


def lose_the_writer(url: str, batch: str) -> None:
    """Once jobs of ``batch`` are at the provider, end the worker's writing connection at the
    server: the newer of its two (the run's timing opens no manifest reader)."""
    with psycopg.connect(url, autocommit=True) as db:
        found = db.execute("SELECT id FROM batchgen.batches WHERE name = %s", (batch,))
        schema = f"b_{found.fetchone()[0]}"
        while not db.execute(
            f"SELECT COUNT(*) FROM {schema}.jobs WHERE status IN ('queued', 'running')"
        ).fetchone()[0]:
            pass
        pid = db.execute(
            "SELECT pid FROM pg_stat_activity WHERE usename = current_user "
            "AND pid <> pg_backend_pid() ORDER BY backend_start DESC LIMIT 1"
        ).fetchone()
        db.execute("SELECT pg_terminate_backend(%s)", pid)


@pytest.mark.parametrize(
    ("jobs", "latency"), [(60, 100.0), (4, 500.0)], ids=["busy", "every-job-claimed"]
)
async def test_a_writer_that_loses_its_ledger_stops_the_run_with_its_message(
    tmp_path: Path, postgres: pgserver.Server, batch: str, jobs: int, latency: float
) -> None:
    """The shared ledger drops the writer's connection mid-run: with many moves waiting, all
    of them fail in one commit; with every job claimed, the worker waits for one to end. The
    run ends with the ledger's one error (the CLI shows its message), never a group of them
    or the worker's own claims cut short (a traceback)."""
    plan = plan_for(prompts(tmp_path, jobs), tmp_path / "w", concurrency=32)
    timing = dataclasses.replace(FAST, manifest_every=1000.0, lease=5.0, heartbeat=0.05)
    async with MockServer(mock_config(latency=latency, max_in_progress=32)) as server:
        runner = Runner(plan, connection(server), timing=timing, ledger=postgres.url, batch=batch)
        running = asyncio.create_task(runner.run())
        await until(lambda: bool(server.stats()["submits_by_payload"]))
        await asyncio.to_thread(lose_the_writer, postgres.url, batch)
        with pytest.raises(LedgerError, match="connection"):
            await running
