"""The emulator's queue routes over loopback HTTP: submit, status, stream, result, cancel, auth."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from mock_fixtures import (
    APP,
    AUTH,
    KLING,
    events,
    fast_config,
    job_url,
    submit,
    wait_completed,
)

from batchgen.mock import MockServer
from batchgen.plan.endpoint import passthrough

FOREVER = 3_600_000.0  # emulated seconds: an hour of real time at the test scale


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer(fast_config(policy_word="forbidden")) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url, headers=AUTH) as r:
        return r.status, await r.json()


async def test_submit_answers_fals_envelope(server: MockServer, session) -> None:
    """Submit answers 200 with status, a uuid4 request id, owner/app URLs and a position."""
    server.config.queue_delay = FOREVER
    server.config.max_in_progress = 1
    first = await submit(session, server)
    second = await submit(session, server)
    rid = first["request_id"]
    assert uuid.UUID(rid).version == 4
    base = f"{server.base_url}/{APP}/requests/{rid}"
    assert first == {
        "status": "IN_QUEUE",
        "request_id": rid,
        "response_url": base,
        "status_url": base + "/status",
        "cancel_url": base + "/cancel",
        "logs": None,
        "metrics": {},
        "queue_position": 0,
    }
    assert second["queue_position"] == 1


async def test_unknown_endpoint_is_404(server: MockServer, session) -> None:
    """Submitting to an endpoint without a spec answers 404 with a string detail."""
    async with session.post(f"{server.base_url}/fal-ai/nope/v1", json={}, headers=AUTH) as r:
        assert r.status == 404
        assert isinstance((await r.json())["detail"], str)


async def test_a_body_that_is_not_an_object_is_refused_at_submit(server: MockServer, session):
    """Only a JSON object can be queued: anything else is a 422 at submit."""
    url = f"{server.base_url}/{KLING}"
    async with session.post(url, data=b"[1, 2]", headers=AUTH) as r:
        assert r.status == 422
    assert server.stats()["jobs"]["IN_QUEUE"] == 0


async def test_status_goes_queued_running_completed(server: MockServer, session) -> None:
    """Status is 202 IN_QUEUE with a position, 202 IN_PROGRESS with logs, 200 COMPLETED."""
    server.config.max_in_progress = 1
    server.config.latency = FOREVER
    blocker = await submit(session, server)
    server.config.latency = 20.0
    waiting = await submit(session, server)
    code, body = await get(session, waiting["status_url"])
    assert (code, body["status"], body["queue_position"]) == (202, "IN_QUEUE", 0)
    code, body = await get(session, blocker["status_url"] + "?logs=1")
    assert (code, body["status"]) == (202, "IN_PROGRESS")
    item = body["logs"][0]
    assert set(item) == {"message", "level", "source", "timestamp"}
    assert item["source"] == "USER"
    _, body = await get(session, blocker["status_url"] + "?logs=0")
    assert body["logs"] is None
    async with session.put(blocker["cancel_url"], headers=AUTH) as r:
        assert r.status == 200
    done = await wait_completed(session, server, waiting["request_id"])
    assert "error" not in done
    assert 10 < done["metrics"]["inference_time"] < 10_000
    code, body = await get(session, waiting["status_url"])
    assert (code, body["status"]) == (200, "COMPLETED")


async def test_result_before_completion_is_400(server: MockServer, session) -> None:
    """Fetching the result of an unfinished job answers 400 "still in progress"."""
    server.config.latency = FOREVER
    job = await submit(session, server)
    code, body = await get(session, job["response_url"])
    assert code == 400
    assert body == {"detail": "Request is still in progress"}


async def test_result_of_a_finished_job(server: MockServer, session) -> None:
    """A finished job's result is its video File, with request id and billable units headers."""
    job = await submit(session, server, {"prompt": "a cat", "duration": 10})
    await wait_completed(session, server, job["request_id"])
    async with session.get(job["response_url"], headers=AUTH) as r:
        assert r.status == 200
        assert r.headers["x-fal-request-id"] == job["request_id"]
        assert r.headers["x-fal-billable-units"] == "10"
        video = (await r.json())["video"]
    rid = job["request_id"]
    assert video["url"] == f"{server.base_url}/files/{rid}/output.mp4"
    assert video["content_type"] == "video/mp4"
    assert video["file_name"] == "output.mp4"
    assert video["file_size"] > 1000


