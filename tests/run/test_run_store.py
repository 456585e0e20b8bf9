"""A run with ``--store``: videos streamed to an S3-compatible server (moto, on loopback)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from runs import mock_config, plan_for, prompts, rows, run
from s3server import BUCKET, S3

from batchgen.api import objectstore
from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer
from batchgen.run.download import DISK

PREFIX = "batch/one"


def assert_in_bucket(s3: S3, out: Path, stats: dict[str, Any]) -> None:
    """Every job done, its object holding what the emulator served, with that sha256 in
    its metadata; nothing half-way left in the bucket and no video in the folder."""
    jobs = rows(out)
    assert jobs
    for job in jobs:
        assert job.status is JobStatus.DONE, (job.key, job.error)
        key = f"{PREFIX}/{job.video_path}"
        served = stats["files"][job.request_id]
        assert s3.sha256(key) == served["sha256"] == job.sha256
        head = s3.head(key)
        assert head["ContentLength"] == served["size"] == job.bytes
        assert head["Metadata"] == {"sha256": served["sha256"]}
        assert head["ContentType"] == "video/mp4"
    keys = s3.keys(f"{PREFIX}/")
    assert not [k for k in keys if k.endswith(".part") or ".batchgen-probe" in k]
    assert s3.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert not (out / "videos").exists()


async def test_every_object_in_the_bucket_is_what_the_emulator_served(
    tmp_path: Path, s3: S3
) -> None:
    """Every video lands in the bucket with the sha256 and size the emulator served (also in
    its metadata); the manifest and run.json are there too, run.json naming the store."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 6), out, store=s3.url(PREFIX))
    async with MockServer(mock_config()) as server:
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done"
    assert_in_bucket(s3, out, stats)
    keys = set(s3.keys(f"{PREFIX}/"))
    assert {f"{PREFIX}/{name}" for name in ("manifest.csv", "manifest.jsonl", "run.json")} <= keys
    records = [json.loads(line) for line in s3.read(f"{PREFIX}/manifest.jsonl").splitlines()]
    assert [r["sha256"] for r in records] == [job.sha256 for job in rows(out)]
    info = json.loads(s3.read(f"{PREFIX}/run.json"))
    assert info["settings"]["store"] == f"s3://{BUCKET}/{PREFIX}"


