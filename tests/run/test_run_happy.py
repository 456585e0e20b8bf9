"""The run engine on a clean emulator: everything done, verified, recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner
from runs import (
    KEY,
    REPO,
    assert_all_verified,
    manifest,
    mock_config,
    plan_for,
    prompts,
    rows,
    run,
)

from batchgen.cli import cli
from batchgen.mock import MockServer
from batchgen.run.progress import Reporter


async def test_happy_path_downloads_every_video(tmp_path: Path) -> None:
    """Every job ends done with a verified file, submitted exactly once."""
    out = tmp_path / "out"
    async with MockServer(mock_config()) as server:
        result = await run(plan_for(prompts(tmp_path, 30), out), server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert sorted(stats["submits_by_payload"].values()) == [1] * 30
    assert all(job.attempts == 1 and not job.possibly_duplicate for job in rows(out))


async def test_manifest_run_json_and_log_are_written(tmp_path: Path) -> None:
    """manifest.csv/jsonl list every job in input order; run.json (times in ISO 8601 UTC)
    and the log hold no key."""
    out = tmp_path / "out"
    async with MockServer(mock_config()) as server:
        await run(plan_for(prompts(tmp_path, 6), out), server)
    records = manifest(out)
    assert [r["row"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert {r["status"] for r in records} == {"done"}
    assert records[0]["notes"] == "note 0"
    assert (out / "manifest.csv").read_text(encoding="utf-8-sig").startswith("row,key,")
    info = json.loads((out / "run.json").read_text())
    assert info["outcome"] == "done"
    assert info["input_sha256"]
    assert info["endpoint_spec_digest"]
    for name in ("started_at", "finished_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info[name]), info[name]
    assert info["started_at"] <= info["finished_at"]
    log = (out / "batchgen.log").read_text()
    assert "POST /fal-ai/kling-video/v2.5-turbo/pro/text-to-video 200" in log
    assert "/status 20" in log
    for text in (log, (out / "run.json").read_text()):
        assert KEY not in text
        assert "Authorization" not in text


async def test_stream_mode_completes_without_polling(tmp_path: Path) -> None:
    """--poll stream follows each job on its event stream: no status polls needed."""
    out = tmp_path / "out"
    async with MockServer(mock_config()) as server:
        result = await run(plan_for(prompts(tmp_path, 12), out, poll="stream"), server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert "status" not in stats["requests"]
    assert sum(stats["requests"]["stream"].values()) == 12


async def test_concurrency_bounds_jobs_in_flight(tmp_path: Path) -> None:
    """Never more than --concurrency jobs are submitted and unfinished at the provider."""
    out = tmp_path / "out"
    seen: list[int] = []

    class Watch(Reporter):
        def _changed(self) -> None:
            counts = server.emulator.queue.counts
            seen.append(sum(n for state, n in counts.items() if state != "COMPLETED"))

    async with MockServer(mock_config(max_in_progress=10)) as server:
        result = await run(
            plan_for(prompts(tmp_path, 25), out, concurrency=3), server, reporter=Watch()
        )
    assert result.outcome == "done"
    assert max(seen) <= 3
    assert max(seen) == 3


async def test_rerun_of_a_finished_folder_sends_nothing(tmp_path: Path) -> None:
    """Running a finished folder again submits nothing and polls nothing."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 5)
    async with MockServer(mock_config()) as server:
        await run(plan_for(source, out), server)
        before = server.stats()["requests"]
        result = await run(plan_for(source, out), server)
        after = server.stats()["requests"]
    assert result.outcome == "done"
    assert before == after


def test_mock_demo_runs_end_to_end(tmp_path: Path) -> None:
    """`batchgen run jobs/demo.yaml --mock` runs the README demo with no key and no network."""
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(REPO / "jobs" / "demo.yaml"),
            "--mock",
            "--out",
            str(out),
            "--progress",
            "none",
            "--time-scale",
            "0.002",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(list((out / "videos").glob("*.mp4"))) == 8
    assert not list(out.rglob("*.part"))


async def test_run_json_keeps_every_run_of_the_folder(tmp_path: Path) -> None:
    """Each run of a folder adds its start, end and outcome to run.json's runs, so the report
    can tell the batch's story; the first run's start stays first_started_at."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 2), out)
    async with MockServer(mock_config()) as server:
        for _ in range(3):
            assert (await run(plan, server)).outcome == "done"
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert [r["outcome"] for r in info["runs"]] == ["done", "done", "done"]
    assert info["runs"][0]["started_at"] == info["first_started_at"]
    assert info["runs"][-1]["started_at"] == info["started_at"]
    assert all(r["finished_at"] >= r["started_at"] for r in info["runs"])
