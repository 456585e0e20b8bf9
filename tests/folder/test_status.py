"""batchgen status: counts, spend, jobs in flight, failures; read-only beside a live writer."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
import runs
from click.testing import CliRunner
from folders import T0, SubmitWatch, make_folder

from batchgen.cli import cli
from batchgen.errors import UsageError
from batchgen.folder.status import duration, read_status, render
from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer
from batchgen.run.runner import Runner

FIVE = "prompt\na\nb\nc\nd\ne\nf\ng\n"


def test_counts_spend_and_remaining(tmp_path: Path) -> None:
    """Spent counts jobs with a video (done); committed adds jobs in flight (completed ones
    too: their result may still be a refusal) and failed jobs that may be billed (a model
    error); remaining counts jobs not yet submitted."""
    folder = make_folder(tmp_path, FIVE)
    a, b, c, d, e, _f, _g = folder.keys
    folder.done(a)
    folder.failed(b, "boom")
    folder.running(c)
    folder.queued(d)
    folder.running(e)
    folder.ledger.transition(e, JobStatus.COMPLETED, completed_at=T0 + 50)
    status = read_status(folder.path, now=T0 + 100)
    assert status.total == 7
    assert status.counts["done"] == 1
    assert status.counts["failed"] == 1
    assert status.counts["pending"] == 2
    assert status.spent_usd == pytest.approx(0.35)  # a (done); e's result is not read yet
    assert status.committed_usd == pytest.approx(5 * 0.35)  # a, e, c, d and b (model error)
    assert status.remaining_usd == pytest.approx(2 * 0.35)  # the two pending
    assert status.unpriced_jobs == 0


def test_in_flight_jobs_with_age_and_queue_position_oldest_first(tmp_path: Path) -> None:
    """In-flight jobs list status, request id, age since submit and queue position."""
    folder = make_folder(tmp_path, FIVE)
    a, b, *_ = folder.keys
    folder.queued(a, submitted=T0 + 40)
    folder.ledger.update(a, queue_position=3)
    folder.running(b, submitted=T0)
    flying = read_status(folder.path, now=T0 + 100).in_flight
    assert [(f.key, f.status, f.age_s) for f in flying] == [
        (b, "running", 100.0),
        (a, "queued", 60.0),
    ]
    assert flying[1].queue_position == 3
    assert flying[0].request_id == f"req-{b}"


def test_failures_grouped_by_message_most_common_first(tmp_path: Path) -> None:
    """Failures are grouped by error text, with count, rows and the usual error type."""
    folder = make_folder(tmp_path, FIVE)
    a, b, c, *_ = folder.keys
    folder.failed(a, "Runner disconnected", error_type="runner_disconnected")
    folder.failed(b, "content policy", error_type="content_policy_violation")
    folder.failed(c, "Runner disconnected", error_type="runner_disconnected")
    groups = read_status(folder.path, now=T0).failures
    assert [(g.error, g.count, g.rows) for g in groups] == [
        ("Runner disconnected", 2, [1, 3]),
        ("content policy", 1, [2]),
    ]
    assert groups[0].error_type == "runner_disconnected"


def test_reads_while_a_writer_holds_the_ledger(tmp_path: Path) -> None:
    """Status reads a ledger another connection keeps writing, and sees its latest commit."""
    folder = make_folder(tmp_path, FIVE)
    assert read_status(folder.path, now=T0).counts["queued"] == 0
    folder.queued(folder.keys[0])
    assert read_status(folder.path, now=T0).counts["queued"] == 1


def test_status_never_writes(tmp_path: Path) -> None:
    """Reading status leaves the ledger file's bytes unchanged."""
    folder = make_folder(tmp_path, FIVE)
    folder.ledger.close()
    before = (folder.path / "batchgen.db").read_bytes()
    read_status(folder.path, now=T0)
    assert (folder.path / "batchgen.db").read_bytes() == before


def test_unknown_prices_are_counted_apart(tmp_path: Path) -> None:
    """Jobs with no known price are left out of the sums and counted."""
    folder = make_folder(tmp_path, "prompt\na\nb\n")
    folder.ledger.update(folder.keys[0], cost_usd=None)
    status = read_status(folder.path, now=T0)
    assert status.unpriced_jobs == 1
    assert status.remaining_usd == pytest.approx(0.35)
    assert "1 jobs of unknown price" in render(status)