async def test_invalid_input_is_accepted_and_fails_at_result(server: MockServer, session):
    """Input the spec refuses is queued (200), runs, COMPLETES cleanly, and 422s at result."""
    job = await submit(session, server, {"duration": "7"})
    done = await wait_completed(session, server, job["request_id"])
    assert "error_type" not in done
    async with session.get(job["response_url"], headers=AUTH) as r:
        assert r.status == 422
        assert r.headers["X-Fal-Retryable"] == "false"
        detail = (await r.json())["detail"]
    by_field = {item["loc"][1]: item for item in detail}
    assert set(by_field) == {"prompt", "duration"}
    assert by_field["prompt"]["type"] == "missing"
    assert all(item["loc"][0] == "body" and item["msg"] for item in detail)


async def test_content_policy_word_gives_422_at_result(server: MockServer, session) -> None:
    """A prompt containing the policy word (any case) ends with a content-policy 422."""
    job = await submit(session, server, {"prompt": "A FORBIDDEN dance"})
    await wait_completed(session, server, job["request_id"])
    code, body = await get(session, job["response_url"])
    assert code == 422
    assert body["detail"][0]["type"] == "content_policy_violation"
    assert body["detail"][0]["loc"] == ["body", "prompt"]


async def test_cancel_queued_and_running_jobs(server: MockServer, session) -> None:
    """Cancel answers CANCELLATION_REQUESTED; the job ends COMPLETED/client_cancelled (499)."""
    server.config.max_in_progress = 1
    server.config.latency = FOREVER
    running = await submit(session, server)
    queued = await submit(session, server)
    for job in (queued, running):
        async with session.put(job["cancel_url"], headers=AUTH) as r:
            assert (r.status, await r.json()) == (200, {"status": "CANCELLATION_REQUESTED"})
        code, body = await get(session, job["status_url"])
        assert (code, body["status"], body["error_type"]) == (200, "COMPLETED", "client_cancelled")
        async with session.get(job["response_url"], headers=AUTH) as r:
            assert r.status == 499
            assert r.headers["X-Fal-Error-Type"] == "client_cancelled"
            assert (await r.json())["error_type"] == "client_cancelled"
    assert "inference_time" not in (await get(session, queued["status_url"]))[1]["metrics"]


async def test_cancel_after_completion_and_of_unknown_ids(server: MockServer, session) -> None:
    """Cancelling a completed job is 400 ALREADY_COMPLETED; an unknown id is 404."""
    job = await submit(session, server)
    await wait_completed(session, server, job["request_id"])
    async with session.put(job["cancel_url"], headers=AUTH) as r:
        assert (r.status, await r.json()) == (400, {"status": "ALREADY_COMPLETED"})
    async with session.put(job_url(server, str(uuid.uuid4()), "/cancel"), headers=AUTH) as r:
        assert r.status == 404


@pytest.mark.parametrize(
    ("headers", "scheme", "keys", "expected"),
    [
        ({}, "any", (), 401),
        ({"Authorization": ""}, "any", (), 401),
        ({"Authorization": "Key "}, "any", (), 401),
        ({"Authorization": "Key wrong"}, "any", ("right",), 401),
        ({"Authorization": "Key right"}, "any", ("right",), 200),
        ({"Authorization": "Bearer right"}, "any", ("right",), 200),
        ({"Authorization": "Bearer right"}, "key", ("right",), 401),
        ({"Authorization": "Key right"}, "bearer", ("right",), 401),
        ({"Authorization": "Basic cmlnaHQ="}, "any", (), 401),
    ],
)
async def test_auth(server: MockServer, session, headers, scheme, keys, expected) -> None:
    """Missing, empty, wrong or wrongly-schemed keys are 401 {"detail"}; right ones pass."""
    server.config.auth_scheme = scheme
    server.config.api_keys = keys
    async with session.post(
        f"{server.base_url}/{KLING}", json={"prompt": "x"}, headers=headers
    ) as r:
        assert r.status == expected
        if expected == 401:
            assert isinstance((await r.json())["detail"], str)


async def test_status_result_and_cancel_need_auth_too(server: MockServer, session) -> None:
    """Without a key, status, result and cancel are 401 as well."""
    job = await submit(session, server)
    for method, url in (
        ("GET", job["status_url"]),
        ("GET", job["response_url"]),
        ("PUT", job["cancel_url"]),
    ):
        async with session.request(method, url) as r:
            assert r.status == 401


