"""A proxy with odd answers: fal's queue API passed through, with one habit nobody expects.

``odd(upstream, session, habit)`` is a handler for ``scripted``: it forwards each request to the
emulator at ``upstream`` and answers with one ``habit``:

- ``deep``: every result answer carries a ``debug`` object nested ``DEPTH`` levels deep (~600
  KB), before the video;
- ``huge``: every result answer carries a ``logs`` list of ~20 MB, before the video;
- ``repeat``: every ``REPEAT``-th submit is sent on, its job made, and answered with the
  previous submit's request id;
- ``balance``: every submit is answered 200 ``{"detail": "Insufficient balance"}`` and not
  sent on (no job, no request id).

As a script, for ``benchmarks/chaos.py``: ``python tests/oddproxy.py UPSTREAM HABIT`` serves on a
free loopback port and prints ``serving on URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scripted import Handler, forward, hang_up, serve_forever

DEPTH = 100_000
LOGS = 20 * 1024 * 1024
REPEAT = 2
HABITS = ("deep", "huge", "repeat", "balance")


def _deep() -> bytes:
    return b'"debug":' + b'{"a":' * DEPTH + b"1" + b"}" * DEPTH


def _logs() -> bytes:
    line = json.dumps({"message": "step done " + "x" * 80, "level": "INFO"}).encode()
    return b'"logs":[' + b",".join([line] * (LOGS // (len(line) + 1))) + b"]"


def odd(upstream: str, session: aiohttp.ClientSession, habit: str, every: int = REPEAT) -> Handler:
    """The proxy's handler (see the module docstring)."""
    if habit not in HABITS:
        raise ValueError(f"habit must be one of {HABITS}")
    upstream = upstream.rstrip("/")
    extra = {"deep": _deep, "huge": _logs}.get(habit, lambda: b"")()
    submits: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        submit = request.method == "POST" and "/requests" not in request.path
        if submit and habit == "balance":
            return web.json_response({"detail": "Insufficient balance"})
        answer = await forward(request, session, upstream)
        if answer is None:  # the upstream hung up or cut its answer: so does the proxy
            return await hang_up(request)
        body, kept = answer.body, answer.headers
        if submit and habit == "repeat" and answer.status == 200:
            data = json.loads(body)
            submits.append(data["request_id"])
            if len(submits) % every == 0:
                data["request_id"] = submits[-2]
            return web.json_response(data, headers=kept)
        parts = request.path.rstrip("/").split("/")
        is_result = request.method == "GET" and len(parts) > 2 and parts[-2] == "requests"
        if extra and is_result and answer.status == 200 and body.startswith(b"{"):
            body = b"{" + extra + b"," + body[1:]
        kind = answer.content_type
        return web.Response(status=answer.status, body=body, headers=kept, content_type=kind)

    return handler


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", help="the emulator's base URL")
    parser.add_argument("habit", choices=HABITS)
    parser.add_argument("--every", type=int, default=REPEAT, help="repeat: every N-th submit")
    args = parser.parse_args()
    asyncio.run(serve_forever(lambda s: odd(args.upstream, s, args.habit, args.every)))
