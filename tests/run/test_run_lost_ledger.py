"""A lost ledger is not a fresh start: it is rebuilt from manifest.jsonl, or the run refuses."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from runs import (
    FAST,
    SETTINGS,
    assert_all_verified,
    connection,
    manifest,
    mock_config,
    plan_for,
    prompts,
    rows,
    run,
)
from test_run_resume import until

from batchgen.errors import UsageError
from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
from batchgen.mock import MockServer
from batchgen.plan.build import Plan, build_plan
from batchgen.run.progress import Reporter
from batchgen.run.runner import Runner

S = JobStatus


def lose_ledger(out: Path, *, empty: bool = False) -> None:
    for name in ("batchgen.db", "batchgen.db-wal", "batchgen.db-shm"):
        (out / name).unlink(missing_ok=True)
    if empty:
        (out / "batchgen.db").write_bytes(b"")


def videos(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.glob("videos/*.mp4")}


@pytest.mark.parametrize("empty", [False, True], ids=["deleted", "empty file"])
async def test_lost_ledger_of_a_finished_run_is_rebuilt(tmp_path: Path, empty: bool) -> None:
    """A finished folder whose ledger was deleted (or left an empty file) is rebuilt from its
    manifest: nothing is submitted or downloaded again, every video keeps its bytes, and the
    run says what it did."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 6), out)
    async with MockServer(mock_config()) as server:
        assert (await run(plan, server)).outcome == "done"
        before, first = videos(out), {r["key"]: r["request_id"] for r in manifest(out)}
        requests = dict(server.stats()["requests"])
        lose_ledger(out, empty=empty)
        reporter = Reporter()
        result = await run(plan, server, reporter=reporter)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert stats["requests"] == requests  # not one request more
    assert videos(out) == before
    assert {job.key: job.request_id for job in rows(out)} == first
    assert any("rebuilt 6 job(s) from manifest.jsonl" in note for note in reporter.notes)


async def test_ledger_lost_with_jobs_in_flight_follows_them(tmp_path: Path) -> None:
    """A ledger lost while jobs were in flight: the rebuilt ledger follows them by their
    request ids, and no job is submitted twice."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 8), out)
    async with MockServer(mock_config(latency=300.0)) as server:
        runner = Runner(plan, connection(server), timing=FAST)
        task = asyncio.create_task(runner.run())
        await until(lambda: sum(server.stats()["submits_by_payload"].values()) == 8)
        await until(lambda: all(job.request_id for job in rows(out)))  # every answer recorded
        runner.abort()
        await task
        assert {r["status"] for r in manifest(out)} <= {"queued", "running", "done"}
        lose_ledger(out)
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert all(n == 1 for n in stats["submits_by_payload"].values())


async def test_videos_without_ledger_or_manifest_are_refused(tmp_path: Path) -> None:
    """Videos in a folder with neither ledger nor manifest: the run refuses (nothing sent),
    rather than generate them all again."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 3), out)
    async with MockServer(mock_config()) as server:
        assert (await run(plan, server)).outcome == "done"
        lose_ledger(out)
        (out / "manifest.jsonl").unlink()
        with pytest.raises(UsageError, match=r"holds 3 video.*no manifest.jsonl to rebuild"):
            await run(plan, server)
        assert sum(server.stats()["submits_by_payload"].values()) == 3


async def test_rebuilt_ledger_keeps_jobs_no_longer_in_the_input(tmp_path: Path) -> None:
    """A job whose row was edited away, recorded in the manifest, comes back as not in the
    input, with its video; the edited row runs as a new job."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 3)
    async with MockServer(mock_config()) as server:
        assert (await run(plan_for(source, out), server)).outcome == "done"
        lose_ledger(out)
        text = source.read_text(encoding="utf-8").replace("shot 1:", "shot one:")
        source.write_text(text, encoding="utf-8")
        result = await run(plan_for(source, out), server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    jobs = rows(out)
    assert len(jobs) == 4
    assert [job.in_input for job in jobs].count(False) == 1
    assert {job.status for job in jobs} == {S.DONE}
    assert sum(stats["submits_by_payload"].values()) == 4


async def test_ledger_lost_while_videos_download_fetches_them(tmp_path: Path) -> None:
    """A ledger lost while videos were downloading: the rebuilt ledger (whose manifest names
    no path for them) fetches each from its URL, with no traceback and no submit again."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 4), out)
    async with MockServer(mock_config(fault_file_503=1.0)) as server:
        runner = Runner(plan, connection(server), timing=FAST)
        task = asyncio.create_task(runner.run())
        await until(
            lambda: (
                (out / "batchgen.db").exists()
                and sum(job.status is S.DOWNLOADING for job in rows(out)) == 4
            )
        )
        runner.abort()
        await task
        assert {r["status"] for r in manifest(out)} == {"downloading"}
        assert {r["video_path"] for r in manifest(out)} == {None}
        lose_ledger(out)
        server.config.fault_file_503 = 0.0
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert all(n == 1 for n in stats["submits_by_payload"].values())


