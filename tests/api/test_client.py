"""The queue client: classification, retries, URLs, credentials, streams, over loopback."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from scripted import hang_up, reply, scripted

from batchgen.api.backoff import Backoff
from batchgen.api.classify import classify, job_failure, surely_not_created
from batchgen.api.client import QueueClient
from batchgen.api.status import NOT_READY
from batchgen.errors import (
    AmbiguousSubmit,
    FatalError,
    KeyRefused,
    PermanentError,
    RetryableError,
)
from batchgen.plan.endpoint import resolve
from batchgen.run.runner import limiter_for

KLING = resolve("fal-ai/kling-video/v2.5-turbo/pro/text-to-video")
APP = "/fal-ai/kling-video/requests"
AUTH = "Key secret-key"
QUEUED = {
    "status": "IN_QUEUE",
    "request_id": "rid-1",
    "queue_position": 3,
    "status_url": "https://queue.fal.run/x/status",
    "response_url": "https://elsewhere/y",
}


class Sleeps(list[float]):
    """A sleep that records its delays and returns at once."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)


def client(
    session: aiohttp.ClientSession, base: str, sleeps: Sleeps | None = None, **kwargs: Any
) -> QueueClient:
    return QueueClient(
        session,
        base_url=base,
        endpoint=KLING,
        authorization=AUTH,
        backoff=Backoff(base=0.01, attempts=4, random=lambda: 0.5),
        sleep=sleeps if sleeps is not None else Sleeps(),
        **kwargs,
    )


# -- classification (pure) ---------------------------------------------------------------------

JSON = b'{"detail": "%s"}'


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind", "error_type"),
    [
        (429, {}, b'{"detail":"Rate limit exceeded"}', RetryableError, None),
        (503, {"Server": "nginx"}, b"<html>503 nginx</html>", RetryableError, None),
        (500, {"x-fal-request-id": "r"}, b'{"detail":"boom"}', RetryableError, None),
        (400, {}, b'{"detail":"Request is still in progress"}', RetryableError, None),
        (401, {}, b'{"detail":"Invalid API key"}', KeyRefused, None),
        (403, {}, b'{"detail":"forbidden"}', KeyRefused, None),
        (402, {}, b"{}", KeyRefused, None),
        (400, {}, b'{"detail":"User has exhausted balance"}', KeyRefused, None),
        (400, {}, b'{"detail":"User is locked. Reason: billing"}', KeyRefused, None),
        (422, {}, b'{"detail":"unsafe content"}', PermanentError, None),
        (
            503,
            {},
            b'{"detail":"Runner disconnected","error_type":"runner_disconnected"}',
            RetryableError,
            "runner_disconnected",
        ),
        (
            504,
            {"X-Fal-Error-Type": "request_timeout"},
            b'{"detail":"late"}',
            RetryableError,
            "request_timeout",
        ),
        (400, {}, b'{"detail":"bad","error_type":"bad_request"}', PermanentError, "bad_request"),
        (
            499,
            {},
            b'{"detail":"gone","error_type":"client_cancelled"}',
            PermanentError,
            "client_cancelled",
        ),
        (302, {"Location": "https://elsewhere/"}, b"", FatalError, None),
    ],
)
def test_classify_maps_answers_to_the_error_tree(
    status: int, headers: dict[str, str], body: bytes, kind: type, error_type: str | None
) -> None:
    """Each kind of answer lands on its branch, with the job's error_type when it has one."""
    error = classify(status, headers, body, route="result")
    assert type(error) is kind
    assert error is not None
    assert error.error_type == error_type


def test_classify_success_is_none() -> None:
    """Any 2xx is a success."""
    assert classify(200, {}, b"{}") is None
    assert classify(202, {}, b"{}") is None


def test_classify_reads_retry_after() -> None:
    """429 carries Retry-After, in seconds or as an HTTP date."""
    error = classify(429, {"Retry-After": "7"}, b"")
    assert error is not None
    assert error.retry_after == 7.0
    dated = classify(429, {"retry-after": "Fri, 31 Jan 2020 12:00:00 GMT"}, b"")
    assert dated is not None
    assert dated.retry_after == 0.0


