"""One answer of the queue API, read with a bound: its status, headers and at most a cap of bytes.

A proxy gone wrong may answer a status look with gigabytes, or with an HTML page. The client
must neither buffer the first nor mistake the second for a status: ``read_answer`` stops at
``limit`` bytes (announced by ``Content-Length``, or counted as they arrive, after any
decompression) and says the answer is incomplete, or (``prune``, for a result: what a job made
is paid for) reads on through up to ``MAX_TRANSFER`` bytes keeping a bounded copy of the JSON
(``batchgen.api.bounded``: a 20 MB ``logs`` list is cut to its first items, a 100,000-deep
object to 64 levels); ``Answer.object`` is the body as a JSON object, parsed within those bounds,
or None (read inside a proxy's ``{"data": {...}}`` envelope: ``unwrapped``); ``Misreads``
counts a job's unreadable answers in a row; ``billable_units`` reads what a result answer says
the job is billed for; ``excerpt`` quotes the start of a body on one printable line, for error
messages; ``log_request`` writes one request's line to the run's request log (the path only: no
query, no header).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from batchgen.api import bounded
from batchgen.api.network import failure
from batchgen.errors import ProtocolError, RetryableError

log = logging.getLogger("batchgen.http")

# Far above any real answer (a Kling result is ~300 bytes), far below what would hurt a laptop.
MAX_BODY = 16 * 1024 * 1024
# What a result answer may be read through (kept pruned to MAX_BODY): a paid job's output is
# worth a long read, not an endless one.
MAX_TRANSFER = 1024 * 1024 * 1024
_UNREAD = object()


class Answer:
    """An HTTP answer. ``complete`` is False when the body was cut at the cap (or not read
    at all because ``Content-Length`` announced more): ``body`` then holds only its start."""

    __slots__ = ("_data", "body", "complete", "headers", "pruned", "size", "status")

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        complete: bool = True,
        *,
        pruned: int = 0,
        size: int | None = None,
    ) -> None:
        self.status, self.headers, self.body, self.complete = status, headers, body, complete
        self.pruned = pruned  # parts of the JSON left out (``read_answer(prune=True)``)
        self.size = len(body) if size is None else size  # bytes the provider sent
        self._data: Any = _UNREAD

    def __repr__(self) -> str:
        cut = "" if self.complete else " cut"
        return f"<Answer {self.status} {len(self.body)} bytes{cut}>"

    def object(self) -> dict[str, Any] | None:
        """The body as a JSON object; None when it is not one (not JSON, cut short, a list)."""
        if self._data is _UNREAD:
            try:
                data = bounded.loads(self.body) if self.complete else None
            except ValueError:
                data = None
            self._data = unwrapped(data) if isinstance(data, dict) else None
        result: dict[str, Any] | None = self._data
        return result


async def read_answer(
    resp: aiohttp.ClientResponse, limit: int = MAX_BODY, *, prune: bool = False
) -> Answer:
    """Read ``resp`` whole, or its first ``limit`` bytes and stop (``complete`` False).
    ``prune``: read on through ``MAX_TRANSFER`` bytes, keeping a pruned copy of at most
    ``limit`` bytes (incomplete only past either bound).

    A body cut short leaves the connection unusable, so it is closed rather than reused.
    """
    announced = resp.content_length
    if announced is not None and announced > (MAX_TRANSFER if prune else limit):
        resp.close()
        return Answer(resp.status, resp.headers, b"", complete=False, size=announced)
    if prune:
        return await _pruned(resp, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        if size + len(chunk) > limit:
            chunks.append(chunk[: limit - size])
            resp.close()
            return Answer(resp.status, resp.headers, b"".join(chunks), complete=False)
        size += len(chunk)
        chunks.append(chunk)
    return Answer(resp.status, resp.headers, b"".join(chunks))


async def _pruned(resp: aiohttp.ClientResponse, limit: int) -> Answer:
    """``resp`` as it came when it fits in ``limit`` (an error page is quoted as it was; what
    parsing it leaves out is counted), else read on through a ``bounded.Pruner``, which keeps
    its bounded copy (see ``read_answer``)."""
    raw: list[bytes] = []
    size = 0
    pruner: bounded.Pruner | None = None
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if pruner is None:
            raw.append(chunk)
            if size <= limit:
                continue
            pruner, chunk = bounded.Pruner(keep=limit), b"".join(raw)  # outgrew: prune it all
            raw.clear()
        try:
            if size > MAX_TRANSFER:
                raise bounded.TooLarge(f"more than {MAX_TRANSFER} bytes")
            pruner.feed(chunk)
        except bounded.TooLarge:
            resp.close()
            return Answer(resp.status, resp.headers, pruner.text()[:limit], False, size=size)
    if pruner is None:
        body = b"".join(raw)
        return Answer(resp.status, resp.headers, body, pruned=bounded.left_out(body))
    return Answer(resp.status, resp.headers, pruner.text(), pruned=pruner.dropped, size=size)


def unwrapped(data: Any) -> Any:
    """The object inside a proxy's top-level ``{"data": {...}}`` envelope; ``data`` itself when
    it is not clearly one: it has a ``status`` of its own, or beside ``data`` something that
    could be an output (an object, a list that is not empty), or ``data`` is itself a File
    (an output whose key is ``data``)."""
    if not isinstance(data, dict) or "status" in data:
        return data
    inner = data.get("data")
    if not isinstance(inner, dict) or isinstance(inner.get("url"), str):
        return data
    for name, value in data.items():
        if name != "data" and isinstance(value, dict | list) and value:
            return data
    return inner


class Misreads:
    """Unreadable answers in a row, per job: one is a hiccup, ``limit`` a protocol error."""

    __slots__ = ("_counts", "limit")

    def __init__(self, limit: int = 3) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}  # request id -> unreadable answers in a row

    def __repr__(self) -> str:
        return f"<Misreads limit={self.limit} jobs={len(self._counts)}>"

    def check(
        self,
        request_id: str,
        route: str,
        answer: Answer,
        *,
        status: bool = False,
        count: bool = True,
    ) -> dict[str, Any]:
        """The answer's JSON object (holding a ``status`` word, if ``status``). An unreadable
        one is logged and raises RetryableError; the ``limit``-th in a row for the same job
        raises ProtocolError, quoting the start of the answer (never, unless ``count``)."""
        data = answer.object()
        if data is not None and (not status or isinstance(data.get("status"), str)):
            self._counts.pop(request_id, None)
            return data
        seen = self._counts.pop(request_id, 0) + (1 if count else 0)
        quoted = excerpt(answer.body)
        if count and seen >= self.limit:
            raise ProtocolError(
                f"{route} answers unreadable ({seen} in a row): {quoted}", status=answer.status
            )
        if count:
            self._counts[request_id] = seen
            log.warning(
                "%s of %s unreadable (%d of %d): %s", route, request_id, seen, self.limit, quoted
            )
        else:
            log.warning("%s of %s unreadable, asking again: %s", route, request_id, quoted)
        raise RetryableError(f"{route} answer unreadable: {quoted}", status=answer.status)


def excerpt(body: bytes, size: int = 200) -> str:
    """The first ``size`` bytes of ``body`` quoted on one printable line; a longer body says
    how long it was."""
    text = body[:size].decode("utf-8", "replace")
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return repr(text) + (f" ({len(body)} bytes in all)" if len(body) > size else "")


def size_text(limit: int) -> str:
    """``16 MiB`` for a whole number of MiB, else ``1000 bytes``."""
    mib = 1024 * 1024
    return f"{limit // mib} MiB" if limit % mib == 0 else f"{limit} bytes"


MAX_REQUEST_ID = 256  # fal's are UUIDs (36 characters)


def request_id_of(answer: Answer) -> str | None:
    """The ``request_id`` an answer names, or None: also for one no URL or log line could
    carry (blank, control characters, longer than ``MAX_REQUEST_ID``, ``.`` or ``..``, which
    a URL's path would fold away)."""
    data = answer.object()
    rid = data.get("request_id") if data is not None else None
    if not isinstance(rid, str) or not rid.strip() or rid.strip() in (".", ".."):
        return None
    return rid if len(rid) <= MAX_REQUEST_ID and rid.isprintable() else None


def billable_units(answer: Answer) -> float | None:
    """The ``x-fal-billable-units`` a result answer carries; None without one (or unreadable):
    a missing figure is unknown, never 0."""
    try:
        units = float(answer.headers.get("x-fal-billable-units", ""))
    except ValueError:
        return None
    return units if math.isfinite(units) and units >= 0 else None


def describe(exc: BaseException) -> str:
    """An exception as ``Type: text`` for messages, or in plain words where batchgen knows
    what to do about it (``batchgen.api.network.failure``)."""
    return failure(exc)


def log_request(
    method: str, url: str, status: int | str, request_id: str | None, started: float
) -> None:
    """One line in the run's request log: method, path (no query, no header), outcome, time."""
    if log.isEnabledFor(logging.INFO):
        # The path only: queries may carry signed tokens, and no header is ever logged.
        path = url.split("?", 1)[0].split("://", 1)[-1]
        path = path[path.find("/") :] if "/" in path else "/"
        ms = (time.perf_counter() - started) * 1000
        log.info("%s %s %s request_id=%s %.0fms", method, path, status, request_id or "-", ms)
