"""The queue API client: submit, status (polled or streamed), result and cancel.

One rule about URLs: status, result and cancel are built on the *configured* base URL from the
endpoint's ``owner/app`` and the request id, never taken from the submit envelope (a proxy
passes fal's envelope through, whose URLs point at fal's host, where its token must not go).
Credentials go on API requests only, redirects are not followed: they never leave the origin.

Every HTTP answer is classified in one place, ``classify``, into the error tree of
``batchgen.errors``. What each branch means here: a ``RetryableError`` without ``error_type``
is retried with backoff (the *request* may succeed later); with one, the *job* failed
transiently and must be submitted again; a ``KeyRefused`` names the key sent (``key_id``); a
``ProtocolError`` for a 2xx submit without a usable ``request_id`` has error_type
``submit_uncertain`` (a job may exist: never sent again automatically).

How a request is sent, bounded and retried is ``batchgen.api.transport``. A 2xx submit whose body
is an error and holds no request id (``{"detail": "Insufficient balance"}``) made no job: it is
classified like the same text in a 4xx (``classify.refusal_in_success``). A result answer is
read through ``prune`` (a 20 MB ``logs`` list or a 100,000-deep debug object cannot hide the
video: ``batchgen.api.bounded``); one too large even pruned is ``RESULT_TOO_LARGE``.
A status or result answer that cannot be read (not JSON, cut
short, not an object, a status object without a ``status`` word) is a ``RetryableError`` and is
logged; the ``unreadable_limit``-th (3) in a row for the same job is a ``ProtocolError``, so
the job fails within a few looks saying what came back, instead of timing out much later.
Status words are read in any spelling a proxy uses (``completed``, ``In Progress``), and an
answer in a ``{"data": {...}}`` envelope is read inside it (``batchgen.api.status``,
``batchgen.api.answers.unwrapped``). Unknown status words are fine: they are readable. Reading the
output of a job known COMPLETED (``result``) is not counted: it is paid for, keep asking.

How a job is followed (``follow``): ``status`` looks at ``.../status`` until COMPLETED, then
reads the result once (fal direct); ``result`` polls the result route itself, which answers
"still in progress" (or 202 with a status body) until the output is there (a proxy that
documents only the result route); ``auto`` starts with ``status`` and switches the whole client
to ``result`` the first time the status route answers 404 or 405 for a job the result route
knows. A request id is unknown to the provider only when the result route says so too.

Several keys: ``sibling`` gives a client that sends another key and shares everything else
(session, rate limiter, reach, how jobs are followed), so a run with a pool of keys keeps one
rate limit and switches to ``result`` once for all. A ``KeyRefused`` names the key that was
refused by the ``key_id`` the client was given.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp

from batchgen.api import bounded
from batchgen.api.answers import (
    MAX_BODY,
    Answer,
    Misreads,
    billable_units,
    describe,
    excerpt,
    log_request,
    read_answer,
    request_id_of,
)
from batchgen.api.backoff import Backoff
from batchgen.api.classify import (
    SUBMIT_UNCERTAIN,
    UNKNOWN_REQUEST,
    classify,
    detail,
    refusal_in_success,
)
from batchgen.api.clock import PROCESS, RunClock
from batchgen.api.reach import Reach
from batchgen.api.sse import payloads
from batchgen.api.status import (
    NOT_READY,
    Look,
    Status,
    Submitted,
    cancel_word,
    is_status,
    pending_status,
)
from batchgen.api.transport import Transport
from batchgen.errors import (
    ApiError,
    FatalError,
    KeyRefused,
    PermanentError,
    ProtocolError,
    RetryableError,
)
from batchgen.plan.endpoint import EndpointSpec, owner_app
from batchgen.plan.settings import FOLLOW_MODES

log = logging.getLogger("batchgen.http")


class _Mode:
    """How jobs are followed; one object for a client and its siblings (one switch for all)."""

    __slots__ = ("follow",)

    def __init__(self, follow: str) -> None:
        self.follow = follow


class QueueClient:
    """Talks to one endpoint on one queue API. Shares ``limiter`` with nobody else's host."""

    __slots__ = ("_misreads", "_mode", "_notify", "_transport", "endpoint", "key_id")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        endpoint: EndpointSpec,
        authorization: str | None,
        limiter: Any = None,
        backoff: Backoff | None = None,
        timeout: float = 60.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
        follow: str = "status",
        notify: Callable[[str], None] | None = None,
        max_body: int = MAX_BODY,
        unreadable_limit: int = 3,
        reach: Reach | None = None,
        key_id: str | None = None,
        clock: RunClock = PROCESS,
    ) -> None:
        if follow not in FOLLOW_MODES:
            raise ValueError(f"follow must be one of {FOLLOW_MODES}, not {follow!r}")
        self.endpoint = endpoint
        self.key_id = key_id
        self._transport = Transport(
            session,
            base_url,
            authorization,
            limiter=limiter,
            backoff=backoff,
            timeout=timeout,
            sleep=sleep,
            max_body=max_body,
            reach=reach or Reach(notify=notify),
            clock=clock,
        )
        self._mode = _Mode(follow)
        self._notify = notify
        self._misreads = Misreads(unreadable_limit)

    def __repr__(self) -> str:
        return f"<QueueClient {self._transport.base}/{self.endpoint.id} follow={self._mode.follow}>"

    @property
    def follow(self) -> str:
        """How jobs are followed now: ``status``, ``result``, or ``auto`` (status until told)."""
        return self._mode.follow

    def sibling(self, authorization: str | None, key_id: str | None) -> QueueClient:
        """A client that sends ``authorization`` (another key, named ``key_id``) and shares
        everything else with this one: session, rate limiter, reach, follow mode."""
        other = copy.copy(self)
        other._transport = self._transport.with_auth(authorization)
        other.key_id = key_id
        return other

    def url(self, request_id: str, suffix: str = "", endpoint: str | None = None) -> str:
        """``{base}/{owner/app}/requests/{id}{suffix}``: never the envelope's URLs.
        ``endpoint`` is the job's endpoint id when it is not this client's own."""
        rid = quote(request_id, safe="")  # an id from the wire must not add path segments
        app = owner_app(endpoint) if endpoint else self.endpoint.owner_app
        return f"{self._transport.base}/{app}/requests/{rid}{suffix}"

    # -- the four calls -------------------------------------------------------------------

    async def submit(
        self,
        payload: dict[str, Any],
        *,
        before_send: Callable[[], Awaitable[None]] | None = None,
        not_sent: Callable[[], Awaitable[None]] | None = None,
        stop: Callable[[], bool] | None = None,
        endpoint: str | None = None,
    ) -> Submitted:
        """Create a job. ``before_send`` runs right before each attempt's POST leaves; once
        ``stop()`` is true a failed attempt is not tried again; ``not_sent`` runs when an
        attempt's connection failed before anything was sent.

        Raises AmbiguousSubmit when the answer was lost after the POST went out (the caller
        may send it again, flagged), and ProtocolError (error_type ``submit_uncertain``) for a
        2xx without a usable request id: a job may exist, so it must not be sent blindly again.
        """
        url = f"{self._transport.base}/{(endpoint or self.endpoint.id).strip('/')}"
        answer = await self._call(
            "POST",
            url,
            "submit",
            body=payload,
            before_send=before_send,
            not_sent=not_sent,
            stop=stop,
        )
        data = answer.object()
        request_id = request_id_of(answer)
        if request_id is None and (refused := refusal_in_success(answer.status, answer.body)):
            raise self._named(refused)  # "Insufficient balance" in a 200: no job was made
        if data is None or request_id is None:
            raise ProtocolError(
                f"submit answered {answer.status} without a request_id: {excerpt(answer.body)}",
                status=answer.status,
                error_type=SUBMIT_UNCERTAIN,
            )
        # The envelope's own status is a hint; a missing one means "queued".
        status = Status.parse(data) if isinstance(data.get("status"), str) else Status("IN_QUEUE")
        return Submitted(request_id, status)

    async def status(self, request_id: str, endpoint: str | None = None) -> Status:
        answer = await self._call(
            "GET",
            self.url(request_id, "/status", endpoint),
            "status",
            params={"logs": "0"},
            request_id=request_id,
        )
        return Status.parse(self._misreads.check(request_id, "status", answer, status=True))

    async def result(self, request_id: str, endpoint: str | None = None) -> Look:
        """A COMPLETED job's look, output set (a failed job raises its classified error). An
        unreadable answer raises RetryableError however often it comes: the job is paid for,
        so the caller keeps asking for its output rather than give it up."""
        look = await self._look_result(request_id, endpoint, pending_ok=False, patient=True)
        if look.output is None:
            raise RetryableError(f"result of {request_id} is not ready ({look.status.state})")
        return look

    async def look_result(self, request_id: str, endpoint: str | None = None) -> Look:
        """One look at the result route, however jobs are followed: the output, or a status
        saying the job is not done. For a job the provider says has ended (a cancel answered
        ``ALREADY_COMPLETED``); a failed job raises its classified error, an unreadable
        answer RetryableError (never counted towards a ProtocolError)."""
        return await self._look_result(request_id, endpoint, patient=True)

    async def look(self, request_id: str, endpoint: str | None = None) -> Look:
        """Look at a job once, the way this client follows jobs (see the module docstring).

        A job that ended in error raises its classified error when the look read the result
        route; FatalError when ``follow`` is ``status`` and the provider has no status route.
        """
        if self._mode.follow == "result":
            return await self._look_result(request_id, endpoint)
        try:
            return Look(await self.status(request_id, endpoint))
        except PermanentError as exc:
            if exc.status not in (404, 405):
                raise
            refused = exc
        # The status route does not know the job. Unknown only if the result route agrees.
        try:
            look = await self._look_result(request_id, endpoint)
        except PermanentError as exc:
            if exc.error_type != UNKNOWN_REQUEST:
                self._no_status_route(request_id, refused)
            raise
        except RetryableError as exc:
            if exc.error_type is not None:  # the job ended in error: the route knows it
                self._no_status_route(request_id, refused)
            raise
        self._no_status_route(request_id, refused)
        return look

    def _no_status_route(self, request_id: str, refused: ApiError) -> None:
        """The result route knows a job whose status route answered 404/405."""
        if self._mode.follow == "result":
            return  # another job's look found it out first
        where = (
            f"the status route of {self._transport.base} answered {refused.status} for {request_id}"
        )
        if self._mode.follow == "status":
            raise FatalError(
                f"{where}, which its result route knows: this provider has no status route; "
                "follow jobs by their result with --follow result (or auto)",
                status=refused.status,
            )
        self._mode.follow = "result"
        message = f"{where}, which its result route knows: following jobs by their result"
        log.warning(message)
        if self._notify is not None:
            self._notify(message)

    async def _look_result(
        self,
        request_id: str,
        endpoint: str | None = None,
        *,
        pending_ok: bool = True,
        patient: bool = False,
    ) -> Look:
        """Read the result route: the output, or a not-done status (``pending_ok``: at once,
        else "still in progress" is retried with backoff like any transient answer).
        ``patient``: unreadable answers are not counted towards a ProtocolError."""
        answer = await self._call(
            "GET",
            self.url(request_id, "", endpoint),
            "result",
            request_id=request_id,
            pending_ok=pending_ok,
            prune=True,
        )
        if answer.pruned:
            log.warning(
                "result of %s: %s bytes, read with %d part(s) left out (too deep or too long)",
                request_id,
                f"{answer.size:,}",
                answer.pruned,
            )
        if answer.status >= 300:  # "still in progress", let through by pending_ok
            return Look(Status(NOT_READY))
        data = self._misreads.check(request_id, "result", answer, count=not patient)
        if answer.status == 202 or is_status(data):
            return Look(pending_status(data))
        return Look(Status("COMPLETED"), data, billable_units(answer))

    async def cancel(self, request_id: str, endpoint: str | None = None) -> str:
        """Ask for a job to be cancelled; returns the provider's word for what happened, in
        fal's spelling (``batchgen.api.status.cancel_word``): ``ALREADY_COMPLETED`` for any
        answer saying the job ended.

        ``NOT_FOUND`` only when the result route does not know the job either; a job it knows
        on a provider without a cancel route (404/405) is ``NO_CANCEL_ROUTE``.
        """
        url = self.url(request_id, "/cancel", endpoint)
        answer = await self._call(
            "PUT", url, "cancel", request_id=request_id, accept=(400, 404, 405)
        )
        if answer.status in (404, 405):
            return "NO_CANCEL_ROUTE" if await self._known(request_id, endpoint) else "NOT_FOUND"
        data = answer.object()
        word = cancel_word(data.get("status") if data is not None else None, detail(answer.body))
        if answer.status == 400:
            return word or "REFUSED"
        return word or "CANCELLATION_REQUESTED"

    async def _known(self, request_id: str, endpoint: str | None) -> bool:
        """False only when the result route says it does not know the job."""
        try:
            await self._look_result(request_id, endpoint)
        except PermanentError as exc:
            return exc.error_type != UNKNOWN_REQUEST
        except RetryableError:
            return True  # no proof that it is gone: assume it is still there
        return True

    async def stream(
        self, request_id: str, *, silence: float, endpoint: str | None = None
    ) -> AsyncGenerator[Status, None]:
        """Statuses pushed by ``/status/stream`` (server-sent events) until it closes.

        A silence longer than ``silence`` seconds, or a broken connection, raises
        RetryableError: the caller falls back to polling.
        """
        url = self.url(request_id, "/status/stream", endpoint)
        timeout = aiohttp.ClientTimeout(total=None, connect=30.0, sock_read=silence)
        await self._transport.acquire()
        started = time.perf_counter()
        try:
            async with self._transport.session.get(
                url,
                params={"logs": "0"},
                headers=self._transport.auth,
                allow_redirects=False,
                timeout=timeout,
            ) as resp:
                log_request("GET", url, resp.status, request_id, started)
                body = (
                    b""
                    if resp.status < 300
                    else (await read_answer(resp, self._transport.max_body)).body
                )
                error = classify(
                    resp.status, resp.headers, body, route="stream", request_id=request_id
                )
                if error is not None:
                    raise self._named(error)
                async for payload in payloads(resp.content):
                    yield Status.parse(bounded.loads(payload))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RetryableError(f"status stream broke: {describe(exc)}") from None

    # -- plumbing -------------------------------------------------------------------------

    def _named(self, error: ApiError) -> ApiError:
        """``error``, naming this client's key when it is the key that was refused."""
        if isinstance(error, KeyRefused):
            error.key_id = self.key_id
        return error

    async def _call(self, method: str, url: str, route: str, **options: Any) -> Answer:
        """One request through the transport; a refused key is named as this client's."""
        try:
            return await self._transport.call(method, url, route, **options)
        except KeyRefused as exc:
            raise self._named(exc) from None