def test_classify_validation_list_keeps_the_providers_words() -> None:
    """A 422 detail list becomes 'field: message' parts, in the provider's words."""
    body = b'{"detail":[{"loc":["body","prompt"],"msg":"too long","type":"string_too_long"}]}'
    error = classify(422, {}, body, route="result")
    assert isinstance(error, PermanentError)
    assert "prompt: too long" in str(error)


def test_classify_file_host_refusals_are_not_fatal() -> None:
    """A file host's 403 is a missing file (permanent), its 503 a retry: never fatal."""
    assert type(classify(403, {}, b"", route="file")) is PermanentError
    assert type(classify(503, {}, b"", route="file")) is RetryableError


def test_classify_unknown_endpoint_on_submit_is_fatal() -> None:
    """A 404 on submit means the endpoint id is wrong for every job: fatal."""
    assert (
        type(classify(404, {}, b'{"detail":"Application not found"}', route="submit")) is FatalError
    )


def test_classify_unknown_request_id() -> None:
    """A 404 on status, stream or result means the provider forgot the request id
    (unknown_request, naming it); a 404 with an error_type, or on cancel, does not."""
    body = b'{"detail":"Request r-9 not found"}'
    for route in ("status", "stream", "result"):
        error = classify(404, {}, body, route=route, request_id="r-9")
        assert type(error) is PermanentError
        assert error.error_type == "unknown_request"
        assert str(error) == "request r-9 is unknown to the provider (expired?)"
    typed = classify(404, {}, b'{"detail":"x","error_type":"bad_request"}', route="result")
    assert typed is not None
    assert typed.error_type == "bad_request"
    cancel = classify(404, {}, body, route="cancel", request_id="r-9")
    assert cancel is not None
    assert cancel.error_type is None


async def test_unknown_request_is_not_retried(session: aiohttp.ClientSession) -> None:
    """Status and result of an id the provider does not know fail at once, without retries."""
    for call in ("status", "result"):
        async with scripted(reply(404, {"detail": "Request rid not found"})) as server:
            with pytest.raises(PermanentError, match="request rid is unknown to the provider"):
                await getattr(client(session, server.url), call)("rid")
        assert len(server.seen) == 1


def test_job_failure_transient_and_permanent() -> None:
    """COMPLETED with a transient error_type means submit again; others fail the job."""
    assert type(job_failure("Runner disconnected", "runner_disconnected")) is RetryableError
    assert type(job_failure("x", "startup_timeout")) is RetryableError
    assert type(job_failure("nope", "bad_request")) is PermanentError
    assert type(job_failure("odd", None)) is PermanentError


def test_surely_not_created() -> None:
    """Only 429 and an ingress 503 (no x-fal-request-id) prove no job was created."""
    assert surely_not_created(429, {})
    assert surely_not_created(503, {"Server": "nginx"})
    assert not surely_not_created(503, {"X-Fal-Request-Id": "r"})
    assert not surely_not_created(502, {})
    assert not surely_not_created(504, {})


# -- over loopback ----------------------------------------------------------------------------


