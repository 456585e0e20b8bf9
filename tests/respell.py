"""A proxy with its own spelling: fal's queue API as some proxies serve it, on loopback.

``respelling(upstream, session)`` is a handler for ``scripted``: it forwards each request to the
emulator at ``upstream`` and changes the answer as such proxies do. Each answer's status word
(submit, status, result, cancel) is spelled another way, in turn: ``completed``, ``Completed``,
``in-progress``, ``queued``/``running``/``canceled``; status and result answers (errors too)
come in a ``{"data": ...}`` envelope; the result's video URLs point at the proxy, which serves
each video gzip-encoded whatever the client asked for (``Content-Length`` the encoded size),
and ignores ``Range``. An upstream that hangs up (or cuts its answer short) is hung up on in
turn, so the client sees what it would have seen without the proxy.

As a script, for ``benchmarks/chaos.py``: ``python tests/respell.py UPSTREAM`` serves on a free
loopback port and prints ``serving on URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scripted import Handler, forward, hang_up, serve_forever

_OTHER = {"IN_QUEUE": "queued", "IN_PROGRESS": "running", "CANCELLED": "canceled"}
SPELLINGS: dict[str, Callable[[str], str]] = {
    "lower": str.lower,  # completed, in_progress, already_completed
    "title": lambda word: word.replace("_", " ").title(),  # Completed, In Progress
    "hyphen": lambda word: word.lower().replace("_", "-"),  # in-progress
    "other": lambda word: _OTHER.get(word, word.lower()),  # queued, running, canceled
}


def respelling(
    upstream: str,
    session: aiohttp.ClientSession,
    spellings: tuple[str, ...] = tuple(SPELLINGS),
    *,
    wrap: bool = True,
    gzipped: bool = True,
) -> Handler:
    """The proxy's handler (see the module docstring): ``spellings`` are used in turn."""
    turn = itertools.cycle([SPELLINGS[name] for name in spellings])
    upstream = upstream.rstrip("/")

    async def handler(request: web.Request) -> web.StreamResponse:
        answer = await forward(request, session, upstream)
        if answer is None:  # the upstream hung up or cut its answer: so does the proxy
            return await hang_up(request)
        body, kept = answer.body, answer.headers
        if answer.content_type == "video/mp4" and gzipped:
            kept |= {"Content-Encoding": "gzip", "Content-Type": "video/mp4"}
            return web.Response(status=answer.status, body=gzip.compress(body), headers=kept)
        if answer.content_type != "application/json":
            return web.Response(status=answer.status, body=body, headers=kept)
        data: Any = json.loads(body)
        own = f"http://{request.host}"
        if isinstance(data, dict):
            if isinstance(data.get("status"), str):
                data["status"] = next(turn)(data["status"])
            data = json.loads(json.dumps(data).replace(upstream, own))
            if wrap and request.method == "GET" and "/requests/" in request.path:
                data = {"data": data}
        return web.json_response(data, status=answer.status, headers=kept)

    return handler


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", help="the emulator's base URL")
    upstream = parser.parse_args().upstream
    asyncio.run(serve_forever(lambda session: respelling(upstream, session)))
