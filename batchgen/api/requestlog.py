"""fal's request log (platform API): find the request a submit made when its answer was lost.

``GET {base}/v1/models/requests/by-endpoint?endpoint_id=..&start=..&end=..&expand=payloads``
lists an account's requests to one endpoint, a page (``limit`` ≤ 100) at a time, following
``next_cursor`` while ``has_more``; each item carries ``request_id`` and, expanded, the
``json_input`` it was sent. ``RequestLog.find`` returns the ids of the requests whose input is
exactly a payload (compared as canonical JSON).

Errors: an answer of 401/403 raises ``LogUnavailable`` saying the key lacks the scope (fal
asks an admin-scoped key for this API); connection failures, timeouts, 429 and 5xx are retried
with the run's backoff, then raise ``LogUnavailable``; so does any other answer. None of them
is fatal for a run: the caller falls back to sending the job again, flagged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp

from batchgen.api.answers import describe, log_request, read_answer
from batchgen.api.backoff import Backoff
from batchgen.errors import BatchgenError

log = logging.getLogger("batchgen.http")
PATH = "/v1/models/requests/by-endpoint"
PAGE = 100  # the most fal lists at once
MAX_PAGES = 50  # 5,000 requests since the lost POST: more is not worth reading


class LogUnavailable(BatchgenError):
    """The request log could not be read (unreachable, or the key lacks the scope)."""


def canonical(value: Any) -> str:
    """``value`` as JSON with sorted keys and no spaces: equal payloads, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def _when(item: dict[str, Any]) -> float:
    """When a log item's request was sent (epoch seconds), or -inf when it does not say."""
    for field in ("sent_at", "started_at"):
        value = item.get(field)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return float("-inf")


class RequestLog:
    """Reads one account's request log at ``base_url`` with ``authorization``."""

    __slots__ = ("_auth", "_backoff", "_base", "_session", "_sleep", "_timeout")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        authorization: str | None,
        backoff: Backoff | None = None,
        timeout: float = 60.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._auth = {"Authorization": authorization} if authorization else {}
        self._backoff = backoff or Backoff()
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 30.0))
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"<RequestLog {self._base}{PATH}>"

    async def find(
        self, endpoint: str, payload: dict[str, Any], start: float, end: float
    ) -> list[str]:
        """Ids of the requests to ``endpoint`` sent in ``[start, end)`` (epoch seconds) whose
        input equals ``payload``, the newest first (by ``sent_at``, else ``started_at``, else
        the log's order): a job sent again adopts its latest request,
        not an earlier attempt's, which may have ended long ago. Raises LogUnavailable."""
        wanted = canonical(payload)
        entries = await self.entries(endpoint, start, end)
        found = [(when, rid) for when, rid, text in entries if text == wanted]
        # Newest first; of two sent at the same time (as the log tells it), the later listed.
        order = sorted(range(len(found)), key=lambda i: (-found[i][0], -i))
        return [found[i][1] for i in order]

    async def entries(
        self, endpoint: str, start: float, end: float
    ) -> list[tuple[float, str, str]]:
        """Every request to ``endpoint`` sent in ``[start, end)``, in the log's order: when it
        was sent (``-inf`` when the log does not say), its id, and its input as canonical JSON
        ("" without one). Raises LogUnavailable."""
        params = {
            "endpoint_id": endpoint,
            "start": iso(start),
            "end": iso(end),
            "expand": "payloads",
            "limit": str(PAGE),
        }
        found: list[tuple[float, str, str]] = []
        for _ in range(MAX_PAGES):
            page = await self._page(params)
            items = page.get("items")
            if not isinstance(items, list):
                raise LogUnavailable(f"the request log answered without items: {str(page)[:200]}")
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("request_id"), str):
                    continue
                text = canonical(item["json_input"]) if "json_input" in item else ""
                found.append((_when(item), item["request_id"], text))
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not isinstance(cursor, str):
                break
            params["cursor"] = cursor
        return found

    async def _page(self, params: dict[str, str]) -> dict[str, Any]:
        url = self._base + PATH
        retry = 0
        while True:
            started = time.perf_counter()
            retry_after = None
            try:
                async with self._session.get(
                    url,
                    params=params,
                    headers=self._auth,
                    allow_redirects=False,
                    timeout=self._timeout,
                ) as resp:
                    answer = await read_answer(resp)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log_request("GET", url, "lost", None, started)
                problem = f"the request log is unreachable: {describe(exc)}"
            else:
                log_request("GET", url, answer.status, None, started)
                if answer.status in (401, 403):
                    raise LogUnavailable(
                        f"the API key lacks the scope to read the request log ({answer.status})"
                    )
                if answer.status == 200:
                    data = answer.object()
                    if data is None:
                        raise LogUnavailable("the request log answered something not JSON")
                    return data
                problem = f"the request log answered {answer.status}"
                if answer.status != 429 and answer.status < 500:
                    raise LogUnavailable(problem)
                header = answer.headers.get("retry-after")
                retry_after = float(header) if header and header.isdigit() else None
            retry += 1
            if retry >= self._backoff.attempts:
                raise LogUnavailable(problem)
            await self._sleep(self._backoff.delay(retry, retry_after))
