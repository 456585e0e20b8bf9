"""A proxy's own spelling (lower-case status words, ``data`` envelopes, gzip-encoded videos,
``already_completed`` cancels): every job done, spend right, nothing submitted twice; and the
words a run ends with name a protocol error for what it is."""

from __future__ import annotations

import gzip
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from respell import SPELLINGS, respelling
from runs import assert_all_verified, mock_config, plan_for, prompts, rows, run
from scripted import Handler, scripted
from test_run_protocol import html, provider

from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer
from batchgen.mock.mp4 import video_file
from batchgen.run.progress import Reporter

S = JobStatus
MP4 = video_file("rid-1").read()


@pytest.mark.parametrize("follow", ["status", "result"])
async def test_a_proxy_with_its_own_spelling_loses_nothing(tmp_path: Path, follow: str) -> None:
    """Through a proxy that spells every status word its own way (completed, Completed,
    in-progress, queued), wraps status and result answers in ``data`` and gzips the videos:
    every job done and verified, each submitted once, spent the price of all."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 16), out)
    async with (
        MockServer(mock_config()) as server,
        aiohttp.ClientSession() as session,
        scripted(respelling(server.base_url, session)) as proxy,
    ):
        result = await run(plan, proxy.url, follow=follow)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert set(stats["submits_by_payload"].values()) == {1}
    price = sum(job.cost_usd or 0.0 for job in rows(out))
    assert (result.spent_usd, result.committed_usd) == (pytest.approx(price),) * 2
    videos = [seen for seen in proxy.seen if seen.path.endswith(".mp4")]
    assert len(videos) == 16
    assert {seen.headers.get("Accept-Encoding") for seen in videos} == {"identity"}


def stuck(cancel: object) -> Handler:
    """A provider whose status route says a word batchgen does not know until the end of
    time, whose result route has the video (in an envelope, gzip-encoded on its file host),
    and whose cancel answers ``cancel``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            return web.json_response({"status": "in_queue", "request_id": "rid-1"})
        if request.method == "PUT":
            return web.json_response(cancel, status=400)
        if request.path.endswith("/status"):
            return web.json_response({"status": "Rendering"}, status=202)
        if request.path.endswith(".mp4"):
            headers = {"Content-Encoding": "gzip", "Content-Type": "video/mp4"}
            return web.Response(body=gzip.compress(MP4), headers=headers)
        url = f"http://{request.host}/files/rid-1/output.mp4"
        return web.json_response({"data": {"video": {"url": url, "file_size": len(MP4)}}})

    return handler


@pytest.mark.parametrize(
    "cancel", [{"status": "already_completed"}, {"detail": "Request has already completed"}]
)
async def test_cancel_answered_already_completed_reads_the_result_now(
    tmp_path: Path, cancel: object
) -> None:
    """A job whose status words never say it is done runs into --job-timeout; its cancel is
    answered already_completed (or a detail saying so): the result is read at once, not looked
    at for the cancel's grace, and the paid video kept. Submitted once, spent its price."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 1), out, job_timeout=200)
    async with scripted(stuck(cancel)) as server:
        result = await run(plan, server.url)
    [job] = rows(out)
    assert result.outcome == "done", result.message
    assert (job.status, job.error_type) == (S.DONE, "completed_after_cancel")
    assert (job.bytes, (out / str(job.video_path)).read_bytes()) == (len(MP4), MP4)
    after = [(s.method, s.path.rsplit("/", 1)[-1]) for s in server.seen]
    after = after[after.index(("PUT", "cancel")) :]
    assert after == [("PUT", "cancel"), ("GET", "rid-1"), ("GET", "output.mp4")]
    assert [s.method for s in server.seen].count("POST") == 1
    assert (result.spent_usd, result.committed_usd) == (job.cost_usd, job.cost_usd)


async def test_a_protocol_error_is_not_called_a_refusal(tmp_path: Path) -> None:
    """A job failed on unreadable answers is summed up as an answer that broke the protocol,
    never as refused by the provider, at the end of the run and on --retry-failed (which
    leaves it failed); the advice to send it again says it pays again and how much."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 1), out)
    reporter = Reporter()
    async with scripted(provider(html)) as server:
        result = await run(plan, server.url)
        await run(plan, server.url, retry_failed=True, reporter=reporter)
        posts = [s.method for s in server.seen].count("POST")
    [job] = rows(out)
    assert (job.status, job.error_type, posts) == (S.FAILED, "protocol", 1)
    pays = f"(submits 1 anew and pays again: about ${job.cost_usd:.2f} at list price)"
    [step] = result.next_steps  # no "refused by the provider (validation, content policy)"
    assert step.startswith("1 failed on answers that broke the protocol (not refused by the ")
    assert step.endswith(f"--retry-failed all {pays}")
    assert not [note for note in reporter.notes if "refused" in note]
    assert (
        "1 failed job(s) failed on answers that broke the protocol and stay failed: "
        f"--retry-failed all submits them again {pays}"
    ) in reporter.notes


def completed(result: Handler) -> Handler:
    """A provider whose status says ``completed`` at once and whose result answers ``result``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            return web.json_response({"status": "IN_QUEUE", "request_id": "rid-1"})
        if request.path.endswith("/status"):
            return web.json_response({"status": "completed"})
        return await result(request)

    return handler


async def no_video(request: web.Request) -> web.StreamResponse:
    return web.json_response({"data": {"seed": 7}})


@pytest.mark.parametrize(("result", "error_type"), [(no_video, "no_output"), (html, "timeout")])
async def test_a_completed_job_the_client_could_not_collect_is_spent(
    tmp_path: Path, result: Handler, error_type: str
) -> None:
    """A job the provider said completed (no error) whose result holds no video, or stays
    unreadable until --job-timeout, fails by batchgen's doing: its price counts as spent."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 1), out, job_timeout=200)
    async with scripted(completed(result)) as server:
        ended = await run(plan, server.url)
    [job] = rows(out)
    assert (job.status, job.error_type) == (S.FAILED, error_type)
    assert job.completed_at is not None
    assert (ended.spent_usd, ended.committed_usd) == (job.cost_usd, job.cost_usd)


def test_every_spelling_is_served() -> None:
    """The proxy's spellings differ from fal's words (else the tests above prove nothing)."""
    for word in ("COMPLETED", "IN_PROGRESS", "IN_QUEUE"):
        assert all(spell(word) != word for spell in SPELLINGS.values())
