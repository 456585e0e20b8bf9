"""The request log reader: matching inputs across pages, scope and reach errors, over loopback."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from mock_fixtures import AUTH, KLING, submit

from batchgen.api.backoff import Backoff
from batchgen.api.requestlog import LogUnavailable, RequestLog, canonical
from batchgen.mock import MockServer


class Sleeps(list[float]):
    """A sleep that records its delays and returns at once."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)


def reader(session: aiohttp.ClientSession, base: str, sleeps: Sleeps) -> RequestLog:
    return RequestLog(
        session,
        base_url=base,
        authorization=AUTH["Authorization"],
        backoff=Backoff(base=0.01, attempts=3, random=lambda: 0.5),
        sleep=sleeps,
    )


async def _find(log: RequestLog, payload: dict[str, Any]) -> list[str]:
    now = time.time()
    return await log.find(KLING, payload, now - 60, now + 60)


def test_canonical_ignores_key_order() -> None:
    """Two payloads equal as JSON objects have the same canonical text."""
    assert canonical({"b": 1, "a": "é"}) == canonical({"a": "é", "b": 1})


async def test_finds_the_matching_requests_across_pages(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """Requests whose input is the payload are found on every page the cursor leads to, the
    newest first (a job sent again adopts its latest request, not an earlier attempt's)."""
    wanted = {"prompt": "the one", "duration": "5"}
    first = (await submit(session, server, wanted))["request_id"]
    for i in range(101):
        await submit(session, server, {"prompt": f"other {i}"})
    last = (await submit(session, server, {"duration": "5", "prompt": "the one"}))["request_id"]
    assert await _find(reader(session, server.base_url, Sleeps()), wanted) == [last, first]
    assert server.stats()["requests"]["request_log"] == {"200": 2}


async def test_nothing_found_is_an_empty_list(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """A payload never sent is not in the log."""
    await submit(session, server, {"prompt": "a cat"})
    assert await _find(reader(session, server.base_url, Sleeps()), {"prompt": "a dog"}) == []


@pytest.mark.parametrize(
    ("mode", "said", "retries"), [("forbidden", "lacks the scope", 0), ("down", "503", 2)]
)
async def test_an_unreadable_log_is_unavailable(
    server: MockServer, session: aiohttp.ClientSession, mode: str, said: str, retries: int
) -> None:
    """A 403 raises LogUnavailable naming the missing scope at once; a 503 after retries."""
    server.config.request_log = mode
    sleeps = Sleeps()
    with pytest.raises(LogUnavailable, match=said):
        await _find(reader(session, server.base_url, sleeps), {"prompt": "a cat"})
    assert len(sleeps) == retries


async def test_an_unreachable_log_is_unavailable(session: aiohttp.ClientSession) -> None:
    """No server at the address: LogUnavailable after the retries."""
    sleeps = Sleeps()
    with pytest.raises(LogUnavailable, match="unreachable"):
        await _find(reader(session, "http://127.0.0.1:9", sleeps), {"prompt": "a cat"})
    assert len(sleeps) == 2
