"""Several `--endpoint-spec` files: two uncatalogued models in one plan and one run."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from mixes import OTHER, OTHER_SPEC

from batchgen.cli import cli

THIRD = "me/third/text-to-video"
THIRD_SPEC = f"""id: {THIRD}
typical_latency_s: 20
parameters:
  prompt: {{type: string, required: true}}
  seconds: {{type: integer, enum: [4, 8], default: 4}}
price: {{flat_usd: 0.2}}
"""
FAST = ["--progress", "none", "--time-scale", "0.001", "--mock-time-scale", "0.001"]


def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A prompt file and the two spec files."""
    (tmp_path / "p.csv").write_text("prompt\na red kite\na blue door\n", encoding="utf-8")
    (tmp_path / "other.yaml").write_text(OTHER_SPEC, encoding="utf-8")
    (tmp_path / "third.yaml").write_text(THIRD_SPEC, encoding="utf-8")
    return tmp_path / "p.csv", tmp_path / "other.yaml", tmp_path / "third.yaml"


def test_plan_with_two_spec_files_needs_the_endpoint_named(tmp_path: Path) -> None:
    """Two --endpoint-spec flags and no --endpoint: exit 2 saying what to do; with --endpoint
    naming one of them, that one is the plan's and the other goes unused, with a warning."""
    source, other, third = files(tmp_path)
    specs = ["--endpoint-spec", str(other), "--endpoint-spec", str(third)]
    refused = CliRunner().invoke(cli, ["plan", str(source), *specs])
    assert refused.exit_code == 2
    assert refused.output.splitlines() == [
        f"--endpoint-spec: 2 endpoint specs ({OTHER}, {THIRD}) and no endpoint named for the "
        "plan: name it with --endpoint ID (or endpoint: in a job spec), or each row's in an "
        f"'endpoint' column or the matrix (matrix: {{endpoint: [{OTHER}, {THIRD}]}})",
        "1 problem found; nothing was sent.",
    ]
    chosen = CliRunner().invoke(cli, ["plan", str(source), *specs, "--endpoint", THIRD, "--json"])
    assert chosen.exit_code == 0, chosen.output
    data = json.loads(chosen.stdout)
    assert (data["endpoints"], data["estimated_cost_usd"]) == ([THIRD], 0.4)
    assert data["warnings"] == [f"the endpoint spec for {OTHER!r} is not used: no row runs on it"]


def test_a_run_compares_two_spec_files_and_resumes_with_both(tmp_path: Path) -> None:
    """A job spec's matrix names both spec files' endpoints: the emulator runs every job,
    run.json records each spec with its source and digest, and `run --out DIR` plans again
    from both files."""
    source, other, third = files(tmp_path)
    job = tmp_path / "compare.yaml"
    job.write_text(
        f"input: {source.name}\nmatrix:\n  endpoint: [{OTHER}, {THIRD}]\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    specs = ["--endpoint-spec", str(other), "--endpoint-spec", str(third)]
    done = CliRunner().invoke(cli, ["run", str(job), *specs, "--mock", "--out", str(out), *FAST])
    assert done.exit_code == 0, done.output
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert {i: e["source"] for i, e in info["endpoints"].items()} == {
        OTHER: str(other),
        THIRD: str(third),
    }
    assert all(len(e["digest"]) == 64 for e in info["endpoints"].values())
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted((r["endpoint"], r["status"]) for r in manifest) == sorted(
        [(OTHER, "done"), (THIRD, "done")] * 2
    )
    again = CliRunner().invoke(cli, ["run", "--out", str(out), *FAST])
    assert again.exit_code == 0, again.output
    assert "4 of 4 done" in again.output
