"""Runs over several endpoints: every job submitted to, followed on and read from its own."""

from __future__ import annotations

import json
from pathlib import Path

from mixes import KLING, OTHER, OTHER_SPEC
from runs import SETTINGS, assert_all_verified, manifest, mock_config, rows, run

from batchgen.folder.status import read_status, render
from batchgen.mock import MockServer
from batchgen.plan.build import build_plan
from batchgen.plan.endpoint import builtin_specs, parse_spec


def two_endpoints(tmp_path: Path) -> Path:
    (tmp_path / "other.yaml").write_text(OTHER_SPEC, encoding="utf-8")
    (tmp_path / "p.csv").write_text(
        "prompt,notes\n" + "".join(f"shot {i},n{i}\n" for i in range(6)), encoding="utf-8"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "input: p.csv\nendpoint_spec: other.yaml\n"
        f"matrix:\n  endpoint: [{KLING}, {OTHER}]\n"
        f"per_endpoint:\n  {OTHER}:\n    duration: 4s\n",
        encoding="utf-8",
    )
    return spec


def config_with_other() -> dict[str, object]:
    specs = builtin_specs()
    specs[OTHER] = parse_spec(OTHER_SPEC, "other.yaml")
    return {"specs": specs}


async def test_a_two_endpoint_matrix_runs_each_job_on_its_endpoint(tmp_path: Path) -> None:
    """12 jobs (6 rows x 2 endpoints): 6 submitted to each, all verified, the manifest and
    run.json name each job's endpoint, and a second run submits nothing."""
    out = tmp_path / "out"
    plan = build_plan(two_endpoints(tmp_path), output=out, run=SETTINGS)
    async with MockServer(mock_config(**config_with_other())) as server:
        result = await run(plan, server)
        stats = server.stats()
        again = await run(build_plan(two_endpoints(tmp_path), output=out, run=SETTINGS), server)
        after = server.stats()
    assert result.outcome == "done", result.message
    assert stats["submits_by_endpoint"] == {KLING: 6, OTHER: 6}
    assert_all_verified(out, stats)
    assert {(r.endpoint, r.payload["duration"]) for r in rows(out)} == {(KLING, "5"), (OTHER, "4s")}
    records = manifest(out)
    assert [r["endpoint"] for r in records[:2]] == [KLING, OTHER]
    assert records[1]["generate_audio"] is True
    assert records[0]["generate_audio"] is None  # not a parameter of Kling: not sent
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert set(info["endpoints"]) == {KLING, OTHER}
    assert info["endpoints"][OTHER]["source"].endswith("other.yaml")
    assert again.outcome == "done"
    assert after["submits_by_endpoint"] == stats["submits_by_endpoint"]


async def test_status_counts_each_endpoint(tmp_path: Path) -> None:
    """status of a comparison folder says how far each endpoint got and what it spent."""
    out = tmp_path / "out"
    plan = build_plan(two_endpoints(tmp_path), output=out, run=SETTINGS)
    async with MockServer(mock_config(**config_with_other())) as server:
        await run(plan, server)
    status = read_status(out)
    assert status.endpoint == "2 endpoints"
    assert status.by_endpoint == {
        KLING: {"jobs": 6, "done": 6, "failed": 0, "spent_usd": 2.1},
        OTHER: {"jobs": 6, "done": 6, "failed": 0, "spent_usd": 3.0},
    }
    text = render(status)
    assert f"  {OTHER}: 6/6 done, spent $3.00" in text.splitlines()


async def test_an_endpoint_the_provider_lacks_fails_only_its_own_jobs(tmp_path: Path) -> None:
    """In a comparison, a submit answered 404 (no such app at this provider) fails that
    endpoint's jobs, unbilled and retryable; the other endpoint's jobs all run."""
    out = tmp_path / "out"
    plan = build_plan(two_endpoints(tmp_path), output=out, run=SETTINGS)
    async with MockServer(mock_config()) as server:  # the emulator knows no OTHER
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "failed", result.message
    assert stats["submits_by_endpoint"] == {KLING: 6}
    by_endpoint = {(r.endpoint, r.status.value, r.error_type, r.attempts) for r in rows(out)}
    assert by_endpoint == {(KLING, "done", None, 1), (OTHER, "failed", "endpoint_unknown", 0)}
    other = read_status(out).by_endpoint[OTHER]
    assert other == {"jobs": 6, "done": 0, "failed": 6, "spent_usd": 0.0}
    assert read_status(out).committed_usd == read_status(out).spent_usd
