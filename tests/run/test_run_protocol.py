"""A provider that breaks the protocol: the row says so promptly, and nothing is paid twice."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from aiohttp import web
from runs import FAST, mock_config, plan_for, prompts, rows, run
from scripted import Handler, scripted, trickle

from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer

S = JobStatus
QUEUED = {"status": "IN_QUEUE", "request_id": "rid-1"}


def provider(status: Handler, submit: object = QUEUED) -> Handler:
    """Submit answers ``submit``, cancel is accepted, status and result looks get ``status``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            return web.json_response(submit)
        if request.method == "PUT":
            return web.json_response({"status": "CANCELLATION_REQUESTED"})
        return await status(request)

    return handler


async def html(request: web.Request) -> web.StreamResponse:
    return web.Response(text="<html>proxy says hi</html>", content_type="text/html")


async def test_unreadable_status_fails_the_job_after_three_looks(tmp_path: Path) -> None:
    """200 HTML for a status: the job fails after 3 looks, not at --job-timeout, with a protocol
    error quoting the answer; the log says so at each look."""
    out = tmp_path / "out"
    async with scripted(provider(html)) as server:
        result = await run(plan_for(prompts(tmp_path, 1), out), server.url)
    [job] = rows(out)
    assert (result.outcome, job.status) == ("failed", S.FAILED)
    assert job.error == (
        "protocol error: status answers unreadable (3 in a row): '<html>proxy says hi</html>'"
    )
    assert job.request_id == "rid-1"  # kept: the job may still exist at the provider
    assert [s.method for s in server.seen] == ["POST", "GET", "GET", "GET"]
    log = (out / "batchgen.log").read_text(encoding="utf-8")
    assert log.count("status of rid-1 unreadable") == 2


async def test_trickling_status_lets_the_job_timeout_fire_on_time(tmp_path: Path) -> None:
    """A status that sends a byte every 20 ms forever: --job-timeout (0.3 s) fires on time
    although each request may take 0.5 s and is tried 12 times (6 s); the cancelled job, whose
    outcome the provider never tells, stays cancelling past the ceiling (3x the timeout)."""
    out = tmp_path / "out"
    timing = replace(FAST, request_timeout=0.5)
    async with scripted(provider(trickle)) as server:
        started = time.monotonic()
        result = await run(
            plan_for(prompts(tmp_path, 1), out, job_timeout=300), server.url, timing=timing
        )
        took = time.monotonic() - started
    [job] = rows(out)
    assert result.outcome == "failed"
    assert job.status == "cancelling"
    assert job.error is not None
    assert job.error.startswith("cancel asked; after 3x its --job-timeout the provider still")
    assert took < 3.0


async def test_submit_without_request_id_fails_once_then_retry_is_flagged(
    tmp_path: Path,
) -> None:
    """A 200 submit without a request_id is sent once and fails the row as a protocol error,
    its spend kept (a job may exist); --retry-failed sends it again flagged possibly_duplicate."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 1), out)
    async with scripted(provider(html, submit={"status": "IN_QUEUE"})) as server:
        result = await run(plan, server.url)
    [job] = rows(out)
    assert [s.method for s in server.seen] == ["POST"]
    assert (job.status, job.error_type, job.attempts) == (S.FAILED, "submit_uncertain", 1)
    assert job.error == (
        'protocol error: submit answered 200 without a request_id: \'{"status": "IN_QUEUE"}\''
    )
    assert (result.committed_usd, result.spent_usd) == (job.cost_usd, 0.0)
    async with MockServer(mock_config()) as mock:
        again = await run(plan, mock, retry_failed=True)
    [job] = rows(out)
    assert (again.outcome, job.status, job.possibly_duplicate) == ("done", S.DONE, True)
