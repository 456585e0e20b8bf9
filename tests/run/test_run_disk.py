"""Videos that cannot be written: the job fails with the reason; a failing disk stops the run.

Tests run as root, where chmod stops no write: an unwritable place is made with a regular file
where the ``videos`` folder should be, or a folder where a video should go; a full disk is a
real small tmpfs (the ``small_disk`` fixture).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from runs import (
    assert_all_verified,
    cli_args,
    mock_config,
    plan_for,
    prompts,
    rows,
    run,
    subprocess_env,
)
from test_run_resume import until

from batchgen.cli import cli
from batchgen.errors import DiskError
from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer
from batchgen.mock.stats import payload_digest
from batchgen.run.download_pool import DISK_ERRORS_IN_A_ROW

S = JobStatus


async def test_one_unwritable_video_fails_only_its_job(tmp_path: Path) -> None:
    """A folder in the way of one video's download fails that job with the system's reason;
    the others end done and the run goes on (one bad file is not a bad disk)."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 6), out)
    blocked = plan.jobs[2]
    (out / "videos" / f"{blocked.filename}.part").mkdir(parents=True)
    async with MockServer(mock_config()) as server:
        result = await run(plan, server)
    assert result.outcome == "failed"
    assert result.message.startswith("5 of 6 done; 1 failed; spent $")
    for job in rows(out):
        if job.key != blocked.key:
            assert job.status is S.DONE
            continue
        assert job.status is S.FAILED
        assert job.error == f"cannot write videos/{blocked.filename}: Is a directory"
        assert job.error_type == "disk"


async def test_failing_disk_stops_the_run_and_retry_downloads_again(tmp_path: Path) -> None:
    """`videos` is a file: the run stops after a few failures in a row (exit 1, a clear
    message, no traceback); once fixed, --retry-failed downloads them, submitting nothing."""
    source = prompts(tmp_path, 24)
    out = tmp_path / "out"
    out.mkdir()
    (out / "videos").write_text("a file where the videos folder should be")
    async with MockServer(mock_config(latency=50.0)) as server:
        args = cli_args(source, out, server.base_url, concurrency=4, download_concurrency=1)[3:]
        result = await asyncio.to_thread(CliRunner().invoke, cli, args, env=subprocess_env())
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert f"stopped: {DISK_ERRORS_IN_A_ROW} videos in a row could not be written" in (
            result.output
        )
        assert "Not a directory" in result.output
        jobs = rows(out)
        failed = [job for job in jobs if job.status is S.FAILED]
        assert len(failed) == DISK_ERRORS_IN_A_ROW
        for job in failed:
            assert job.error == f"cannot write videos/{job.filename}: Not a directory"
        # Jobs in flight at the stop were followed to their video URL, not downloaded.
        assert {job.status for job in jobs} <= {S.FAILED, S.DOWNLOADING, S.PENDING}
        assert any(job.status is S.DOWNLOADING for job in jobs)
        submitted = sum(server.stats()["submits_by_payload"].values())
        assert submitted < 24  # it stopped submitting

        (out / "videos").unlink()
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, [*args, "--retry-failed"], env=subprocess_env()
        )
        stats = server.stats()
    assert result.exit_code == 0, result.output
    assert_all_verified(out, stats)
    assert sorted(stats["submits_by_payload"].values()) == [1] * 24
    for job in failed:
        assert stats["files"][job.request_id]["downloads"] == 1  # the failed try sent nothing


async def test_unwritable_manifest_is_a_disk_error_not_a_traceback(tmp_path: Path) -> None:
    """An unwritable manifest ends the run with a DiskError naming the file, not an OSError,
    before anything is sent (the manifest is first written before the first submit)."""
    out = tmp_path / "out"
    (out / "manifest.csv").mkdir(parents=True)
    async with MockServer(mock_config()) as server:
        with pytest.raises(DiskError, match=r"cannot write .*manifest\.csv: Is a directory"):
            await run(plan_for(prompts(tmp_path, 2), out), server)
        assert server.stats()["submits_by_payload"] == {}
    assert [job.status for job in rows(out)] == [S.PENDING, S.PENDING]


def fill(folder: Path) -> Path:
    """Write a file into ``folder`` until its file system is full; return the file."""
    filler = folder / "filler"
    # Unbuffered: a buffered handle keeps the bytes a short write left over and raises
    # ENOSPC again when the ``with`` closes it.
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


async def test_full_disk_under_the_ledger_stops_cleanly_and_resumes(
    tmp_path: Path, small_disk: Path
) -> None:
    """The disk holding the ledger fills up mid-run (a real 1 MiB tmpfs): the run stops with
    one clear message and no exception, the ledger keeps its state, and once space is freed
    the same run resumes to done; any job paid twice is flagged."""
    out = small_disk / "out"
    plan = plan_for(prompts(tmp_path, 6), out)
    async with MockServer(mock_config(latency=300.0)) as server:
        task = asyncio.create_task(run(plan, server))
        await until(lambda: sum(server.stats()["submits_by_payload"].values()) == 6)
        filler = fill(small_disk)
        result = await task
        assert result.outcome == "failed"
        assert "disk is full" in result.message or "No space left" in result.message
        assert "run again" in result.message
        filler.unlink()
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    submits = stats["submits_by_payload"]
    for job in rows(out):
        assert submits[payload_digest(job.payload)] == 1 or job.possibly_duplicate