async def test_status_lives_on_owner_app_only(server: MockServer, session) -> None:
    """Status under the full endpoint id or another app is 404; quickrouter's auto alias works."""
    job = await submit(session, server)
    rid = job["request_id"]
    assert (await get(session, job_url(server, rid, "/status", app=KLING)))[0] == 404
    assert (await get(session, job_url(server, rid, "/status", app="fal-ai/other")))[0] == 404
    assert (await get(session, job_url(server, str(uuid.uuid4()), "/status")))[0] == 404
    await wait_completed(session, server, rid)
    assert (await get(session, job_url(server, rid, app="fal-ai/auto")))[0] == 200


async def test_namespaced_apps_keep_three_segments(server: MockServer, session) -> None:
    """A workflows/ endpoint's status, result and cancel live on its three-segment owner/app."""
    endpoint = "workflows/acme/my-flow/v1"
    server.config.specs[endpoint] = passthrough(endpoint)
    async with session.post(f"{server.base_url}/{endpoint}", json={"x": 1}, headers=AUTH) as r:
        job = await r.json()
    assert job["status_url"].startswith(f"{server.base_url}/workflows/acme/my-flow/requests/")
    assert (await get(session, job["status_url"]))[0] in (200, 202)


async def test_envelope_and_files_base_urls(server: MockServer, session) -> None:
    """The envelope's URLs and the video URL use the configured origins, not the server's."""
    server.config.envelope_base_url = "https://queue.fal.run/"
    server.config.files_base_url = "https://v3.fal.media"
    job = await submit(session, server)
    rid = job["request_id"]
    assert job["status_url"] == f"https://queue.fal.run/{APP}/requests/{rid}/status"
    await wait_completed(session, server, rid)
    _, body = await get(session, job_url(server, rid))
    assert body["video"]["url"] == f"https://v3.fal.media/files/{rid}/output.mp4"


async def test_stream_sends_each_change_then_closes(server: MockServer, session) -> None:
    """The SSE stream goes IN_QUEUE (positions) -> IN_PROGRESS (logs) -> COMPLETED, then ends."""
    server.config.max_in_progress = 1
    server.config.latency = 100.0  # the first job holds the slot for 100 ms
    first = await submit(session, server)
    server.config.latency = 20.0
    second = await submit(session, server)
    found, _ = await events(session, job_url(server, second["request_id"], "/status/stream?logs=1"))
    states = [event["status"] for event in found]
    assert (states[0], found[0]["queue_position"]) == ("IN_QUEUE", 0)
    assert states[-1] == "COMPLETED"
    assert "IN_PROGRESS" in states
    assert states.index("IN_PROGRESS") < states.index("COMPLETED")
    running = next(event for event in found if event["status"] == "IN_PROGRESS")
    assert isinstance(running["logs"], list)
    assert first["request_id"] != second["request_id"]


async def test_quiet_stream_sends_keep_alive_comments(server: MockServer, session) -> None:
    """While nothing changes, the stream sends ': ping' comment lines every keepalive."""
    server.config.latency = 200.0  # 200 ms of quiet running
    server.config.keepalive = 10.0  # a ping every 10 ms
    job = await submit(session, server)
    found, pings = await events(session, job_url(server, job["request_id"], "/status/stream"))
    assert pings >= 2
    assert found[-1]["status"] == "COMPLETED"


async def test_concurrency_cap_is_per_key(server: MockServer, session) -> None:
    """Each key runs at most max_in_progress jobs; the rest wait in order, never refused."""
    server.config.latency = FOREVER
    jobs = [await submit(session, server) for _ in range(5)]
    other = await submit(session, server, headers={"Authorization": "Key other"})
    positions = [(await get(session, job["status_url"]))[1] for job in jobs]
    assert [p["status"] for p in positions] == ["IN_PROGRESS"] * 2 + ["IN_QUEUE"] * 3
    assert [p["queue_position"] for p in positions[2:]] == [0, 1, 2]
    assert (await get(session, other["status_url"]))[1]["status"] == "IN_PROGRESS"
    assert server.stats()["jobs"] == {"IN_QUEUE": 3, "IN_PROGRESS": 3, "COMPLETED": 0}


async def test_start_deadline_header(server: MockServer, session) -> None:
    """X-Fal-Request-Timeout expiring in the queue gives a 504 marked as the user's timeout."""
    server.config.max_in_progress = 1
    server.config.latency = FOREVER
    await submit(session, server)
    job = await submit(session, server, headers={**AUTH, "X-Fal-Request-Timeout": "5"})
    done = await wait_completed(session, server, job["request_id"])
    assert done["error_type"] == "request_timeout"
    async with session.get(job["response_url"], headers=AUTH) as r:
        assert r.status == 504
        assert r.headers["X-Fal-Request-Timeout-Type"] == "user"


