"""Workers of a shared PostgreSQL batch whose videos go to a bucket (moto, on loopback): each
job records the store its video is in, so the manifest, status, report and export name the
objects from any machine, and any worker given the store fetches a missing one again."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
from pathlib import Path
from typing import Any

import pgserver
from runs import connection, mock_config, plan_for, prompts
from s3server import BUCKET, S3
from test_run_workers import SHARED, batch_rows

from batchgen.folder.export import export
from batchgen.folder.report import write_pages
from batchgen.folder.status import read_status, render
from batchgen.ledger.shared import SharedBatch
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.mock import MockServer
from batchgen.run.runner import Runner

S = JobStatus
PREFIX = "shared/batch"


def worker(
    source: Path, folder: Path, server: MockServer, url: str, batch: str, **settings: Any
) -> Runner:
    """A worker of ``batch`` downloading for ``folder`` (to the store given in ``settings``)."""
    return Runner(
        plan_for(source, folder, concurrency=3, **settings),
        connection(server),
        timing=SHARED,
        ledger=url,
        batch=batch,
    )


def gallery_videos(page: str) -> list[str]:
    match = re.search(r'<script type="application/json" id="jobs">(.*?)</script>', page, re.S)
    assert match is not None
    return [job["video"] for job in json.loads(match.group(1))["jobs"] if job["video"]]


def assert_objects_named_from_elsewhere(
    tmp_path: Path, shared: SharedBatch, jobs: list[JobRow], store: str
) -> None:
    """No video in a worker's folder; the manifest (a worker's, and one exported in a third
    folder), status, the report and the hf export name or fetch the objects in ``store``."""
    assert not list(tmp_path.glob("w*/videos"))
    elsewhere = tmp_path / "third-machine"
    export(None, "jsonl", elsewhere / "m.jsonl", shared=shared)
    records = [json.loads(line) for line in (elsewhere / "m.jsonl").read_text().splitlines()]
    urls = {f"{store}/{job.video_path}" for job in jobs}
    assert {r["video_path"] for r in records} == urls
    worker_manifest = (tmp_path / "w0" / "manifest.jsonl").read_text()
    assert {json.loads(line)["video_path"] for line in worker_manifest.splitlines()} == urls
    status = read_status(None, shared=shared)
    assert status.videos_in == {store: len(jobs)}
    assert f"videos in: {store} ({len(jobs)})" in render(status)
    pages = write_pages(elsewhere / "pages", shared=shared)
    assert isinstance(pages.report, Path)
    assert set(gallery_videos(pages.report.read_text())) == urls
    result = export(None, "hf", elsewhere / "hf", shared=shared)
    assert (result.rows, result.copied, result.missing) == (len(jobs), len(jobs), [])
    for job in jobs:
        video = (elsewhere / "hf" / f"{job.key}.mp4").read_bytes()
        assert hashlib.sha256(video).hexdigest() == job.sha256


async def test_two_workers_to_one_bucket_name_the_objects_and_any_worker_mends_them(
    tmp_path: Path, s3: S3, postgres: pgserver.Server, batch: str
) -> None:
    """Two workers with the same --store: every job records the store, its object holds what
    the emulator served, no video lands in a folder, the batch's manifest is in the store.
    The batch's manifest, status, report and hf export, read from a third folder, name or
    fetch those objects. Two objects deleted, a third worker given the store fetches exactly
    those again from their URLs: no submit."""
    source, store = prompts(tmp_path, 12), s3.url(PREFIX)
    shared = SharedBatch(postgres.url, batch)
    async with MockServer(mock_config()) as server:
        first = [
            worker(source, tmp_path / f"w{i}", server, postgres.url, batch, store=store)
            for i in range(2)
        ]
        assert [r.outcome for r in await asyncio.gather(*(w.run() for w in first))] == ["done"] * 2
        before = server.stats()
        jobs = batch_rows(postgres.url, batch)
        assert {job.video_dir for job in jobs} == {store}
        keys = set(s3.keys(f"{PREFIX}/"))
        assert f"{PREFIX}/manifest.jsonl" in keys
        assert f"{PREFIX}/run.json" not in keys  # each worker's stays in its folder
        for job in jobs:
            served = before["files"][job.request_id]
            key = f"{PREFIX}/{job.video_path}"
            assert s3.sha256(key) == served["sha256"] == job.sha256
            assert s3.head(key)["Metadata"] == {"sha256": served["sha256"]}
        assert_objects_named_from_elsewhere(tmp_path, shared, jobs, store)
        gone = jobs[:2]
        for job in gone:
            s3.client.delete_object(Bucket=BUCKET, Key=f"{PREFIX}/{job.video_path}")
        third = worker(source, tmp_path / "w2", server, postgres.url, batch, store=store)
        assert (await third.run()).outcome == "done"
        after = server.stats()
    assert after["submits_by_payload"] == before["submits_by_payload"]
    fetched = {
        rid: after["files"][rid]["downloads"] - before["files"][rid]["downloads"]
        for rid in before["files"]
    }
    assert fetched == {job.request_id: int(job in gone) for job in jobs}
    for job in batch_rows(postgres.url, batch):
        assert (job.status, job.video_dir) == (S.DONE, store)
        assert s3.sha256(f"{PREFIX}/{job.video_path}") == job.sha256


async def test_a_worker_with_a_store_and_one_without_each_record_their_own_place(
    tmp_path: Path, s3: S3, postgres: pgserver.Server, batch: str
) -> None:
    """One worker puts videos in the bucket, the other in its folder: each job names where
    its video really is (the store, or host:/folder), the manifest gives the object's URL or
    the file's path, status counts both places, and the hf export fetches from both."""
    source, store = prompts(tmp_path, 12), s3.url(PREFIX)
    shared = SharedBatch(postgres.url, batch)
    local = tmp_path / "w1"
    async with MockServer(mock_config()) as server:
        runners = [
            worker(source, tmp_path / "w0", server, postgres.url, batch, store=store),
            worker(source, local, server, postgres.url, batch),
        ]
        assert [r.outcome for r in await asyncio.gather(*(w.run() for w in runners))] == [
            "done"
        ] * 2
    jobs = batch_rows(postgres.url, batch)
    folder = f"{socket.gethostname()}:{local}"
    in_bucket = [job for job in jobs if job.video_dir == store]
    on_disk = [job for job in jobs if job.video_dir == folder]
    assert in_bucket
    assert on_disk
    assert len(in_bucket) + len(on_disk) == 12
    for job in in_bucket:
        assert s3.sha256(f"{PREFIX}/{job.video_path}") == job.sha256
        assert not (local / str(job.video_path)).exists()
    for job in on_disk:
        assert hashlib.sha256((local / str(job.video_path)).read_bytes()).hexdigest() == job.sha256
    elsewhere = tmp_path / "third"
    export(None, "jsonl", elsewhere / "m.jsonl", shared=shared)
    paths = {
        r["key"]: r["video_path"]
        for r in map(json.loads, (elsewhere / "m.jsonl").read_text().splitlines())
    }
    assert {paths[job.key] for job in in_bucket} == {f"{store}/{j.video_path}" for j in in_bucket}
    assert {paths[job.key] for job in on_disk} == {f"../w1/{j.video_path}" for j in on_disk}
    status = read_status(None, shared=shared)
    assert status.videos_in == {store: len(in_bucket), folder: len(on_disk)}
    result = export(None, "hf", elsewhere / "hf", shared=shared)
    assert (result.rows, result.missing) == (12, [])
    assert (result.copied, result.linked) == (len(in_bucket), len(on_disk))