async def test_urls_are_built_on_the_configured_base(session: aiohttp.ClientSession) -> None:
    """Status, result and cancel go to base/owner/app/requests/id, never the envelope's URLs;
    every API request carries the key."""
    async with scripted(
        reply(200, QUEUED),
        reply(202, {"status": "IN_PROGRESS"}),
        reply(200, {"video": {"url": "u"}}),
        reply(200, {"status": "CANCELLATION_REQUESTED"}),
    ) as server:
        api = client(session, server.url + "/proxy/")
        submitted = await api.submit({"prompt": "a cat"})
        status = await api.status(submitted.request_id)
        await api.result(submitted.request_id)
        word = await api.cancel(submitted.request_id)
    assert (submitted.request_id, submitted.status.queue_position) == ("rid-1", 3)
    assert status.state == "IN_PROGRESS"
    assert word == "CANCELLATION_REQUESTED"
    assert [(s.method, s.path) for s in server.seen] == [
        ("POST", "/proxy/fal-ai/kling-video/v2.5-turbo/pro/text-to-video"),
        ("GET", f"/proxy{APP}/rid-1/status"),
        ("GET", f"/proxy{APP}/rid-1"),
        ("PUT", f"/proxy{APP}/rid-1/cancel"),
    ]
    assert server.seen[0].body == b'{"prompt": "a cat"}'
    assert all(s.headers["Authorization"] == AUTH for s in server.seen)


async def test_request_id_cannot_add_path_segments(session: aiohttp.ClientSession) -> None:
    """A request id from the wire is quoted into one path segment."""
    assert (
        client(session, "http://h").url("../../x", "/status") == f"http://h{APP}/..%2F..%2Fx/status"
    )


async def test_submit_retried_after_429_and_ingress_503(session: aiohttp.ClientSession) -> None:
    """429 (honouring Retry-After) and an ingress 503 surely created nothing: sent again."""
    sleeps = Sleeps()
    calls: list[int] = []

    async def before_send() -> None:
        calls.append(1)

    async with scripted(
        reply(429, {"detail": "slow down"}, {"Retry-After": "3"}),
        reply(503, text="<html>nginx</html>"),
        reply(200, QUEUED),
    ) as server:
        answer = await client(session, server.url, sleeps).submit(
            {"prompt": "x"}, before_send=before_send
        )
    assert answer.request_id == "rid-1"
    assert len(server.seen) == 3
    assert len(calls) == 3
    assert sleeps[0] == 3.0


async def test_submit_after_body_sent_is_ambiguous(session: aiohttp.ClientSession) -> None:
    """A reset, a 502 or a 503 with a request id after the POST went out: AmbiguousSubmit,
    never sent again by the client (a 200 without an id: see test_answers)."""
    for answer in (
        hang_up,
        reply(502, text="bad gateway"),
        reply(503, {"detail": "x"}, {"x-fal-request-id": "r"}),
    ):
        async with scripted(answer) as server:
            with pytest.raises(AmbiguousSubmit):
                await client(session, server.url).submit({"prompt": "x"})
        assert len(server.seen) == 1


async def test_submit_timeout_is_ambiguous(session: aiohttp.ClientSession) -> None:
    """A submit whose answer does not come in time is ambiguous."""
    never = asyncio.Event()

    async def stall(request: web.Request) -> web.StreamResponse:
        await never.wait()
        return web.Response()

    async with scripted(stall) as server:
        with pytest.raises(AmbiguousSubmit):
            await client(session, server.url, timeout=0.05).submit({"prompt": "x"})


async def test_submit_to_a_closed_port_is_retried_then_given_up() -> None:
    """Connection refused means nothing was sent: retried, then a RetryableError."""
    sleeps = Sleeps()
    async with scripted(reply()) as server:
        url = server.url
    async with aiohttp.ClientSession() as session:
        with pytest.raises(RetryableError, match="cannot connect"):
            await client(session, url, sleeps).submit({"prompt": "x"})
    assert len(sleeps) == 3


async def test_status_retries_transient_answers(session: aiohttp.ClientSession) -> None:
    """Status is retried on 503, 429 and 500, with growing delays."""
    sleeps = Sleeps()
    async with scripted(
        reply(503, text="nginx"),
        reply(429),
        reply(500, {"detail": "x"}),
        reply(202, {"status": "IN_QUEUE", "queue_position": 0}),
    ) as server:
        status = await client(session, server.url, sleeps).status("rid")
    assert status.state == "IN_QUEUE"
    assert status.queue_position == 0
    assert sleeps == [0.01, 0.02, 0.04]