async def test_results_expire_after_their_ttl(server: MockServer, session) -> None:
    """With result_ttl set, a result is gone (404) once that long has passed since completion."""
    server.config.result_ttl = 0.0
    job = await submit(session, server)
    await wait_completed(session, server, job["request_id"])
    assert (await get(session, job["response_url"]))[0] == 404


async def test_stats_count_payloads_and_status_polls(server: MockServer, session) -> None:
    """Stats count submits per canonical payload and status polls per request id."""
    job = await submit(session, server, {"prompt": "p", "duration": "5"})
    await submit(session, server, {"duration": "5", "prompt": "p"})
    for _ in range(3):
        await get(session, job["status_url"])
    async with session.get(f"{server.base_url}/_mock/stats") as r:
        stats = await r.json()
    assert sorted(stats["submits_by_payload"].values()) == [2]
    assert stats["status_requests"] == {job["request_id"]: 3}
    assert stats["requests"]["submit"] == {"200": 2}
    assert stats == server.stats()


async def test_mock_reset_and_config_routes(server: MockServer, session) -> None:
    """POST /_mock/reset forgets jobs and counters; GET /_mock/config shows the settings."""
    job = await submit(session, server)
    async with session.post(f"{server.base_url}/_mock/reset") as r:
        assert r.status == 200
    assert server.stats()["jobs"] == {"IN_QUEUE": 0, "IN_PROGRESS": 0, "COMPLETED": 0}
    assert server.stats()["requests"] == {}
    assert (await get(session, job["status_url"]))[0] == 404
    async with session.get(f"{server.base_url}/_mock/config") as r:
        config = await r.json()
    assert config["time_scale"] == 0.001
    assert KLING in config["specs"]


async def test_post_mock_config_changes_faults_live(server: MockServer, session) -> None:
    """POST /_mock/config sets the named settings at once (a CDN outage on, then off) and
    answers them all; an unknown field, a wrong type or an out-of-range value changes nothing."""
    url = f"{server.base_url}/_mock/config"
    async with session.post(url, json={"fault_file_503": 1, "result_ttl": None}) as r:
        assert r.status == 200
        assert (await r.json())["fault_file_503"] == 1.0
    assert server.config.fault_file_503 == 1.0
    job = await submit(session, server)
    await wait_completed(session, server, job["request_id"])
    output = (await get(session, job["response_url"]))[1]["video"]
    async with session.get(output["url"]) as r:
        assert r.status == 503
    for bad, named in [
        ({"fault_file_503": 0, "fault_503": 1.5}, "fault_503"),
        ({"fault_file_503": 0, "no_such": 1}, "no_such"),
        ({"fault_file_503": 0, "latency": "slow"}, "latency"),
        ({"fault_file_503": 0, "status_route": 1}, "status_route"),
        ({"fault_file_503": 0, "specs": []}, "specs"),
        (["fault_file_503"], "JSON object"),
    ]:
        async with session.post(url, json=bad) as r:
            assert r.status == 400
            assert named in (await r.json())["detail"]
    assert server.config.fault_file_503 == 1.0
    async with session.post(url, json={"fault_file_503": 0}) as r:
        assert r.status == 200
    async with session.get(output["url"]) as r:
        assert r.status == 200


async def test_open_streams_end_on_reset_and_on_shutdown(session) -> None:
    """A reset or a server shutdown ends open status streams instead of leaving them hanging."""
    server = MockServer(fast_config(latency=FOREVER))
    await server.start()
    try:
        for end in (server.emulator.reset, server.stop):
            job = await submit(session, server)
            url = job_url(server, job["request_id"], "/status/stream")
            async with session.get(url, headers=AUTH) as r:
                assert b"IN_PROGRESS" in await r.content.readline()
                outcome = end()
                if outcome is not None:
                    await outcome
                rest = await asyncio.wait_for(r.content.read(), 10)
            assert b"data:" not in rest
    finally:
        await server.stop()


