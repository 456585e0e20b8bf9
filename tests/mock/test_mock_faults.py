"""The emulator's injected faults: each one as a client meets it, and their reproducibility."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from mock_fixtures import AUTH, KLING, fast_config, submit, wait_completed

from batchgen.mock import MockConfig, MockServer


def post_kling(
    session: aiohttp.ClientSession, server: MockServer, headers: dict[str, str] | None = None
) -> Any:
    """A Kling submit request, to use as ``async with post_kling(...) as response``."""
    return session.post(f"{server.base_url}/{KLING}", json={"prompt": "a cat"}, headers=headers)


async def test_429_without_retry_after_comes_before_auth(server: MockServer, session) -> None:
    """fault_429 answers 429 {"detail"} with no Retry-After, even to a request without a key."""
    server.config.fault_429 = 1.0
    async with post_kling(session, server) as r:
        assert r.status == 429
        assert "Retry-After" not in r.headers
        assert "detail" in await r.json()
    assert server.stats()["jobs"]["IN_QUEUE"] + server.stats()["jobs"]["IN_PROGRESS"] == 0


async def test_429_with_retry_after_in_scaled_whole_seconds(server: MockServer, session) -> None:
    """fault_429_retry_after sends Retry-After: retry_after times the time scale, rounded."""
    server.config.fault_429_retry_after = 1.0
    server.config.retry_after = 3000.0
    async with post_kling(session, server, headers=AUTH) as r:
        assert r.status == 429
        assert r.headers["Retry-After"] == "3"


async def test_503_looks_like_the_ingress(server: MockServer, session) -> None:
    """fault_503 answers nginx's HTML page with no x-fal-request-id header."""
    job = await submit(session, server)
    server.config.fault_503 = 1.0
    async with session.get(job["status_url"], headers=AUTH) as r:
        assert r.status == 503
        assert r.headers["Content-Type"].startswith("text/html")
        assert "x-fal-request-id" not in r.headers
        assert "nginx" in await r.text()
    assert server.stats()["requests"]["status"] == {"503": 1}


async def test_reset_closes_without_an_answer(server: MockServer, session) -> None:
    """fault_reset drops the connection before any answer; no job is created."""
    server.config.fault_reset = 1.0
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with post_kling(session, server, headers=AUTH):
            pass
    stats = server.stats()
    assert stats["requests"]["submit"] == {"reset": 1}
    assert sum(stats["jobs"].values()) == 0


async def test_submit_drop_creates_the_job_but_loses_the_answer(server: MockServer, session):
    """fault_submit_drop: the client sees a dropped connection, yet the job exists and runs."""
    server.config.fault_submit_drop = 1.0
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with post_kling(session, server, headers=AUTH):
            pass
    stats = server.stats()
    assert stats["requests"]["submit"] == {"dropped": 1}
    assert sum(stats["jobs"].values()) == 1
    assert len(stats["submits_by_payload"]) == 1


async def test_slow_answers_are_late_but_right(server: MockServer, session) -> None:
    """fault_slow delays the answer by slow_delay (scaled) and then answers normally."""
    server.config.fault_slow = 1.0
    server.config.slow_delay = 50.0  # 50 ms
    loop = asyncio.get_running_loop()
    started = loop.time()
    job = await submit(session, server)
    assert loop.time() - started >= 0.05
    assert job["status"] in ("IN_QUEUE", "IN_PROGRESS")
    assert server.stats()["faults"] == {"slow": 1}


@pytest.mark.parametrize(
    ("rate", "error_type", "code"),
    [
        ("fault_runner_disconnected", "runner_disconnected", 503),
        ("fault_request_timeout", "request_timeout", 504),
    ],
)
async def test_job_faults_end_completed_with_an_error(server, session, rate, error_type, code):
    """Job faults end COMPLETED with error/error_type; the result has the doc's status code."""
    setattr(server.config, rate, 1.0)
    job = await submit(session, server)
    done = await wait_completed(session, server, job["request_id"])
    assert done["error_type"] == error_type
    assert done["error"]
    async with session.get(job["response_url"], headers=AUTH) as r:
        assert r.status == code
        assert r.headers["X-Fal-Error-Type"] == error_type
        assert r.headers["x-fal-request-id"] == job["request_id"]  # not the ingress
        body = await r.json()
    assert body["error_type"] == error_type
    assert isinstance(body["detail"], str)