async def test_status_gives_up_after_attempts(session: aiohttp.ClientSession) -> None:
    """A status that keeps failing raises RetryableError after the backoff's attempts."""
    async with scripted(reply(500, {"detail": "down"})) as server:
        with pytest.raises(RetryableError, match="down"):
            await client(session, server.url).status("rid")
    assert len(server.seen) == 4


async def test_unknown_status_strings_are_tolerated(session: aiohttp.ClientSession) -> None:
    """An unknown status (CANCELLATION_REQUESTED) is returned, not an error."""
    async with scripted(reply(202, {"status": "CANCELLATION_REQUESTED"})) as server:
        status = await client(session, server.url).status("rid")
    assert status.state == "CANCELLATION_REQUESTED"
    assert not status.done


async def test_job_errors_are_not_retried_as_requests(session: aiohttp.ClientSession) -> None:
    """A result with a job error_type, a 422 or a 401 is asked once."""
    cases = [
        (
            reply(
                503,
                {"detail": "Runner disconnected", "error_type": "runner_disconnected"},
                {"x-fal-request-id": "r"},
            ),
            RetryableError,
        ),
        (reply(422, {"detail": [{"loc": ["body", "prompt"], "msg": "refused"}]}), PermanentError),
        (reply(401, {"detail": "Invalid API key"}), FatalError),
    ]
    for answer, kind in cases:
        async with scripted(answer) as server:
            with pytest.raises(kind):
                await client(session, server.url).result("rid")
        assert len(server.seen) == 1


async def test_cancel_answers(session: aiohttp.ClientSession) -> None:
    """Cancel reports CANCELLATION_REQUESTED, ALREADY_COMPLETED, NOT_FOUND or NO_CANCEL_ROUTE."""
    async with scripted(
        reply(202, {"status": "CANCELLATION_REQUESTED"}),
        reply(400, {"status": "ALREADY_COMPLETED"}),
        reply(404, {"detail": "not found"}),
        reply(404, {"detail": "Request rid not found"}),  # the result route agrees: unknown
        reply(405, text="405: Method Not Allowed"),
        reply(400, {"detail": "Request is still in progress"}),  # the result route knows it
        reply(200, {}),
    ) as server:
        api = client(session, server.url)
        words = [await api.cancel("rid") for _ in range(5)]
    assert words == [
        "CANCELLATION_REQUESTED",
        "ALREADY_COMPLETED",
        "NOT_FOUND",
        "NO_CANCEL_ROUTE",
        "CANCELLATION_REQUESTED",
    ]
    assert [(s.method, s.path.rsplit("/", 1)[-1]) for s in server.seen] == [
        ("PUT", "cancel"),
        ("PUT", "cancel"),
        ("PUT", "cancel"),
        ("GET", "rid"),
        ("PUT", "cancel"),
        ("GET", "rid"),
        ("PUT", "cancel"),
    ]


async def test_api_redirects_are_not_followed(session: aiohttp.ClientSession) -> None:
    """An API redirect is fatal; the key never follows it to the other host."""
    async with scripted(reply()) as elsewhere:
        moved = reply(302, {}, {"Location": elsewhere.url + "/x"})
        async with scripted(moved) as server:
            with pytest.raises(FatalError, match="redirect"):
                await client(session, server.url).status("rid")
    assert elsewhere.seen == []


