"""The emulator's request log route: the account's submits, paged, payloads on request."""

from __future__ import annotations

from typing import Any

import aiohttp
from mock_fixtures import AUTH, KLING, submit

from batchgen.mock import MockServer


async def _get(
    session: aiohttp.ClientSession,
    server: MockServer,
    headers: dict[str, str] | None = None,
    **params: str,
) -> tuple[int, Any]:
    url = f"{server.base_url}/v1/models/requests/by-endpoint"
    query = {"endpoint_id": KLING, **params}
    async with session.get(url, params=query, headers=AUTH if headers is None else headers) as r:
        return r.status, await r.json()


async def test_pages_follow_the_cursor(server: MockServer, session: aiohttp.ClientSession) -> None:
    """Three submits, two a page: the cursor leads to the third; has_more says when to stop."""
    ids = [(await submit(session, server, {"prompt": f"p{i}"}))["request_id"] for i in range(3)]
    status, first = await _get(session, server, limit="2", expand="payloads")
    assert status == 200
    assert first["has_more"] is True
    assert [i["json_input"] for i in first["items"]] == [{"prompt": "p0"}, {"prompt": "p1"}]
    _, second = await _get(session, server, limit="2", cursor=first["next_cursor"])
    assert [i["request_id"] for i in first["items"] + second["items"]] == ids
    assert (second["has_more"], second["next_cursor"]) == (False, None)
    assert "json_input" not in second["items"][0]


async def test_limit_is_at_most_100(server: MockServer, session: aiohttp.ClientSession) -> None:
    """A limit above 100 is refused with 422."""
    status, _ = await _get(session, server, limit="101")
    assert status == 422


async def test_a_key_sees_its_accounts_requests(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """Another key of the account (foreign_keys answer: a key rotated) lists this key's
    submits; another account's (refuse, unknown) none; a window before them is empty."""
    await submit(session, server, {"prompt": "mine"})
    _, same = await _get(session, server, {"Authorization": "Key rotated"})
    assert [item["request_id"] for item in same["items"]] != []
    for answer in ("refuse", "unknown"):
        server.config.foreign_keys = answer
        _, other = await _get(session, server, {"Authorization": "Key someone-else"})
        assert other["items"] == []
    _, before = await _get(session, server, end="2001-01-01T00:00:00Z")
    assert before["items"] == []


async def test_the_fault_switch_answers_403(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """request_log=forbidden answers 403, as fal does to a key without the scope."""
    server.config.request_log = "forbidden"
    status, _ = await _get(session, server)
    assert status == 403