def test_folder_without_ledger_is_a_usage_error(tmp_path: Path) -> None:
    """A folder with no ledger is refused with a message that says so."""
    with pytest.raises(UsageError, match="not a batchgen output folder"):
        read_status(tmp_path)


def test_render_shows_counts_money_flight_and_failures(tmp_path: Path) -> None:
    """The text names counts, spend, each job in flight and each failure group."""
    folder = make_folder(tmp_path, FIVE)
    a, b, *_ = folder.keys
    folder.running(a)
    folder.failed(b, "content\npolicy")
    text = render(read_status(folder.path, now=T0 + 125))
    assert "running 1 · failed 0" not in text
    assert "failed 1" in text
    assert "pending 5" in text
    assert "committed: $0.70" in text  # a running, b failed with a model error
    assert "remaining: $1.75" in text  # five pending
    assert f"req-{a}" in text
    assert "2m05s" in text
    assert "1× content policy [model_error]  (row 2)" in text


def test_durations_read_well() -> None:
    """Seconds, minutes, hours and days are shown compactly."""
    assert [duration(s) for s in (None, 5, 95, 3700, 90000)] == [
        "-",
        "5s",
        "1m35s",
        "1h01m",
        "1d01h",
    ]


def test_cli_status_json_and_text(tmp_path: Path) -> None:
    """`batchgen status DIR --json` prints the snapshot; without a ledger it exits 2."""
    folder = make_folder(tmp_path, FIVE)
    folder.done(folder.keys[0])
    runner = CliRunner()
    result = runner.invoke(cli, ["status", str(folder.path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"]["done"] == 1
    assert data["spent_usd"] == pytest.approx(0.35)
    text = runner.invoke(cli, ["status", str(folder.path)])
    assert text.exit_code == 0
    assert "done 1" in text.output
    missing = runner.invoke(cli, ["status", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert "not a batchgen output folder" in missing.output


# -- beside a live run on the emulator ---------------------------------------------------------


async def test_status_during_a_live_run(tmp_path: Path) -> None:
    """While a run holds jobs in flight, status reads its ledger: in flight, pending, money,
    and the run going on the folder (which is gone once the run has ended)."""
    out = tmp_path / "out"
    plan = runs.plan_for(runs.prompts(tmp_path, 6), out, concurrency=3)
    watch = SubmitWatch(3)
    config = runs.mock_config(latency=3_600_000.0, max_in_progress=1)
    async with MockServer(config) as server:
        runner = Runner(plan, runs.connection(server), timing=runs.FAST, reporter=watch)
        task = asyncio.create_task(runner.run())
        await asyncio.wait_for(watch.reached.wait(), 30)
        status = read_status(out)
        runner.abort()
        await task
    assert status.live_run is not None
    assert status.live_run.startswith(f"PID {os.getpid()} on ")
    assert f"run going: {status.live_run}" in render(status)
    assert read_status(out).live_run is None
    assert len(status.in_flight) == 3
    assert {f.status for f in status.in_flight} <= {"queued", "running"}
    assert all(f.request_id for f in status.in_flight)
    assert status.counts["pending"] == 3
    assert status.spent_usd == 0
    assert plan.estimated_cost is not None
    assert status.committed_usd + status.remaining_usd == pytest.approx(plan.estimated_cost)
    assert status.committed_usd == pytest.approx(plan.estimated_cost / 2)  # 3 of 6 in flight


def test_unknown_requests_group_as_one_failure(tmp_path: Path) -> None:
    """Messages that differ only by the request id they name are one failure group."""
    folder = make_folder(tmp_path, FIVE)
    a, b, *_ = folder.keys
    for key, rid in (
        (a, "7a1e0c52-0000-4000-8000-000000000000"),
        (b, "8b2f1d63-1111-4000-8000-00000000000a"),
    ):
        folder.failed(
            key,
            f"request {rid} is unknown to the provider (expired?)",
            error_type="unknown_request",
        )
    [group] = read_status(folder.path, now=T0 + 100).failures
    assert (group.error, group.count) == ("request <id> is unknown to the provider (expired?)", 2)
    assert group.rows == [1, 2]
