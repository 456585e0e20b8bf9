"""Credentials go to the configured API origin only: not to envelope hosts, not to files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from runs import (
    FAST,
    KEY,
    assert_all_verified,
    connection,
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
from batchgen.run.runner import Runner


def in_flight(out: Path) -> int:
    return sum(job.status in (JobStatus.QUEUED, JobStatus.RUNNING) for job in rows(out))


class Host:
    """A tiny server that records every request; ``redirect_to`` makes it a redirector."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        self.redirect_to = redirect_to
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path, request.headers.get("Authorization")))
        if self.redirect_to:
            raise web.HTTPFound(self.redirect_to + request.path_qs)
        return web.json_response({"detail": "not here"}, status=404)


@pytest.fixture
async def foreign() -> AsyncIterator[Host]:
    host = Host()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", host.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield host
    await runner.cleanup()


async def test_envelope_urls_on_a_foreign_host_are_never_used(
    tmp_path: Path, foreign: Host
) -> None:
    """Status/result/cancel are built on the configured base: the envelope's host gets
    nothing, whatever the mode."""
    for mode in ("adaptive", "stream"):
        out = tmp_path / mode
        config = mock_config(envelope_base_url=foreign.url)
        async with MockServer(config) as server:
            plan = plan_for(prompts(tmp_path, 8), out, poll=mode)
            result = await run(plan, server)
            stats = server.stats()
        assert result.outcome == "done", result.message
        assert_all_verified(out, stats)
    assert foreign.seen == []


async def test_no_authorization_reaches_the_file_host(tmp_path: Path) -> None:
    """Videos on another origin are fetched with no Authorization header."""
    out = tmp_path / "out"
    async with MockServer(mock_config()) as server:
        server.config.files_base_url = server.base_url.replace("127.0.0.1", "localhost")
        result = await run(plan_for(prompts(tmp_path, 8), out), server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert stats["file_auth"]["count"] == 0
    assert all(j["video_url"].startswith("http://localhost:") for j in _manifest(out))


async def test_no_authorization_across_a_file_redirect(tmp_path: Path, foreign: Host) -> None:
    """A file URL that redirects to another host is followed without any credentials."""
    out = tmp_path / "out"
    async with MockServer(mock_config()) as server:
        foreign.redirect_to = server.base_url
        server.config.files_base_url = foreign.url
        result = await run(plan_for(prompts(tmp_path, 5), out), server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert len(foreign.seen) >= 5
    assert all(auth is None for _, _, auth in foreign.seen)
    assert stats["file_auth"]["count"] == 0


def _manifest(out: Path) -> list[dict[str, str]]:
    from runs import manifest

    return manifest(out)


async def test_request_ids_stay_with_the_host_and_key_that_issued_them(tmp_path: Path) -> None:
    """Jobs in flight record the API origin and key fingerprint (never the key); resuming them
    against another base URL is refused before any request, naming the host; resuming on
    their own host, even with another key of the account, follows them to done without a new
    submit."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 4), out)
    async with (
        MockServer(mock_config(latency=1000.0, api_keys=(KEY, "other-key"))) as first,
        MockServer(mock_config()) as second,
    ):
        runner = Runner(plan, connection(first), timing=FAST)
        task = asyncio.create_task(runner.run())
        await until(lambda: (out / "batchgen.db").exists() and in_flight(out) == 4)
        runner.abort()
        await task
        with Ledger.in_folder(out, readonly=True) as ledger:
            job = ledger.jobs()[0]
            assert job.origin == first.base_url
            assert job.key_id is not None
            assert job.key_id.startswith("BATCHGEN_MOCK_KEY:")
            assert KEY not in job.key_id

        with pytest.raises(UsageError, match=f"submitted to {first.base_url}") as caught:
            await run(plan, second)
        assert "4 job(s) in flight" in str(caught.value)
        assert second.stats()["requests"] == {}
        before = dict(first.stats()["submits_by_payload"])
        result = await run(plan, first, key="other-key")  # 1 s jobs
        assert result.outcome == "done", result.message
        assert first.stats()["submits_by_payload"] == before
        assert sum(first.stats()["foreign_key_requests"].values()) >= 4
