"""Image-to-video from local files through the emulator: each content uploaded once per folder,
multipart for large files, data URIs without storage, and every way an upload can go wrong."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from runs import FAST, KEY, SETTINGS, connection, manifest, mock_config, rows, run
from scripted import scripted
from test_run_lost_ledger import lose_ledger
from test_run_reach import closed_port

from batchgen.api.providers import Storage, connect
from batchgen.errors import InputError
from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
from batchgen.mock import MockServer
from batchgen.mock.stats import payload_digest
from batchgen.plan.build import Plan, build_plan, file_sha256
from batchgen.plan.endpoint import builtin_specs
from batchgen.run.runner import Runner

S = JobStatus
SPEC = """id: fal-ai/test/image-to-video
typical_latency_s: 20
parameters:
  prompt: {type: string, required: true}
  image_url: {type: file, required: true, accept: [image], max_mb: 200}
price: {flat_usd: 0.25}
"""
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def image(folder: Path, name: str, size: int = 2000) -> Path:
    """A file that starts like a PNG, ``size`` bytes long (sparse beyond its header)."""
    path = folder / name
    with path.open("wb") as handle:
        handle.write(PNG + name.encode())
        handle.truncate(size)
    return path


def image_plan(folder: Path, out: Path, images: list[Path], **settings: Any) -> Plan:
    """One job per image (in order) on an image-to-video endpoint, each naming its file."""
    spec = folder / "i2v.yaml"
    spec.write_text(SPEC)
    source = folder / "shots.csv"
    lines = [f"shot {i} of {path.name},{path}\n" for i, path in enumerate(images)]
    source.write_text("prompt,image_url\n" + "".join(lines))
    plan = build_plan(source, endpoint_spec=spec, output=out, run={**SETTINGS, **settings})
    assert [job.files[0].path for job in plan.jobs] == [str(path) for path in images]
    return plan


def emulator(plan: Plan, **overrides: Any) -> MockServer:
    specs = {**builtin_specs(), plan.endpoint.id: plan.endpoint}
    return MockServer(mock_config(specs=specs, **overrides))


def digest(path: Path) -> str:
    return file_sha256(path)


async def test_each_image_is_uploaded_once_across_rows_and_a_resume(tmp_path: Path) -> None:
    """Rows sharing an image share one upload; a later run of the folder reuses it; the
    manifest shows each file's path, sha256 and the URL sent."""
    out = tmp_path / "out"
    cat, dog, owl = (image(tmp_path, f"{n}.png") for n in ("cat", "dog", "owl"))
    plan = image_plan(tmp_path, out, [cat, dog, cat, dog, cat])
    async with emulator(plan) as server:
        first = await run(plan, server)
        assert first.outcome == "done", first.message
        more = image_plan(tmp_path, out, [cat, dog, cat, dog, cat, owl, dog, owl])
        second = await run(more, server)
        stats, base = server.stats(), server.base_url
    assert second.outcome == "done", second.message
    assert {sha: entry["count"] for sha, entry in stats["uploads"].items()} == {
        digest(cat): 1,
        digest(dog): 1,
        digest(owl): 1,
    }
    records = manifest(out)
    assert len(records) == 8
    assert {r["status"] for r in records} == {"done"}
    urls = {r["image_url.path"]: r["image_url"] for r in records}
    assert set(urls) == {str(cat), str(dog), str(owl)}
    for record in records:
        assert record["image_url.sha256"] == digest(Path(record["image_url.path"]))
        assert record["image_url"] == urls[record["image_url.path"]]
        assert record["image_url"].startswith(f"{base}/files/up/")
    header = (out / "manifest.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.startswith(
        "row,key,endpoint,prompt,image_url,image_url.path,image_url.sha256,status"
    )
    with Ledger.in_folder(out, readonly=True) as ledger:
        assert ledger.upload(digest(cat), base) is not None