async def stream_of(
    request: web.Request, chunks: list[bytes], hold: asyncio.Event | None = None
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
    if hold is not None:
        await hold.wait()
    return response


async def test_stream_yields_statuses_until_close(session: aiohttp.ClientSession) -> None:
    """Server-sent events: comments skipped, multi-line data joined, one status per event."""
    chunks = [
        b": ping\n\n",
        b'data: {"status": "IN_QUEUE",\n',
        b'data: "queue_position": 1}\n\n',
        b'data: {"status": "IN_PROGRESS"}\n\n',
        b'data: {"status": "COMPLETED"}\n\n',
    ]

    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream_of(request, chunks)

    async with scripted(handler) as server:
        seen = [s async for s in client(session, server.url).stream("rid", silence=5)]
    assert [(s.state, s.queue_position) for s in seen] == [
        ("IN_QUEUE", 1),
        ("IN_PROGRESS", None),
        ("COMPLETED", None),
    ]
    assert server.seen[0].path == f"{APP}/rid/status/stream"
    assert server.seen[0].headers["Authorization"] == AUTH


async def test_silent_stream_raises_retryable(session: aiohttp.ClientSession) -> None:
    """A stream silent for longer than `silence` raises RetryableError (fall back to polls)."""
    hold = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream_of(request, [b'data: {"status": "IN_QUEUE"}\n\n'], hold)

    seen: list[str] = []

    async def follow(url: str) -> None:
        async for status in client(session, url).stream("rid", silence=0.05):
            seen.append(status.state)

    async with scripted(handler) as server:
        with pytest.raises(RetryableError, match="stream"):
            await follow(server.url)
        hold.set()
    assert seen == ["IN_QUEUE"]


class Stamped:
    """A limiter that notes when each request was let through."""

    def __init__(self, rate: float) -> None:
        self.inner = limiter_for(rate)
        self.stamps: list[float] = []

    async def acquire(self) -> None:
        await self.inner.acquire()
        self.stamps.append(time.monotonic())


async def test_rate_limiter_spaces_requests(session: aiohttp.ClientSession) -> None:
    """All kinds of requests share one budget: 60 at 200/s take at least 0.2 s, and no 100 ms
    window lets through more than the burst (a tenth of a second's worth) plus 100 ms of the
    rate."""
    limiter = Stamped(200)

    async def ok(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/status"):
            return web.json_response({"status": "IN_QUEUE", "request_id": "r"}, status=202)
        if request.path.endswith("/cancel"):
            return web.json_response({"status": "CANCELLATION_REQUESTED"})
        return web.json_response({"video": {"url": "https://cdn.example/v.mp4"}})

    async with scripted(ok) as server:
        api = client(session, server.url, limiter=limiter)
        started = time.monotonic()
        kinds = [lambda: api.status("r"), lambda: api.result("r"), lambda: api.cancel("r")]
        await asyncio.gather(*(kinds[i % 3]() for i in range(60)))
    assert time.monotonic() - started >= 0.19
    assert len(limiter.stamps) == len(server.seen) == 60
    assert _busiest(limiter.stamps, 0.1) <= 20 + 20 + 1  # +1: one right on the window's edge


async def test_siblings_send_their_own_key_and_share_the_rest(
    session: aiohttp.ClientSession,
) -> None:
    """A sibling (another key of a pool) sends its own key and shares the rate limiter and
    the follow mode; a key the provider refuses raises KeyRefused naming the key sent."""
    limiter = Stamped(1000)

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers["Authorization"] == "Key other":
            return web.json_response({"detail": "Invalid API key"}, status=401)
        if request.path.endswith("/status"):
            return web.Response(status=404, text="404: Not Found")
        return web.json_response({"detail": "Request is still in progress"}, status=400)

    async with scripted(handler) as server:
        first = client(session, server.url, limiter=limiter, follow="auto", key_id="A:1")
        other = first.sibling("Key other", "B:2")
        await first.look("r")  # no status route: the whole run follows results from now
        with pytest.raises(KeyRefused) as caught:
            await other.look("r")
    assert caught.value.key_id == "B:2"
    assert other.follow == first.follow == "result"
    assert [r.headers["Authorization"] for r in server.seen] == [AUTH, AUTH, "Key other"]
    assert len(limiter.stamps) == 3


def _busiest(stamps: list[float], window: float) -> int:
    stamps.sort()
    return max(sum(1 for t in stamps if s <= t < s + window) for s in stamps)


# -- following a job: status looks or result polling ----------------------------------------------

IN_PROGRESS = reply(400, {"detail": "Request is still in progress"})
OUTPUT = {"video": {"url": "https://cdn.example/v.mp4", "file_size": 10}}
ROUTE_MISSING = reply(404, text="404: Not Found")


async def test_result_mode_reads_pending_answers_at_once(session: aiohttp.ClientSession) -> None:
    """In result mode a look at a job not done yet (400 "still in progress", 202 or 200 with a
    status body) is one request, not retried; a 200 output ends it with the output."""
    async with scripted(
        IN_PROGRESS,
        reply(202, {"status": "IN_QUEUE", "queue_position": 3}),
        reply(200, {"status": "IN_PROGRESS", "request_id": "rid"}),
        reply(200, OUTPUT),
    ) as server:
        api = client(session, server.url, follow="result")
        looks = [await api.look("rid") for _ in range(4)]
    assert [look.status.state for look in looks] == [
        NOT_READY,
        "IN_QUEUE",
        "IN_PROGRESS",
        "COMPLETED",
    ]
    assert looks[1].status.queue_position == 3
    assert [look.output for look in looks] == [None, None, None, OUTPUT]
    assert {s.path for s in server.seen} == {"/fal-ai/kling-video/requests/rid"}
    assert len(server.seen) == 4


async def test_result_mode_raises_the_jobs_own_error(session: aiohttp.ClientSession) -> None:
    """A result-mode look at a job that failed raises its classified error (once, no retry)."""
    body = {"detail": "Runner disconnected", "error_type": "runner_disconnected"}
    async with scripted(reply(503, body, {"x-fal-request-id": "rid"})) as server:
        with pytest.raises(RetryableError) as caught:
            await client(session, server.url, follow="result").look("rid")
    assert caught.value.error_type == "runner_disconnected"
    assert len(server.seen) == 1


async def test_auto_switches_when_the_result_route_knows_the_job(
    session: aiohttp.ClientSession,
) -> None:
    """auto: a status 404 or 405 for a job the result route knows switches the client to result
    polling, says so once, and the look answers from the result route."""
    notes: list[str] = []
    async with scripted(ROUTE_MISSING, IN_PROGRESS, reply(200, OUTPUT)) as server:
        api = client(session, server.url, follow="auto", notify=notes.append)
        first = await api.look("rid")
        second = await api.look("rid")
    assert api.follow == "result"
    assert (first.status.state, second.output) == (NOT_READY, OUTPUT)
    assert [s.path.rsplit("/", 1)[-1] for s in server.seen] == ["status", "rid", "rid"]
    assert len(notes) == 1
    assert "following jobs by their result" in notes[0]


async def test_unknown_only_when_both_routes_say_so(session: aiohttp.ClientSession) -> None:
    """A status 404 confirmed by a result 404 is an unknown request; the client keeps its mode."""
    async with scripted(ROUTE_MISSING, reply(404, {"detail": "Request rid not found"})) as server:
        api = client(session, server.url, follow="auto")
        with pytest.raises(PermanentError) as caught:
            await api.look("rid")
    assert caught.value.error_type == "unknown_request"
    assert api.follow == "auto"


async def test_forced_status_mode_refuses_a_provider_without_status_route(
    session: aiohttp.ClientSession,
) -> None:
    """follow=status: a status 405 for a job the result route knows is fatal, naming the fix."""
    async with scripted(reply(405, text="405: Method Not Allowed"), IN_PROGRESS) as server:
        api = client(session, server.url, follow="status")
        with pytest.raises(FatalError, match=r"no status route.*--follow result"):
            await api.look("rid")
    assert api.follow == "status"


async def test_status_mode_look_is_one_status_request(session: aiohttp.ClientSession) -> None:
    """follow=status: a look is one GET of the status route, and carries no output."""
    async with scripted(reply(200, {"status": "COMPLETED"})) as server:
        look = await client(session, server.url).look("rid")
    assert look.status.done
    assert look.output is None
    assert [s.path for s in server.seen] == ["/fal-ai/kling-video/requests/rid/status"]