def manifest_before_their_submits(out: Path, count: int) -> set[str]:
    """Rewrite manifest.jsonl as if written before the last ``count`` jobs were submitted
    (pending, no request id), dated a second before the first of those submits; their keys."""
    records = manifest(out)
    late = [r for r in records if r["status"] in ("queued", "running")][-count:]
    for record in late:
        record.update(status="pending", request_id=None, attempts=0, submitted_at=None)
    lines = [json.dumps(record) for record in records]
    (out / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sent = min(job.submitted_at or 0.0 for job in rows(out) if job.key in {r["key"] for r in late})
    os.utime(out / "manifest.jsonl", (sent - 1, sent - 1))
    return {record["key"] for record in late}


async def stopped_in_flight(plan: Plan, server: MockServer, out: Path, jobs: int) -> None:
    """Run ``plan`` until its ``jobs`` are submitted and recorded, then stop it at once."""
    runner = Runner(plan, connection(server), timing=FAST)
    task = asyncio.create_task(runner.run())
    await until(lambda: sum(server.stats()["submits_by_payload"].values()) == jobs)
    await until(lambda: all(job.request_id for job in rows(out)))
    runner.abort()
    await task


@pytest.mark.parametrize("killed_rebuilding", [False, True])
async def test_jobs_the_manifest_missed_are_found_in_the_request_log(
    tmp_path: Path, killed_rebuilding: bool
) -> None:
    """A ledger lost with jobs submitted after the manifest's last write: the rebuild finds
    them in the provider's request log and follows them; none is submitted twice. The same
    when the run that began the rebuild was killed before it ended (the next one rebuilds)."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 8), out)
    async with MockServer(mock_config(latency=300.0)) as server:
        await stopped_in_flight(plan, server, out, 8)
        missed = manifest_before_their_submits(out, 3)
        since = (out / "manifest.jsonl").stat().st_mtime
        lose_ledger(out)
        if killed_rebuilding:  # what a run killed at the start of its rebuild leaves
            with Ledger.in_folder(out) as ledger:
                ledger.set_meta("rebuilt_from_manifest", {"since": since})
        reporter = Reporter()
        logged = replace(connection(server), platform_url=server.base_url)  # its request log
        result = await Runner(plan, logged, timing=FAST, reporter=reporter).run()
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert set(stats["submits_by_payload"].values()) == {1}
    assert any("3 job(s) the manifest did not know" in note for note in reporter.notes)
    assert all(job.attempts == 1 for job in rows(out) if job.key in missed)
    with Ledger.in_folder(out, readonly=True) as ledger:
        assert not ledger.meta("rebuilt_from_manifest")


async def test_a_ledger_lost_before_the_first_manifest_tick_is_still_rebuilt(
    tmp_path: Path,
) -> None:
    """The manifest is written before the first submit: a ledger lost seconds into a first
    run (long before the manifest's next write) is rebuilt, its submitted jobs found in the
    request log, none sent twice (hostile tester, 2026-12-07)."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 6), out)
    slow_manifest = replace(FAST, manifest_every=1000.0)
    async with MockServer(mock_config(latency=300.0)) as server:
        logged = replace(connection(server), platform_url=server.base_url)
        runner = Runner(plan, logged, timing=slow_manifest)
        task = asyncio.create_task(runner.run())
        await until(lambda: sum(server.stats()["submits_by_payload"].values()) >= 3)
        assert (out / "manifest.jsonl").exists()
        runner.abort()
        await task
        lose_ledger(out)
        reporter = Reporter()
        result = await Runner(plan, logged, timing=FAST, reporter=reporter).run()
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert set(stats["submits_by_payload"].values()) == {1}
    assert any("rebuilt 6 job(s)" in note for note in reporter.notes)


async def test_a_later_attempt_the_manifest_missed_is_followed_not_the_earlier(
    tmp_path: Path,
) -> None:
    """The manifest saw two jobs in flight by an earlier attempt (an id the provider no
    longer shows), the lost ledger a later submit of each: the rebuild follows the later one
    found in the request log; nothing is sent again (chaos seed 10, 2026-12-07)."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 6), out)
    async with MockServer(mock_config(latency=300.0)) as server:
        logged = replace(connection(server), platform_url=server.base_url)
        runner = Runner(plan, logged, timing=FAST)
        task = asyncio.create_task(runner.run())
        await until(lambda: sum(server.stats()["submits_by_payload"].values()) == 6)
        await until(lambda: all(job.request_id for job in rows(out)))
        runner.abort()
        await task
        records = manifest(out)
        for n, record in enumerate(records[:2]):
            earlier = datetime.now(UTC) - timedelta(seconds=30)
            record.update(
                status="queued",
                request_id=f"earlier-attempt-{n}",
                submitted_at=earlier.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        text = "\n".join(json.dumps(record) for record in records) + "\n"
        (out / "manifest.jsonl").write_text(text, encoding="utf-8")
        lose_ledger(out)
        result = await Runner(plan, logged, timing=FAST).run()
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert set(stats["submits_by_payload"].values()) == {1}
    assert not any(job.request_id.startswith("earlier") for job in rows(out) if job.request_id)


async def test_jobs_with_local_files_the_manifest_missed_are_found_too(tmp_path: Path) -> None:
    """Image-to-video jobs sent their uploaded URLs, not the planned sha256 references: a
    rebuild matches them in the request log with their file places left out, and none is
    submitted twice; two jobs that differ only by their image are never paired by a guess
    (flagged possibly duplicate instead)."""
    from test_run_uploads import emulator, image, image_plan

    out = tmp_path / "out"
    shots = [image(tmp_path, f"{name}.png") for name in ("cat", "dog", "owl", "cat", "dog")]
    plan = image_plan(tmp_path, out, shots)
    async with emulator(plan, latency=300.0) as server:
        await stopped_in_flight(plan, server, out, 5)
        missed = manifest_before_their_submits(out, 3)
        lose_ledger(out)
        reporter = Reporter()
        logged = replace(connection(server), platform_url=server.base_url)
        result = await Runner(plan, logged, timing=FAST, reporter=reporter).run()
        stats = server.stats()
    assert result.outcome == "done", result.message
    # Uploaded again after the loss, each file has a new URL: count submits, not payloads.
    assert sum(stats["submits_by_payload"].values()) == 5
    assert any("3 job(s) the manifest did not know" in note for note in reporter.notes)
    assert all(job.attempts == 1 for job in rows(out) if job.key in missed)


async def test_jobs_told_apart_only_by_their_files_are_flagged_not_guessed(
    tmp_path: Path,
) -> None:
    """Two rows with one prompt and different images, submitted after the manifest's last
    write: the log cannot tell whose request is whose, so neither is adopted; both are
    flagged possibly duplicate and each ends with its own image's video."""
    from test_run_uploads import SPEC, emulator, image

    out = tmp_path / "out"
    cat, dog = image(tmp_path, "cat.png"), image(tmp_path, "dog.png")
    spec = tmp_path / "i2v.yaml"
    spec.write_text(SPEC)
    source = tmp_path / "same.csv"
    source.write_text(f"prompt,image_url\nthe same words,{cat}\nthe same words,{dog}\n")
    plan = build_plan(source, endpoint_spec=spec, output=out, run=SETTINGS)
    async with emulator(plan, latency=300.0) as server:
        await stopped_in_flight(plan, server, out, 2)
        manifest_before_their_submits(out, 2)
        lose_ledger(out)
        reporter = Reporter()
        logged = replace(connection(server), platform_url=server.base_url)
        result = await Runner(plan, logged, timing=FAST, reporter=reporter).run()
        sent = sum(server.stats()["submits_by_payload"].values())
    assert result.outcome == "done", result.message
    assert sent == 4  # each sent again, honestly flagged, rather than paired by a guess
    assert any("2 job(s) differ only by their local files" in n for n in reporter.notes)
    assert [job.possibly_duplicate for job in rows(out)] == [True, True]
