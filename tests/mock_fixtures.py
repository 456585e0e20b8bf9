"""Helpers for the emulator's tests: a fast config and a few protocol steps over real HTTP.

Waiting for a job is done on its server-sent status stream, which the emulator pushes on
every change: no test sleeps to let time pass.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from batchgen.mock import MockConfig, MockServer

KLING = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
APP = "fal-ai/kling-video"
KEY = "test-key"
AUTH = {"Authorization": f"Key {KEY}"}


def fast_config(**overrides: Any) -> MockConfig:
    """A config whose 20-second jobs take 20 ms, with no pickup delay and a fixed seed."""
    settings: dict[str, Any] = {
        "time_scale": 0.001,
        "latency": 20.0,
        "latency_jitter": 0.0,
        "queue_delay": 0.0,
        "seed": 7,
    }
    settings.update(overrides)
    return MockConfig(**settings)


def job_url(server: MockServer, request_id: str, suffix: str = "", app: str = APP) -> str:
    return f"{server.base_url}/{app}/requests/{request_id}{suffix}"


async def submit(
    session: aiohttp.ClientSession,
    server: MockServer,
    payload: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Submit one Kling job (default prompt "a cat") and return the envelope; asserts 200."""
    body = {"prompt": "a cat"} if payload is None else payload
    url = f"{server.base_url}/{KLING}"
    async with session.post(url, json=body, headers=AUTH if headers is None else headers) as r:
        assert r.status == 200, await r.text()
        envelope: dict[str, Any] = await r.json()
        return envelope


async def events(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Read a status stream to its end: the ``data:`` events and the count of comment lines."""
    found: list[dict[str, Any]] = []
    comments = 0
    async with session.get(url, headers=AUTH if headers is None else headers) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/event-stream")
        async for raw in r.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                found.append(json.loads(line[len("data: ") :]))
            elif line.startswith(":"):
                comments += 1
    return found, comments


async def wait_completed(
    session: aiohttp.ClientSession, server: MockServer, request_id: str
) -> dict[str, Any]:
    """Follow the job's status stream until COMPLETED; return the last status."""
    found, _ = await events(session, job_url(server, request_id, "/status/stream"))
    assert found[-1]["status"] == "COMPLETED", found
    return found[-1]
