"""One truth about money: the display, the result, status, report and manifest agree to the cent."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from runs import (
    FAST,
    connection,
    manifest,
    mock_config,
    plan_for,
    prompts,
    rows,
    run,
    subprocess_env,
)
from test_run_resume import until

from batchgen.cli import cli
from batchgen.folder.report import write_report
from batchgen.folder.status import read_status
from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer
from batchgen.run.progress import Reporter
from batchgen.run.runner import Runner


class MoneyWatch(Reporter):
    """Keeps every (committed, spent) the run reported."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, float]] = []

    def money(self, committed: float, spent: float) -> None:
        super().money(committed, spent)
        self.seen.append((committed, spent))


def report_figure(out: Path, label: str) -> float:
    html = (out / "report.html").read_text(encoding="utf-8")
    match = re.search(rf"<b>\$([\d,]+\.\d\d)</b><span>{label}</span>", html)
    assert match, label
    return float(match.group(1).replace(",", ""))


async def test_every_figure_agrees_after_a_fault_run(tmp_path: Path) -> None:
    """After a run with runner errors, refusals and cut downloads, the live figures, the result,
    status, the report and the manifest's cost_usd column give the same spent and committed,
    and the live figures never went down."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 30, word="forbidden"), out, max_attempts=6)
    faults = {"fault_runner_disconnected": 0.2, "fault_truncate": 0.2, "policy_word": "forbidden"}
    watch = MoneyWatch()
    async with MockServer(mock_config(seed=3, **faults)) as server:
        result = await run(plan, server, reporter=watch)
    assert result.outcome == "failed"  # the refused ones
    status = read_status(out)
    write_report(out)
    records = manifest(out)
    spent = round(sum(r["cost_usd"] or 0 for r in records), 2)
    assert spent == pytest.approx(result.spent_usd) == pytest.approx(status.spent_usd)
    assert watch.seen[-1] == pytest.approx((status.committed_usd, status.spent_usd))
    assert result.committed_usd == pytest.approx(status.committed_usd)
    assert report_figure(out, "spent") == pytest.approx(status.spent_usd)
    assert report_figure(out, "committed") == pytest.approx(status.committed_usd)
    # The refused jobs may be billed (GPU time before the refusal): committed, not spent.
    refused = [r for r in records if r["status"] == "failed"]
    assert refused
    assert status.committed_usd == pytest.approx(spent + sum(r["price_usd"] for r in refused))
    for (c0, s0), (c1, s1) in zip(watch.seen, watch.seen[1:], strict=False):
        assert c1 >= c0 - 1e-9
        assert s1 >= s0 - 1e-9


async def test_nothing_is_committed_when_the_api_is_unreachable(tmp_path: Path) -> None:
    """Submits that never reached the API commit nothing: the display ends at $0, as status."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    out = tmp_path / "out"
    watch = MoneyWatch()
    result = await run(plan_for(prompts(tmp_path, 4), out), closed, reporter=watch)
    assert result.outcome == "failed"
    assert (result.committed_usd, result.spent_usd) == (0.0, 0.0)
    assert watch.seen[-1] == (0.0, 0.0)
    status = read_status(out)
    assert (status.committed_usd, status.spent_usd) == (0.0, 0.0)
    assert status.counts[JobStatus.PENDING.value] == 4


async def test_cancelled_batch_figures_agree(tmp_path: Path) -> None:
    """`batchgen cancel` on a live run: jobs cancelled in the queue commit nothing, and the
    run's last figures, its result and status agree."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 3), out)
    watch = MoneyWatch()
    # One slot at the provider and 1 s jobs: one runs, two wait in the queue.
    async with MockServer(mock_config(latency=1000.0, max_in_progress=1)) as server:
        runner = Runner(plan, connection(server), timing=FAST, reporter=watch)
        task = asyncio.create_task(runner.run())
        await until(lambda: sum(server.stats()["submits_by_payload"].values()) == 3)
        args = ["cancel", str(out), "--provider", "mock", "--base-url", server.base_url]
        done = await asyncio.to_thread(CliRunner().invoke, cli, args, env=subprocess_env())
        assert done.exit_code == 0, done.output
        result = await task
    status = read_status(out)
    jobs = rows(out)
    assert {job.status for job in jobs} == {JobStatus.CANCELLED}
    ran = [job for job in jobs if job.started_at is not None]
    assert 0 < len(ran) < len(jobs)  # some were cancelled in the queue, before they ran
    assert status.committed_usd == pytest.approx(sum(job.cost_usd or 0 for job in ran))
    assert result.committed_usd == pytest.approx(status.committed_usd)
    assert watch.seen[-1] == pytest.approx((status.committed_usd, status.spent_usd))
