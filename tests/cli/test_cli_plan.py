"""`batchgen plan` on the shipped examples and job specs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchgen.cli import cli

# file -> (records, jobs, estimated cost in USD, jobs by duration)
EXPECTED = {
    "examples/compare.csv": (4, 4, 1.40, {"5": 4}),
    "examples/prompts.csv": (8, 8, 3.85, {"5": 5, "10": 3}),
    "examples/prompts.yaml": (4, 4, 1.75, {"5": 3, "10": 1}),
    "examples/prompts.jsonl": (3, 3, 1.40, {"5": 2, "10": 1}),
    "jobs/compare.yaml": (4, 12, 5.68, {"5": 4, "8s": 4, "6": 4}),
    "jobs/demo.yaml": (4, 8, 3.50, {"5": 6, "10": 2}),
    "jobs/overnight-fal.yaml": (8, 16, 7.70, {"5": 10, "10": 6}),
    "jobs/overnight-quickrouter.yaml": (8, 16, 7.70, {"5": 10, "10": 6}),
}


def plan_json(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["plan", "--json", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_every_example_and_job_spec_is_pinned(repo: Path) -> None:
    """Each file in examples/ and jobs/ has its counts and cost pinned here."""
    shipped = {str(p.relative_to(repo)) for d in ("examples", "jobs") for p in (repo / d).iterdir()}
    assert shipped == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_plan_counts_and_costs(repo: Path, name: str) -> None:
    """plan --json gives the right job count, cost and price breakdown."""
    records, jobs, cost, by_duration = EXPECTED[name]
    data = plan_json(str(repo / name))
    assert data["records"] == records
    assert data["jobs"] == jobs
    assert data["estimated_cost_usd"] == pytest.approx(cost)
    breakdown = data["breakdown"]
    assert isinstance(breakdown, list)
    assert {g["duration"]: g["jobs"] for g in breakdown} == by_duration


def test_plan_text_output(repo: Path) -> None:
    """The human summary names jobs, breakdown, cost and output folder."""
    result = CliRunner().invoke(cli, ["plan", str(repo / "jobs/demo.yaml")])
    assert result.exit_code == 0, result.output
    assert "jobs:     8" in result.stdout
    assert "duration=10: 2 jobs, $1.40" in result.stdout
    assert "estimated cost: $3.50" in result.stdout
    assert f"output:   {repo / 'out' / 'demo'}" in result.stdout


def test_set_and_endpoint_flags_override_the_spec(repo: Path) -> None:
    """--set changes a default for every row that leaves the cell blank."""
    data = plan_json(str(repo / "examples/prompts.yaml"), "--set", "duration=10")
    # Two rows set duration themselves ("10" and "5"); the other two take --set.
    assert data["breakdown"] == [
        {"duration": "5", "jobs": 1, "cost_usd": 0.35},
        {"duration": "10", "jobs": 3, "cost_usd": 2.1},
    ]
    unknown = plan_json(str(repo / "examples/prompts.yaml"), "--endpoint", "me/model/v1")
    assert unknown["estimated_cost_usd"] is None


def test_plan_without_target_is_a_usage_error() -> None:
    """plan with nothing to plan exits 2 with a hint."""
    result = CliRunner().invoke(cli, ["plan"])
    assert result.exit_code == 2
    assert "give a prompt file or a job spec" in result.output
