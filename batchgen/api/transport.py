"""One request to the queue API, sent within the run's bounds and answered by the error tree.

``Transport.call`` is the plumbing of ``batchgen.api.client.QueueClient``: the rate limiter, a
deadline that counts only time the process ran (``batchgen.api.clock``), credentials on API
requests only and no redirect followed, every body read with a cap (``max_body``, 16 MiB: a 2xx
answer larger than that is a ``ProtocolError``, never buffered; a result read with ``prune`` is
read on and kept pruned, see ``batchgen.api.answers``), every answer classified
(``batchgen.api.classify``), and transient failures retried with backoff. A submit is retried
only when it surely created nothing: the connection was never made, a 429, or a 503 from the
ingress (no ``x-fal-request-id``); an answer lost after the POST went out is ``AmbiguousSubmit``.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from batchgen.api import network
from batchgen.api.answers import (
    MAX_BODY,
    Answer,
    describe,
    log_request,
    read_answer,
    request_id_of,
    size_text,
)
from batchgen.api.backoff import Backoff
from batchgen.api.classify import SUBMIT_UNCERTAIN, classify, still_in_progress, surely_not_created
from batchgen.api.clock import PROCESS, RunClock
from batchgen.api.reach import Reach
from batchgen.api.sessions import authorization_header
from batchgen.errors import (
    RESULT_TOO_LARGE,
    AmbiguousSubmit,
    ApiError,
    ProtocolError,
    RetryableError,
)


class Transport:
    """How one API host is asked: a session, a base URL, a key's header and shared bounds."""

    __slots__ = (
        "auth",
        "backoff",
        "base",
        "clock",
        "deadline",
        "limiter",
        "max_body",
        "reach",
        "session",
        "sleep",
        "timeout",
    )

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        authorization: str | None,
        *,
        limiter: Any = None,
        backoff: Backoff | None = None,
        timeout: float = 60.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
        max_body: int = MAX_BODY,
        reach: Reach,
        clock: RunClock = PROCESS,
    ) -> None:
        self.session = session
        self.base = base_url.rstrip("/")
        self.auth = authorization_header(authorization)
        self.limiter = limiter
        self.backoff = backoff or Backoff()
        # The whole request's deadline counts only time the process ran (batchgen.api.clock):
        # an answer that came while it was stopped is read, not called lost. A connect that
        # times out sent nothing, so aiohttp's own timer may time it.
        self.deadline = timeout
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=None, connect=min(timeout, 30.0))
        self.sleep = sleep
        self.max_body = max_body
        self.reach = reach

    def __repr__(self) -> str:
        return f"<Transport {self.base}>"

    def with_auth(self, authorization: str | None) -> Transport:
        """This transport sending ``authorization`` instead (another key of a pool)."""
        other = copy.copy(self)
        other.auth = authorization_header(authorization)
        return other

    async def acquire(self) -> None:
        """Wait for the rate limiter (if any) to let one more request go."""
        if self.limiter is not None:
            await self.limiter.acquire()

    async def call(
        self,
        method: str,
        url: str,
        route: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        request_id: str | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
        accept: tuple[int, ...] = (),
        pending_ok: bool = False,
        stop: Callable[[], bool] | None = None,
        not_sent: Callable[[], Awaitable[None]] | None = None,
        prune: bool = False,
    ) -> Answer:
        """Send one request and read its answer (see the module docstring). ``prune``: read
        a long JSON answer on, keeping a bounded copy (``read_answer``)."""
        retry = 0
        while True:
            error: ApiError | None
            waiting = False
            await self.acquire()
            if before_send is not None:
                await before_send()
            started = time.perf_counter()
            try:
                async with (
                    self.clock.deadline(self.deadline),
                    self.session.request(
                        method,
                        url,
                        json=body,
                        params=params,
                        headers=self.auth,
                        allow_redirects=False,
                        timeout=self.timeout,
                    ) as resp,
                ):
                    answer = await read_answer(resp, self.max_body, prune=prune)
            except network.NOT_SENT as exc:
                log_request(method, url, "not-connected", request_id, started)
                error = RetryableError(f"{route}: cannot connect: {describe(exc)}")
                if not_sent is not None:
                    await not_sent()
                if not network.local(exc):  # too many open files says nothing of the API
                    waiting = self.reach.cannot_connect(
                        self.base,
                        describe(exc),
                        lasting=network.lasting(exc),
                        nobody_here=network.refused_here(exc),
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                log_request(method, url, "lost", request_id, started)
                if route == "submit":
                    raise AmbiguousSubmit(f"submit sent, answer lost: {describe(exc)}") from None
                error = RetryableError(f"{route}: {describe(exc)}")
            else:
                self.reach.answer()
                rid = request_id or answer.headers.get("x-fal-request-id")
                if rid is None and route == "submit" and answer.status < 300:
                    rid = request_id_of(answer)
                log_request(method, url, answer.status, rid, started)
                if not answer.complete and answer.status < 300:  # a submit's may have made a job
                    raise _too_large(route, answer, self.max_body, prune)
                if answer.status in accept or (
                    pending_ok and still_in_progress(answer.status, answer.body)
                ):
                    return answer
                error = classify(
                    answer.status, answer.headers, answer.body, route=route, request_id=request_id
                )
                if error is None:
                    return answer
                if (
                    route == "submit"
                    and isinstance(error, RetryableError)
                    and not surely_not_created(answer.status, answer.headers)
                ):
                    raise AmbiguousSubmit(str(error), status=answer.status) from None
            if not isinstance(error, RetryableError) or error.error_type is not None:
                raise error
            if stop is not None and stop():
                raise error  # asked to stop: nothing went out, nothing more will
            retry += 1
            if retry >= self.backoff.attempts and not waiting:  # a blip is waited out
                raise error
            left = self.reach.time_left()  # never past the moment to give up
            delay = self.backoff.delay(retry, error.retry_after)
            await self.sleep(delay if left is None else min(delay, left))
            if stop is not None and stop():  # asked to stop while waiting: send nothing more
                raise error


def _too_large(route: str, answer: Answer, limit: int, pruned: bool) -> ProtocolError:
    """The error of a 2xx answer too large to read: a submit's may have made a job; a
    result's is a paid output that batchgen could not read (``RESULT_TOO_LARGE``)."""
    if pruned:
        return ProtocolError(
            f"{route} answered {answer.status} with {answer.size:,} bytes of which even a "
            f"pruned copy is more than {size_text(limit)}: the provider's answer was too "
            "large to read",
            status=answer.status,
            error_type=RESULT_TOO_LARGE,
        )
    return ProtocolError(
        f"{route} answered {answer.status} with more than {size_text(limit)}, the most "
        "batchgen reads from the API",
        status=answer.status,
        error_type=SUBMIT_UNCERTAIN if route == "submit" else None,
    )
