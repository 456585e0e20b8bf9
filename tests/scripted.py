"""A tiny scripted HTTP server for client and download tests: each test says what it answers.

``Scripted.answers`` is a list of handlers consumed in order (the last one repeats); every
request is recorded with its method, path, query and headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Scripted:
    answers: list[Handler] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(
            Seen(request.method, request.path, request.query_string, dict(request.headers), body)
        )
        index = min(len(self.seen), len(self.answers)) - 1
        return await self.answers[index](request)


@asynccontextmanager
async def scripted(*answers: Handler) -> AsyncIterator[Scripted]:
    """Serve ``answers`` on 127.0.0.1 (any free port) for the duration of the block."""
    server = Scripted(list(answers))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield server
    finally:
        await runner.cleanup()


def reply(
    status: int = 200,
    body: object = None,
    headers: dict[str, str] | None = None,
    text: str | None = None,
) -> Handler:
    """A handler answering JSON ``body`` (or ``text``) with ``status`` and ``headers``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if text is not None:
            return web.Response(status=status, text=text, headers=headers, content_type="text/html")
        return web.json_response(body, status=status, headers=headers)

    return handler


async def hang_up(request: web.Request) -> web.StreamResponse:
    """Close the connection without answering (after the request was read)."""
    assert request.transport is not None
    request.transport.close()
    return web.Response(status=204)


async def endless(request: web.Request) -> web.StreamResponse:
    """A 200 JSON answer that never ends: 64 KiB after 64 KiB until the client hangs up."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"status": "IN_QUEUE", "pad": "')
    try:
        while True:
            await response.write(b"x" * 65536)
    except (ConnectionError, aiohttp.ClientError):
        return response


async def trickle(request: web.Request) -> web.StreamResponse:
    """A 200 answer that sends one byte every 20 ms, forever."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    try:
        while True:
            await response.write(b" ")
            await asyncio.sleep(0.02)
    except (ConnectionError, aiohttp.ClientError):
        return response


@dataclass
class Upstream:
    """An answer a proxy got from its upstream: the headers a client reads kept, the rest
    (lengths, encodings) left to the proxy."""

    status: int
    headers: dict[str, str]
    content_type: str
    body: bytes


# Headers of the emulator's answers a client reads.
KEPT = ("retry-after", "x-fal-billable-units", "x-fal-request-id", "x-fal-error-type")


async def forward(
    request: web.Request, session: aiohttp.ClientSession, upstream: str
) -> Upstream | None:
    """Send ``request`` on to ``upstream`` (its key and content type only); None when the
    upstream hung up or cut its answer (the proxy then hangs up in turn: ``hang_up``)."""
    headers = {
        name: value
        for name, value in request.headers.items()
        if name.lower() in ("authorization", "content-type")
    }
    try:
        async with session.request(
            request.method,
            upstream.rstrip("/") + request.path_qs,
            data=await request.read(),
            headers=headers,
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
    except aiohttp.ClientError:
        return None
    kept = {k: v for k, v in answer.headers.items() if k.lower() in KEPT}
    return Upstream(answer.status, kept, answer.content_type, body)


class Forgetful(list[Any]):
    """A record of requests that records none (one placeholder, for ``Scripted.handle``)."""

    def append(self, item: Any) -> None:
        pass


async def serve_forever(make: Callable[[aiohttp.ClientSession], Handler]) -> None:
    """Serve the handler ``make`` gives on a free loopback port until killed, printing
    ``serving on URL``, keeping no record of requests (a long benchmark's proxy)."""
    async with aiohttp.ClientSession() as session, scripted(make(session)) as proxy:
        proxy.seen = Forgetful([None])
        print(f"serving on {proxy.url}", flush=True)
        await asyncio.Event().wait()