async def test_ignored_cancel_lets_the_job_finish(server: MockServer, session) -> None:
    """fault_cancel_ignored: the cancel is acknowledged but the job completes with its video."""
    server.config.fault_cancel_ignored = 1.0
    server.config.latency = 50.0
    job = await submit(session, server)
    async with session.put(job["cancel_url"], headers=AUTH) as r:
        assert (await r.json()) == {"status": "CANCELLATION_REQUESTED"}
    done = await wait_completed(session, server, job["request_id"])
    assert "error_type" not in done
    async with session.get(job["response_url"], headers=AUTH) as r:
        assert r.status == 200


async def test_truncated_download_stops_short(server: MockServer, session) -> None:
    """fault_truncate sends fewer bytes than Content-Length, then closes the connection."""
    job = await submit(session, server)
    await wait_completed(session, server, job["request_id"])
    async with session.get(job["response_url"], headers=AUTH) as r:
        video = (await r.json())["video"]
    server.config.fault_truncate = 1.0
    async with session.get(video["url"]) as r:
        assert int(r.headers["Content-Length"]) == video["file_size"]
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()
    entry = server.stats()["files"][job["request_id"]]
    assert entry["truncated"] == 1
    assert 0 < entry["bytes_sent"] < video["file_size"]


async def test_api_faults_spare_files_and_mock_routes(server: MockServer, session) -> None:
    """With every API fault at 1, /_mock/* and the file route still answer normally."""
    job = await submit(session, server)
    await wait_completed(session, server, job["request_id"])
    async with session.get(job["response_url"], headers=AUTH) as r:
        url = (await r.json())["video"]["url"]
    server.config.fault_reset = server.config.fault_503 = server.config.fault_429 = 1.0
    async with session.get(url) as r:
        assert r.status == 200
    async with session.get(f"{server.base_url}/_mock/stats") as r:
        assert r.status == 200


async def test_faults_can_change_between_phases(server: MockServer, session) -> None:
    """The live config is read per request: a 503 phase, then a clean one."""
    server.config.fault_503 = 1.0
    async with post_kling(session, server, headers=AUTH) as r:
        assert r.status == 503
    server.config.fault_503 = 0.0
    await submit(session, server)


async def statuses(config: MockConfig, count: int) -> tuple[list[int], list[str]]:
    """Status codes of ``count`` submits against a fresh server, and the request ids."""
    codes, ids = [], []
    async with MockServer(config) as server, aiohttp.ClientSession() as session:
        for _ in range(count):
            async with post_kling(session, server, headers=AUTH) as r:
                codes.append(r.status)
                if r.status == 200:
                    ids.append((await r.json())["request_id"])
    return codes, ids


async def test_same_seed_same_faults_never_the_same_ids() -> None:
    """Two servers with the same seed fail the same requests; their request ids are all
    different, as fal's (a folder run twice on the emulator never meets an id twice)."""
    rates = {"fault_429": 0.3, "fault_503": 0.2}
    first = await statuses(fast_config(seed=11, **rates), 30)
    again = await statuses(fast_config(seed=11, **rates), 30)
    other = await statuses(fast_config(seed=12, **rates), 30)
    assert first[0] == again[0]
    assert set(first[0]) == {200, 429, 503}
    assert first[0] != other[0]
    assert len(set(first[1] + again[1])) == len(first[1]) + len(again[1]) > 0


async def submit_codes(session: aiohttp.ClientSession, server: MockServer, count: int) -> list[int]:
    codes = []
    for _ in range(count):
        async with post_kling(session, server, headers=AUTH) as r:
            codes.append(r.status)
    return codes


async def test_mock_reset_restarts_the_fault_sequence(server: MockServer, session) -> None:
    """After POST /_mock/reset the same seed gives the same faults again."""
    server.config.fault_429 = 0.5
    first = await submit_codes(session, server, 10)
    async with session.post(f"{server.base_url}/_mock/reset"):
        pass
    assert await submit_codes(session, server, 10) == first
    assert set(first) == {200, 429}
