"""What users do to the input between runs: insert rows, edit a prompt while its job runs."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

from click.testing import CliRunner
from runs import FAST, SETTINGS, connection, manifest, mock_config, rows, run
from test_run_resume import until

from batchgen.cli import cli
from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer
from batchgen.mock.stats import payload_digest
from batchgen.plan.build import Plan, build_plan
from batchgen.run.runner import Runner

S = JobStatus


def write(path: Path, prompts: list[str]) -> Path:
    path.write_text("prompt\n" + "".join(f"{p}\n" for p in prompts), encoding="utf-8")
    return path


def plan_of(source: Path, out: Path, template: str | None = None) -> Plan:
    return build_plan(source, output=out, filename=template, run=SETTINGS)


def digests(out: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (out / "videos").glob("*.mp4")
    }


async def test_inserted_row_never_overwrites_another_jobs_video(tmp_path: Path) -> None:
    """With --filename '{row:04d}', a row inserted at the top gets a name of its own: every
    earlier video keeps its bytes, and no two manifest rows point at one file; a stray file
    already in videos/ under a planned name is not replaced either."""
    out = tmp_path / "out"
    source = write(tmp_path / "p.csv", ["a fox", "a boat", "a kite"])
    async with MockServer(mock_config()) as server:
        assert (await run(plan_of(source, out, "{row:04d}"), server)).outcome == "done"
        before = digests(out)
        assert sorted(before) == ["0001.mp4", "0002.mp4", "0003.mp4"]
        (out / "videos" / "0005.mp4").write_bytes(b"a file of the user's")
        write(source, ["a new first row", "a fox", "a boat", "a kite", "a fifth"])
        result = await run(plan_of(source, out, "{row:04d}"), server)
    assert result.outcome == "done", result.message
    after = digests(out)
    for name, digest in before.items():
        assert after[name] == digest
    assert (out / "videos" / "0005.mp4").read_bytes() == b"a file of the user's"
    paths = [record["video_path"] for record in manifest(out)]
    assert len(paths) == len(set(paths)) == 5
    assert len(after) == 6  # five videos and the user's file
    by_prompt = {job.payload["prompt"]: job for job in rows(out)}
    assert by_prompt["a fox"].filename == "0001.mp4"
    assert by_prompt["a new first row"].filename.startswith("0001-")
    assert by_prompt["a fifth"].filename.startswith("0005-")


async def test_job_whose_row_was_edited_is_followed_to_its_end(tmp_path: Path) -> None:
    """A prompt edited while its job runs: the resumed run follows the old job to done and
    keeps its video (listed in the manifest with in_input false, and by status) beside the
    new one; nothing is submitted twice, nothing left in flight."""
    out = tmp_path / "out"
    source = write(tmp_path / "p.csv", ["a fox", "a boat"])
    async with MockServer(mock_config(latency=300.0)) as server:
        runner = Runner(plan_of(source, out), connection(server), timing=FAST)
        task = asyncio.create_task(runner.run())
        await until(lambda: sum(server.stats()["submits_by_payload"].values()) == 2)
        runner.abort()
        await task
        old = {job.payload["prompt"]: job for job in rows(out)}["a fox"]
        assert old.status in (S.QUEUED, S.RUNNING)
        write(source, ["a red fox", "a boat"])
        result = await run(plan_of(source, out), server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert all(n == 1 for n in stats["submits_by_payload"].values())
    assert stats["submits_by_payload"][payload_digest(old.payload)] == 1
    jobs = {job.key: job for job in rows(out)}
    assert jobs[old.key].status is S.DONE
    assert not jobs[old.key].in_input
    assert (out / str(jobs[old.key].video_path)).is_file()
    records = {record["key"]: record for record in manifest(out)}
    assert records[old.key]["in_input"] is False
    assert sum(record["in_input"] for record in records.values()) == 2
    status = CliRunner().invoke(cli, ["status", str(out), "--json"])
    data = json.loads(status.output)
    assert (data["not_in_input"], data["in_flight"], data["counts"]["done"]) == (1, [], 3)
    assert "no longer in the input: 1" in CliRunner().invoke(cli, ["status", str(out)]).output