async def test_finished_logs_read_the_same_on_every_poll(server: MockServer, session) -> None:
    """Once COMPLETED, a job's logs (with timestamps) no longer change between polls."""
    job = await submit(session, server)
    await wait_completed(session, server, job["request_id"])
    _, first = await get(session, job["status_url"] + "?logs=1")
    _, again = await get(session, job["status_url"] + "?logs=true")
    assert first["logs"] == again["logs"]
    assert [item["message"] for item in first["logs"]][-1] == "Video generated"


async def test_no_status_route_answers_like_a_result_only_proxy(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """With ``status_route`` off, status and status stream answer 404 as an unknown path while
    the result route (also as ``{owner}/auto``) follows the job: 400 until done, then the video."""
    server.config.status_route = False
    rid = (await submit(session, server))["request_id"]
    for suffix in ("/status", "/status/stream"):
        async with session.get(job_url(server, rid, suffix), headers=AUTH) as r:
            assert (r.status, await r.text()) == (404, "404: Not Found")
    status, body = await get(session, job_url(server, rid, app="fal-ai/auto"))
    assert (status, body["detail"]) == (400, "Request is still in progress")
    for _ in range(400):  # bounded: the 20 ms job is done within a few looks 5 ms apart
        status, body = await get(session, job_url(server, rid))
        if status == 200:
            break
        await asyncio.sleep(0.005)
    assert status == 200
    assert body["video"]["url"].endswith(f"/files/{rid}/output.mp4")
    server.config.status_route = True
    status, body = await get(session, job_url(server, rid, "/status"))
    assert (status, body["status"]) == (200, "COMPLETED")


def _fp(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


async def test_stats_per_key_count_jobs_in_flight_and_requests(server: MockServer, session) -> None:
    """Each key (by fingerprint, never the key) has its submits, jobs in flight now and at
    most, the most running at once, and its requests by route; a request about a job sent
    with another key than the one that submitted it is answered and counted."""
    server.config.latency = FOREVER
    jobs = [await submit(session, server) for _ in range(3)]
    other = {"Authorization": "Key other"}
    await submit(session, server, headers=other)
    await get(session, jobs[0]["status_url"])
    async with session.get(jobs[1]["status_url"], headers=other) as r:
        assert r.status == 202
    async with session.put(job_url(server, jobs[2]["request_id"], "/cancel"), headers=AUTH) as r:
        assert r.status == 200
    stats = server.stats()
    assert "test-key" not in str(stats["keys"])
    mine, theirs = stats["keys"][_fp("test-key")], stats["keys"][_fp("other")]
    assert mine == {
        "submits": 3,
        "in_flight": 2,
        "max_in_flight": 3,
        "max_in_progress": 2,
        "requests": {"submit": 3, "status": 1, "cancel": 1},
    }
    assert (theirs["submits"], theirs["max_in_flight"]) == (1, 1)
    assert theirs["requests"] == {"submit": 1, "status": 1}
    assert stats["foreign_key_requests"] == {"status": 1}


async def test_a_locked_key_cannot_submit_but_reads_its_jobs(server: MockServer, session):
    """A key in locked_keys (an account out of credit) gets fal's 403 "User is locked" on
    submit; its jobs submitted before can still be read and cancelled."""
    server.config.latency = FOREVER
    job = await submit(session, server)
    server.config.update({"locked_keys": ["test-key"]})
    async with session.post(f"{server.base_url}/{KLING}", json={"prompt": "a"}, headers=AUTH) as r:
        assert r.status == 403
        assert (await r.json())["detail"].startswith("User is locked. Reason: Exhausted balance")
    assert (await get(session, job["status_url"]))[0] == 202
    async with session.put(job_url(server, job["request_id"], "/cancel"), headers=AUTH) as r:
        assert r.status == 200
    assert server.stats()["keys"][_fp("test-key")]["requests"]["submit"] == 2
    assert "1 locked" in server.config.summary()


async def test_pricing_names_unit_prices_from_the_specs(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """GET /v1/models/pricing: per second where the spec prices by the second, per video
    otherwise; an endpoint it has no spec for is left out."""
    pixverse = "fal-ai/pixverse/v4.5/image-to-video/fast"
    ids = f"{KLING},{pixverse},nobody/unknown"
    status, body = await get(session, f"{server.base_url}/v1/models/pricing?endpoint_id={ids}")
    assert status == 200
    prices = {p["endpoint_id"]: (p["unit_price"], p["unit"], p["currency"]) for p in body["prices"]}
    assert prices[KLING] == (0.07, "second", "USD")
    assert prices[pixverse][1:] == ("video", "USD")
    assert set(prices) == {KLING, pixverse}
