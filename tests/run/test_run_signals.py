"""Ctrl-C once drains (in-flight jobs finish and download); twice, SIGTERM or SIGHUP stops now.
After any of them the last line says "interrupted" and how to resume."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest
from runs import assert_all_verified, cli_args, manifest, mock_config, prompts, rows
from test_run_resume import finish, start, submitted, until

from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer
from batchgen.mock.stats import payload_digest

S = JobStatus


def assert_says_how_to_resume(err: str, out: Path) -> None:
    """The last line printed names the interruption and the exact command that resumes."""
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: "), last
    assert last.endswith(f"; resume with: batchgen run --out {out}"), last


async def test_ctrl_c_drains_then_exits_130(tmp_path: Path) -> None:
    """SIGINT: nothing more is submitted, jobs in flight finish and download, the manifest
    is written, exit 130."""
    out = tmp_path / "out"
    async with MockServer(mock_config(latency=100.0)) as server:
        proc = await start(cli_args(prompts(tmp_path, 40), out, server.base_url, concurrency=4))
        await until(lambda: submitted(server) >= 6)
        proc.send_signal(signal.SIGINT)
        code, err = await finish(proc)
        stats = server.stats()
    assert code == 130, err
    assert_says_how_to_resume(err, out)
    jobs = rows(out)
    statuses = {job.status for job in jobs}
    assert statuses <= {S.DONE, S.PENDING}, statuses
    done = [job for job in jobs if job.status is S.DONE]
    assert 6 <= len(done) < 40
    assert len(stats["submits_by_payload"]) == len(done)
    for job in done:
        assert stats["files"][job.request_id]["sha256"] == job.sha256
    assert [r["status"] for r in manifest(out)] == [str(job.status) for job in jobs]
    assert not list(out.rglob("*.part"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
async def test_sigterm_or_sighup_stops_now_and_the_run_resumes(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """SIGTERM, or SIGHUP (an ssh session closing), stops at once (exit 130) leaving a
    resumable folder, run.json saying interrupted and a manifest that matches the ledger;
    `batchgen run --out DIR` finishes it without sending any job twice except ones whose POST
    was in flight."""
    out = tmp_path / "out"
    async with MockServer(mock_config(latency=100.0)) as server:
        args = cli_args(prompts(tmp_path, 30), out, server.base_url)
        proc = await start(args)
        await until(lambda: submitted(server) >= 10)
        proc.send_signal(sig)
        code, err = await finish(proc)
        assert code == 130, err
        assert_says_how_to_resume(err, out)
        assert json.loads((out / "run.json").read_text())["outcome"] == "interrupted"
        jobs = rows(out)
        assert any(job.status in (S.QUEUED, S.RUNNING) for job in jobs)
        assert [r["status"] for r in manifest(out)] == [str(job.status) for job in jobs]
        # The command it printed, with the test's fast clock (not a stored setting).
        resume = [sys.executable, "-m", "batchgen", "run", "--out", str(out), "--time-scale"]
        code, err = await finish(await start([*resume, args[args.index("--time-scale") + 1]]))
        stats = server.stats()
    assert code == 0, err
    assert_all_verified(out, stats)
    for job in rows(out):
        if not job.possibly_duplicate:
            assert stats["submits_by_payload"][payload_digest(job.payload)] == 1


async def test_second_ctrl_c_stops_now_and_the_run_resumes(tmp_path: Path) -> None:
    """A second SIGINT stops now (exit 130), the manifest matching the ledger; the rerun
    finishes the folder, sending no job twice except ones whose POST was in flight."""
    out = tmp_path / "out"
    # 8 run at once for ~1 s: they are surely in flight at the second SIGINT, and the
    # rerun waits for them at most that long.
    async with MockServer(mock_config(latency=1000.0, max_in_progress=8)) as server:
        args = cli_args(prompts(tmp_path, 10), out, server.base_url)
        proc = await start(args)
        await until(lambda: submitted(server) >= 8)
        proc.send_signal(signal.SIGINT)
        await until(
            lambda: "stopping" in (out / "batchgen.log").read_text() or proc.returncode is not None,
            limit=10,
        )
        proc.send_signal(signal.SIGINT)
        code, err = await finish(proc)
        assert code == 130, err
        assert_says_how_to_resume(err, out)
        jobs = rows(out)
        assert any(job.status in (S.QUEUED, S.RUNNING) for job in jobs)
        assert [r["status"] for r in manifest(out)] == [str(job.status) for job in jobs]
        server.config.latency = 20.0  # for jobs submitted from now on
        code, err = await finish(await start(args))
        stats = server.stats()
    assert code == 0, err
    assert_all_verified(out, stats)
    for job in rows(out):
        if not job.possibly_duplicate:
            assert stats["submits_by_payload"][payload_digest(job.payload)] == 1
