"""`plan --jobs`, what an output folder already holds, and default folders never mixed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from runs import rows

from batchgen.cli import cli
from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
from batchgen.plan.build import build_plan

FAST = ["--progress", "none", "--time-scale", "0.001"]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.output


def invoke_env(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.output


def sheet(path: Path, *prompts: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id,prompt,duration\n" + "".join(f"{i},{p},5\n" for i, p in enumerate(prompts)))
    return path


def test_plan_jobs_lists_every_job_as_a_table_or_json(tmp_path: Path) -> None:
    """--jobs: row, key, price, file, payload per job; with --json, every value whole."""
    path = sheet(tmp_path / "p.csv", "a cat", "a dog " + "x" * 60)
    code, output = invoke("plan", str(path), "--jobs")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].split() == ["row", "key", "price", "file", "payload"]
    assert lines[1].split()[0] == "1"
    assert lines[1].split()[2] == "$0.35"
    assert '"prompt": "a cat"' in lines[1]
    assert "x…" in lines[2]
    assert "jobs:     2" in output
    code, output = invoke("plan", str(path), "--jobs", "--json")
    data = json.loads(output)
    assert [job["row"] for job in data["job_list"]] == [1, 2]
    first = data["job_list"][0]
    assert first["payload"]["prompt"] == "a cat"
    assert first["extra"] == {"id": "0"}
    assert first["filename"].endswith(f"-{first['key'][:8]}.mp4")
    assert first["cost_usd"] == 0.35
    assert data["folder"] is None


def test_plan_says_what_the_folder_holds(tmp_path: Path) -> None:
    """After a run, plan --out counts jobs done, new and left over, read-only."""
    out = tmp_path / "out"
    path = sheet(tmp_path / "p.csv", "a cat", "a dog", "a cow")
    assert invoke("run", str(path), "--mock", "--out", str(out), *FAST)[0] == 0
    sheet(path, "a cat", "a dog", "a hen", "a pig")
    before = (out / "batchgen.db").read_bytes()
    code, output = invoke("plan", str(path), "--out", str(out))
    assert code == 0, output
    assert "  in the folder: 2 done, 2 new, 1 left over (no longer in the input)\n" in output
    code, output = invoke("plan", str(path), "--out", str(out), "--json")
    assert json.loads(output)["folder"] == {"done": 2, "unfinished": 0, "new": 2, "left_over": 1}
    assert (out / "batchgen.db").read_bytes() == before


def test_default_folder_never_mixes_unrelated_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """out/NAME holding another input's run: plan and run refuse unless --out names it or
    --add; the same input edited is fine."""
    monkeypatch.chdir(tmp_path)
    first = sheet(Path("a/prompts.csv"), "a cat", "a dog")
    second = sheet(Path("b/prompts.csv"), "a cow")
    assert invoke("run", str(first), "--mock", *FAST)[0] == 0
    for args in (["plan", str(second)], ["run", str(second), "--mock", *FAST]):
        code, output = invoke(*args)
        assert code == 2, output
        assert output == (
            "error: out/prompts holds the run of another input, a/prompts.csv, not "
            "b/prompts.csv; nothing was sent. Give this batch its own folder with --out DIR, "
            "or add it to that one with --out out/prompts (or --add)\n"
        )
    assert invoke("plan", str(second), "--out", "out/prompts")[0] == 0
    assert invoke("plan", str(second), "--add")[0] == 0
    sheet(first, "a cat", "a dog", "a hen")  # the same input, edited
    code, output = invoke("plan", str(first))
    assert code == 0, output
    assert "in the folder: 2 done, 1 new, 0 left over" in output
    assert invoke("run", str(second), "--mock", "--add", *FAST)[0] == 0


def test_a_mock_folder_and_a_real_run_never_mix(tmp_path: Path) -> None:
    """After a --mock run, the real run of the same sheet into that folder is refused
    (exit 2, nothing sent) with the folder to use, also once its ledger is lost (run.json
    says); a --mock run into a real run's folder likewise, but not into one whose runs sent
    nothing yet."""
    source = tmp_path / "prompts.csv"
    source.write_text("prompt\na fox\na hare\n")
    out = tmp_path / "out"
    assert invoke("run", str(source), "--mock", "--out", str(out), *FAST)[0] == 0
    args = ("run", str(source), "--out", str(out), *FAST)
    code, output = invoke_env({"FAL_KEY": "fake-key"}, *args)
    assert code == 2, output
    assert f"{out} holds an emulator run: its videos are the emulator's, not a model's" in output
    assert f"--out {out}-real" in output
    assert {job.status for job in rows(out)} == {JobStatus.DONE}
    for name in ("batchgen.db", "batchgen.db-wal", "batchgen.db-shm"):
        (out / name).unlink(missing_ok=True)
    code, output = invoke_env({"FAL_KEY": "fake-key"}, *args)
    assert code == 2, output
    assert "holds an emulator run" in output
    real = tmp_path / "real"
    plan = build_plan(source, output=real)
    with Ledger.in_folder(real) as ledger:  # as a real run leaves its folder
        ledger.sync(plan.jobs, plan.endpoint.id)
        ledger.set_meta("run", {"target": str(source), "mock": False, "options": {}})
        key = plan.jobs[0].key
        ledger.transition(key, JobStatus.SUBMITTING, attempts=1)
        ledger.transition(key, JobStatus.QUEUED, request_id="r-1")
    unsent = tmp_path / "unsent"
    with Ledger.in_folder(unsent) as ledger:
        ledger.sync(plan.jobs, plan.endpoint.id)
        ledger.set_meta("run", {"target": str(source), "mock": False, "options": {}})
    assert invoke("run", str(source), "--mock", "--out", str(unsent), *FAST)[0] == 0
    code, output = invoke("run", str(source), "--mock", "--out", str(real), *FAST)
    assert code == 2, output
    assert f"{real} holds a real run; an emulator run would add the emulator's videos" in output


def test_forgetting_the_endpoint_does_not_join_another_endpoints_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default folder of a sheet run on Veo 3.1: planning the same sheet without
    --endpoint (the default Kling) is refused, naming the endpoint of the folder's run."""
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "shots.csv"
    source.write_text("prompt\na fox\n")
    assert invoke("run", "shots.csv", "--endpoint", "fal-ai/veo3.1", "--mock", *FAST)[0] == 0
    code, output = invoke("plan", "shots.csv")
    assert code == 2, output
    assert "holds this input's run on fal-ai/veo3.1" in output
    assert "--endpoint fal-ai/veo3.1" in output
    assert invoke("plan", "shots.csv", "--endpoint", "fal-ai/veo3.1")[0] == 0