async def test_a_120_mb_image_goes_multipart_and_arrives_whole(tmp_path: Path) -> None:
    """A file above 100 MiB is uploaded in parts and the storage holds exactly its bytes."""
    out = tmp_path / "out"
    big = image(tmp_path, "big.png", 120 * 1024 * 1024)
    plan = image_plan(tmp_path, out, [big])
    async with emulator(plan) as server:
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert stats["uploads"] == {
        digest(big): {"count": 1, "size": big.stat().st_size, "via": {"multipart": 1}}
    }
    assert stats["requests"]["storage_part"] == {"200": 12}


async def test_a_provider_without_storage_gets_data_uris(tmp_path: Path) -> None:
    """Through a quickrouter-style preset (no storage), files go inline as data: URIs; the
    ledger and manifest describe them without holding them."""
    out = tmp_path / "out"
    cat = image(tmp_path, "cat.png")
    plan = image_plan(tmp_path, out, [cat, cat], provider="quickrouter")
    async with emulator(plan) as server:
        routed = connect(
            plan.settings, base_url=server.base_url, environ={"QUICKROUTER_API_KEY": KEY}
        )
        assert routed.storage == Storage("data")
        result = await Runner(plan, routed, timing=FAST).run()
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert stats["uploads"] == {}
    assert "storage_token" not in stats["requests"]
    inline = "data:image/png;base64," + base64.b64encode(cat.read_bytes()).decode()
    for job in rows(out):
        sent = {**job.payload, "image_url": inline}
        assert stats["submits_by_payload"][payload_digest(sent)] == 1
        assert job.sent == {"image_url": "data:image/png;base64 (2000 bytes)"}
    assert manifest(out)[0]["image_url"] == "data:image/png;base64 (2000 bytes)"
    assert b"base64," not in (out / "batchgen.db").read_bytes()


async def test_files_too_big_for_data_uris_are_refused_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    """Without storage, files above the data-URI cap stop the run before it starts, each
    named, with the way out."""
    big, huge = image(tmp_path, "big.png", 5_000_000), image(tmp_path, "huge.png", 9_000_000)
    plan = image_plan(tmp_path, tmp_path / "out", [big, huge, big], provider="quickrouter")
    routed = connect(plan.settings, environ={"QUICKROUTER_API_KEY": KEY})
    with pytest.raises(InputError) as caught:
        Runner(plan, routed, timing=FAST)
    assert [p.path for p in caught.value.problems] == [str(big), str(huge)]
    assert "above the 4 MiB a data: URI may carry" in str(caught.value)
    assert "--upload fal" in str(caught.value)
    assert not (tmp_path / "out").exists()


async def test_a_key_refused_by_the_storage_stops_the_run(tmp_path: Path) -> None:
    """A 401 on the token call stops the run like a refused API key: nothing submitted,
    every job left pending, the message says the key may not use storage."""
    out = tmp_path / "out"
    plan = image_plan(tmp_path, out, [image(tmp_path, f"{i}.png") for i in range(6)])
    async with emulator(plan) as server:
        bad = dataclasses.replace(
            connection(server), storage=Storage("fal", server.base_url, "FAL_KEY", "wrong")
        )
        result = await Runner(plan, bad, timing=FAST).run()
        stats = server.stats()
    assert result.outcome == "fatal"
    assert "this key may not use fal storage" in result.message
    assert "submit" not in stats["requests"]
    assert stats["uploads"] == {}
    assert {job.status for job in rows(out)} == {S.PENDING}