async def test_large_videos_go_up_in_parts_and_broken_downloads_start_over(
    tmp_path: Path, s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Videos larger than a block go up as multipart uploads; downloads cut short by the file
    host start over; every object is still exactly what was served, no upload left open."""
    monkeypatch.setattr(objectstore, "BLOCK", 5 * 2**20)  # S3's smallest part
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 3), out, store=s3.url(PREFIX), download_concurrency=3)
    config = mock_config(video_bytes=6 * 2**20 + 123, fault_truncate=0.3, seed=9)  # cuts early
    async with MockServer(config) as server:
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done"
    assert_in_bucket(s3, out, stats)
    assert all(job.bytes is not None and job.bytes > 6 * 2**20 for job in rows(out))
    assert stats["faults"].get("truncate", 0) > 0


async def test_resume_fetches_again_only_the_missing_and_the_damaged_objects(
    tmp_path: Path, s3: S3
) -> None:
    """Resuming checks the bucket: a deleted object, one of the wrong size and one whose
    recorded sha256 differs are downloaded again from their URL, never generated again; the
    others are left alone."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 5), out, store=s3.url(PREFIX))
    async with MockServer(mock_config()) as server:
        assert (await run(plan, server)).outcome == "done"
        before = server.stats()
        jobs = rows(out)
        deleted, short, relabelled = (f"{PREFIX}/{job.video_path}" for job in jobs[:3])
        s3.client.delete_object(Bucket=BUCKET, Key=deleted)
        s3.client.put_object(Bucket=BUCKET, Key=short, Body=s3.read(short)[:-10])
        s3.client.copy_object(
            Bucket=BUCKET,
            Key=relabelled,
            CopySource={"Bucket": BUCKET, "Key": relabelled},
            MetadataDirective="REPLACE",
            Metadata={"sha256": hashlib.sha256(b"another video").hexdigest()},
        )
        assert (await run(plan, server)).outcome == "done"
        after = server.stats()
    assert_in_bucket(s3, out, after)
    assert after["requests"]["submit"] == before["requests"]["submit"]
    fetched = {
        rid: after["files"][rid]["downloads"] - before["files"][rid]["downloads"]
        for rid in before["files"]
    }
    again = {job.request_id for job in jobs[:3]}
    assert fetched == {job.request_id: int(job.request_id in again) for job in jobs}


async def test_a_file_store_keeps_each_hash_in_a_sidecar(tmp_path: Path) -> None:
    """A file:// store gets the videos, a NAME.mp4.sha256 beside each and the manifest; a
    video whose sidecar is gone counts as not stored and is fetched again."""
    out, store = tmp_path / "out", tmp_path / "bucket" / "batch"
    plan = plan_for(prompts(tmp_path, 3), out, store=store.as_uri())
    async with MockServer(mock_config()) as server:
        assert (await run(plan, server)).outcome == "done"
        jobs = rows(out)
        for job in jobs:
            video = store / str(job.video_path)
            assert hashlib.sha256(video.read_bytes()).hexdigest() == job.sha256
            assert (store / f"{job.video_path}.sha256").read_text().strip() == job.sha256
        assert (store / "manifest.jsonl").is_file()
        assert not list(store.rglob("*.part"))
        (store / f"{jobs[0].video_path}.sha256").unlink()
        assert (await run(plan, server)).outcome == "done"
        stats = server.stats()
    assert stats["files"][jobs[0].request_id]["downloads"] == 2
    assert stats["files"][jobs[1].request_id]["downloads"] == 1
    assert (store / f"{jobs[0].video_path}.sha256").read_text().strip() == jobs[0].sha256


async def test_a_store_that_fails_mid_run_stops_it_and_the_next_run_finishes(
    tmp_path: Path,
) -> None:
    """Uploads that keep failing alike (a file where the store's videos/ folder should be)
    stop the run on the disk path, every paid video kept as a URL; once the store is fixed,
    the next run downloads them without submitting anything again."""
    out, store = tmp_path / "out", tmp_path / "bucket"
    store.mkdir()
    (store / "videos").write_text("not a folder")
    plan = plan_for(prompts(tmp_path, 6), out, store=store.as_uri(), concurrency=2)
    async with MockServer(mock_config()) as server:
        first = await run(plan, server)
        assert first.outcome == "failed"
        assert "3 videos in a row could not be written" in first.message
        failed = [job for job in rows(out) if job.status is JobStatus.FAILED]
        assert failed
        assert {job.error_type for job in failed} == {DISK}
        assert all(job.video_url for job in failed)
        submits = server.stats()["requests"]["submit"]
        (store / "videos").unlink()
        assert (await run(plan, server)).outcome == "done"
        again = server.stats()["requests"]["submit"]
    assert sum(again.values()) == 6
    assert sum(submits.values()) < 6


async def test_a_lost_local_folder_is_rebuilt_from_the_stores_manifest(
    tmp_path: Path, s3: S3
) -> None:
    """The local folder gone (ledger, manifest and all), the same run to the same store
    rebuilds its ledger from the store's manifest.jsonl: nothing is generated again."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 4), out, store=s3.url(PREFIX))
    async with MockServer(mock_config()) as server:
        assert (await run(plan, server)).outcome == "done"
        before = server.stats()
        for path in sorted(out.iterdir()):
            path.unlink()
        again = await run(plan, server)
        after = server.stats()
    assert again.outcome == "done", again.message
    assert after["requests"]["submit"] == before["requests"]["submit"]
    assert_in_bucket(s3, out, after)
