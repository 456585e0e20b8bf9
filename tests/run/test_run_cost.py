"""--max-cost: never submit a job that would take the folder's estimated spend above it."""

from __future__ import annotations

from pathlib import Path

import pytest
from runs import mock_config, plan_for, prompts, rows, run

from batchgen.errors import UsageError
from batchgen.mock import MockServer
from batchgen.plan.build import build_plan


def spent(out: Path) -> float:
    return round(sum(j.cost_usd or 0 for j in rows(out) if j.attempts), 6)


async def test_max_cost_holds_back_jobs_beyond_it(tmp_path: Path) -> None:
    """Jobs that would pass --max-cost stay pending with the reason; the rest run."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 12)  # 4 jobs of 10 s ($0.70), 8 of 5 s ($0.35)
    async with MockServer(mock_config()) as server:
        result = await run(plan_for(source, out, max_cost=2.0), server)
        stats = server.stats()
    assert result.outcome == "failed"
    assert result.held_by_cost > 0
    assert spent(out) <= 2.0
    assert len(stats["submits_by_payload"]) == sum(1 for j in rows(out) if j.attempts)
    held = [j for j in rows(out) if j.status == "pending"]
    assert held
    assert all("--max-cost" in (j.error or "") for j in held)
    assert "--max-cost reached" in result.message


async def test_max_cost_counts_earlier_runs_of_the_folder(tmp_path: Path) -> None:
    """The spend of earlier runs in the same folder counts against --max-cost."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 12)
    async with MockServer(mock_config()) as server:
        await run(plan_for(source, out, max_cost=1.0), server)
        first = spent(out)
        await run(plan_for(source, out, max_cost=2.5), server)
        second = spent(out)
        result = await run(plan_for(source, out), server)
    assert 0 < first <= 1.0 < second <= 2.5
    assert result.outcome == "done"


async def test_max_cost_needs_a_known_price(tmp_path: Path) -> None:
    """--max-cost with an endpoint of unknown price is refused before anything is sent."""
    source = prompts(tmp_path, 2)
    plan = build_plan(
        source, endpoint="someone/some-model", output=tmp_path / "out", run={"max_cost": 5}
    )
    async with MockServer(mock_config()) as server:
        with pytest.raises(UsageError, match="price"):
            await run(plan, server)