async def test_a_failing_storage_fails_only_its_jobs_and_retry_failed_uploads_again(
    tmp_path: Path,
) -> None:
    """Uploads that keep failing fail their jobs (error_type upload): never submitted, no
    money committed; --retry-failed with a working storage uploads and finishes them."""
    out = tmp_path / "out"
    plan = image_plan(tmp_path, out, [image(tmp_path, "cat.png"), image(tmp_path, "dog.png")])

    async def storage(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/token"):
            base = f"http://{request.host}"
            return web.json_response({"token": "t", "token_type": "Bearer", "base_url": base})
        return web.json_response({"detail": "storage down"}, status=503)

    async with emulator(plan) as server, scripted(storage) as down:
        broken = dataclasses.replace(connection(server), storage=Storage("fal", down.url, "X", KEY))
        failed = await Runner(plan, broken, timing=FAST).run()
        assert failed.outcome == "failed"
        jobs = rows(out)
        assert {(j.status, j.error_type, j.attempts) for j in jobs} == {(S.FAILED, "upload", 0)}
        assert "input file not sent: storage upload answered 503" in (jobs[0].error or "")
        assert failed.committed_usd == 0
        assert "submit" not in server.stats()["requests"]
        assert any("--retry-failed" in step for step in failed.next_steps)
        again = await run(plan, server, retry_failed=True)
        stats = server.stats()
    assert again.outcome == "done", again.message
    assert sorted(e["count"] for e in stats["uploads"].values()) == [1, 1]


async def test_a_url_the_provider_cannot_fetch_is_uploaded_again_by_retry_failed(
    tmp_path: Path,
) -> None:
    """A job refused (422) for an uploaded URL the provider cannot fetch fails as
    file_refused and marks that upload stale; --retry-failed uploads it again."""
    out = tmp_path / "out"
    cat = image(tmp_path, "cat.png")
    async with emulator(image_plan(tmp_path, out, [cat])) as server:
        assert (await run(image_plan(tmp_path, out, [cat]), server)).outcome == "done"
        server.reset()  # the storage forgets the file; the folder still holds its URL
        refused = await run(image_plan(tmp_path, out, [cat, cat, cat]), server)
        jobs = rows(out)
        assert refused.outcome == "failed"
        assert [j.error_type for j in jobs if j.status is S.FAILED] == ["file_refused"] * 2
        assert "image_url" in (jobs[1].error or "")
        with Ledger.in_folder(out, readonly=True) as ledger:
            assert ledger.upload(digest(cat), server.base_url) is None  # stale
        again = await run(image_plan(tmp_path, out, [cat, cat, cat]), server, retry_failed=True)
        stats = server.stats()
    assert again.outcome == "done", again.message
    assert stats["uploads"][digest(cat)]["count"] == 1


async def test_an_upload_past_its_retention_is_made_again(tmp_path: Path) -> None:
    """An upload older than the retention is not reused: the file is uploaded anew."""
    out = tmp_path / "out"
    cat = image(tmp_path, "cat.png")
    async with emulator(image_plan(tmp_path, out, [cat])) as server:
        assert (await run(image_plan(tmp_path, out, [cat]), server)).outcome == "done"
        aged = dataclasses.replace(FAST, upload_retention=0.0)
        result = await run(image_plan(tmp_path, out, [cat, cat]), server, timing=aged)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert stats["uploads"][digest(cat)]["count"] == 2


async def test_a_file_changed_since_it_was_planned_is_not_sent(tmp_path: Path) -> None:
    """A file whose bytes changed after planning fails its job, unsent, saying so."""
    out = tmp_path / "out"
    cat = image(tmp_path, "cat.png")
    plan = image_plan(tmp_path, out, [cat])
    cat.write_bytes(b"another picture")
    async with emulator(plan) as server:
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "failed"
    (job,) = rows(out)
    assert (job.status, job.error_type, job.attempts) == (S.FAILED, "upload", 0)
    assert "changed since the batch was planned" in (job.error or "")
    assert stats["uploads"] == {}
    assert "submit" not in stats["requests"]


async def test_neither_the_key_nor_a_token_is_written_to_the_folder(tmp_path: Path) -> None:
    """After uploads, the storage key and the tokens it got are in no file of the folder."""
    out = tmp_path / "out"
    secret = "sk-storage-secret-0123456789"
    plan = image_plan(tmp_path, out, [image(tmp_path, "cat.png"), image(tmp_path, "dog.png")])
    async with emulator(plan, api_keys=(KEY, secret)) as server:
        keyed = dataclasses.replace(
            connection(server), storage=Storage("fal", server.base_url, "FAL_KEY", secret)
        )
        result = await Runner(plan, keyed, timing=FAST).run()
        tokens = list(server.emulator.storage.tokens)
    assert result.outcome == "done", result.message
    assert tokens
    for secret_text in (secret, *tokens):
        held = [p for p in out.rglob("*") if p.is_file() and secret_text.encode() in p.read_bytes()]
        assert held == []
    assert "FAL_KEY" in (out / "run.json").read_text()  # the variable's name, not its value
    assert hashlib.sha256(secret.encode()).hexdigest()[:8] not in (out / "run.json").read_text()


async def test_a_storage_never_reached_stops_the_run_fast(tmp_path: Path) -> None:
    """A storage host that never answers (a wrong --storage-base-url) stops the run within
    the limit, naming it; every job is left pending, nothing submitted."""
    out = tmp_path / "out"
    plan = image_plan(tmp_path, out, [image(tmp_path, f"{i}.png") for i in range(5)])
    nowhere = f"http://127.0.0.1:{closed_port()}"
    timing = dataclasses.replace(FAST, unreachable_after=0.2)
    async with emulator(plan) as server:
        lost = dataclasses.replace(
            connection(server), storage=Storage("fal", nowhere, "FAL_KEY", KEY)
        )
        result = await asyncio.wait_for(Runner(plan, lost, timing=timing).run(), 10)
        stats = server.stats()
    assert result.outcome == "failed"
    assert result.message.startswith(f"cannot reach the storage at {nowhere}: ")
    assert {job.status for job in rows(out)} == {S.PENDING}
    assert "submit" not in stats["requests"]


async def test_uploads_ride_out_a_flaky_storage(tmp_path: Path) -> None:
    """With 503s, 429s and resets on every route, storage ones included, every image is
    uploaded exactly once and every job ends done."""
    out = tmp_path / "out"
    images = [image(tmp_path, f"{i}.png") for i in range(4)]
    plan = image_plan(tmp_path, out, [*images, *images])
    async with emulator(plan, fault_503=0.3, fault_429=0.1, fault_reset=0.1) as server:
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert {sha: e["count"] for sha, e in stats["uploads"].items()} == {
        digest(path): 1 for path in images
    }
    storage_faults = [
        code
        for route, codes in stats["requests"].items()
        if route.startswith("storage_")
        for code in codes
        if code != "200"
    ]
    assert storage_faults


async def test_a_lost_ledger_gives_back_what_was_sent_for_each_file(tmp_path: Path) -> None:
    """Rebuilt from the manifest, the ledger knows again the URL each job's image was sent
    as; nothing is uploaded or submitted again."""
    out = tmp_path / "out"
    cat = image(tmp_path, "cat.png")
    plan = image_plan(tmp_path, out, [cat, cat])
    async with emulator(plan) as server:
        assert (await run(plan, server)).outcome == "done"
        sent = [job.sent for job in rows(out)]
        lose_ledger(out)
        again = await run(plan, server)
        stats = server.stats()
    assert again.outcome == "done", again.message
    assert [job.sent for job in rows(out)] == sent
    assert sent[0]["image_url"].startswith("http://")
    assert stats["uploads"][digest(cat)]["count"] == 1
    assert sum(stats["requests"]["submit"].values()) == 2


async def test_files_go_up_while_their_jobs_wait_for_a_slot(tmp_path: Path) -> None:
    """One job at a time: the next jobs' images are uploaded while the first job runs, not
    when their turn comes; each still once."""
    out = tmp_path / "out"
    images = [image(tmp_path, f"{i}.png") for i in range(3)]
    plan = image_plan(tmp_path, out, images, concurrency=1)
    async with emulator(plan, latency=300.0) as server:
        result = await run(plan, server)
        stats, base = server.stats(), server.base_url
    assert result.outcome == "done", result.message
    assert [e["count"] for e in stats["uploads"].values()] == [1, 1, 1]
    jobs = rows(out)
    with Ledger.in_folder(out, readonly=True) as ledger:
        uploaded = [ledger.upload(digest(path), base) for path in images]
    assert jobs[1].submitted_at is not None
    assert all(u is not None and u.uploaded_at < jobs[1].submitted_at for u in uploaded)


async def test_a_folder_of_images_runs_on_the_built_in_image_to_video(tmp_path: Path) -> None:
    """`run photos/` on Kling 2.5 image-to-video: one job per image in name order, prompts from
    NAME.txt or --set, two images with the same bytes uploaded once, every video verified."""
    photos = tmp_path / "photos"
    photos.mkdir()
    cat = image(photos, "a-cat.png")
    (photos / "b-same-cat.png").write_bytes(cat.read_bytes())
    (photos / "b-same-cat.txt").write_text("the same cat, from the left\n", encoding="utf-8")
    owl = image(photos, "c-owl.png")
    out = tmp_path / "out"
    i2v = "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"
    plan = build_plan(
        photos, endpoint=i2v, sets={"prompt": "slow push-in"}, output=out, run=SETTINGS
    )
    async with MockServer(mock_config()) as server:
        result = await run(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    records = manifest(out)
    assert [(r["prompt"], Path(r["image_url.path"]).name) for r in records] == [
        ("slow push-in", "a-cat.png"),
        ("the same cat, from the left", "b-same-cat.png"),
        ("slow push-in", "c-owl.png"),
    ]
    assert {sha: e["count"] for sha, e in stats["uploads"].items()} == {
        digest(cat): 1,
        digest(owl): 1,
    }
    assert records[0]["image_url"] == records[1]["image_url"]
    assert all(r["status"] == "done" and r["endpoint"] == i2v for r in records)
    assert all(stats["files"][r["request_id"]]["sha256"] == r["sha256"] for r in records)
    assert [r["video_path"] for r in records] == [
        "videos/a-cat.mp4",
        "videos/b-same-cat.mp4",
        "videos/c-owl.mp4",
    ]
    assert all((out / r["video_path"]).is_file() for r in records)


async def test_a_folder_keeps_its_video_names_when_images_are_added(tmp_path: Path) -> None:
    """A run of photos/ names each video after its image; a later run with an image of the
    same stem, sorted first, leaves the done video's name alone and names the new one apart."""
    photos = tmp_path / "photos"
    photos.mkdir()
    image(photos, "cat.png")
    out = tmp_path / "out"
    i2v = "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"
    options: dict[str, Any] = {"endpoint": i2v, "sets": {"prompt": "p"}, "output": out}
    async with MockServer(mock_config()) as server:
        first = await run(build_plan(photos, run=SETTINGS, **options), server)
        image(photos, "cat.jpg", size=3000)
        plan = build_plan(photos, run=SETTINGS, **options)
        # The plan alone would give cat.jpg the name; the ledger holds it for cat.png's key.
        assert [j.filename for j in plan.jobs] == ["cat.mp4", f"cat-{plan.jobs[1].key}.mp4"]
        second = await run(plan, server)
    assert (first.outcome, second.outcome) == ("done", "done"), second.message
    records = manifest(out)
    assert [(Path(r["image_url.path"]).name, r["video_path"]) for r in records] == [
        ("cat.jpg", f"videos/cat-{records[0]['key'][:8]}.mp4"),
        ("cat.png", "videos/cat.mp4"),
    ]
    assert sorted(p.name for p in (out / "videos").iterdir()) == sorted(
        Path(r["video_path"]).name for r in records
    )


async def test_ctrl_c_stops_uploads_retrying_and_leaves_their_jobs_pending(
    tmp_path: Path,
) -> None:
    """A drain (Ctrl-C once) while the storage answers 500: the uploads stop retrying at once
    and their jobs stay pending for the next run, neither failed nor submitted."""
    out = tmp_path / "out"
    plan = image_plan(tmp_path, out, [image(tmp_path, f"{i}.png") for i in range(3)])
    seen: list[str] = []
    runner: Runner | None = None

    async def storage(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        if len(seen) == 2 and runner is not None:
            runner.drain()
        return web.json_response({"detail": "storage down"}, status=500)

    async with emulator(plan) as server, scripted(storage) as down:
        broken = dataclasses.replace(connection(server), storage=Storage("fal", down.url, "X", KEY))
        runner = Runner(plan, broken, timing=FAST)
        result = await runner.run()
        submits = server.stats()["requests"].get("submit")
    assert result.outcome == "interrupted", result.message
    assert {(j.status, j.attempts) for j in rows(out)} == {(S.PENDING, 0)}
    assert submits is None
    assert len(seen) <= 4  # the ones already on their way when the drain came
