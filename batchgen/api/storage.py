"""fal storage: a local file made into a URL a model can fetch, as fal's own clients do it.

The protocol (``shared/fal-queue-protocol.md``, "Uploading local files"):

- **token**: ``POST {storage}/storage/auth/token?storage_type=fal-cdn-v3`` with ``Authorization:
  Key <key>`` and ``{}`` answers ``{token, token_type, base_url, expires_at}``; it is kept
  until shortly before ``expires_at`` and shared by every upload meanwhile.
- **simple** (up to ``MULTIPART_THRESHOLD``): ``POST {base_url}/files/upload``, the raw bytes
  streamed from disk, ``Authorization: <token_type> <token>``, ``Content-Type``,
  ``X-Fal-File-Name``; answers ``{access_url}``.
- **multipart** (above it): ``POST {base_url}/files/upload/multipart`` answers ``{access_url,
  uploadId}``; ``PUT {access_url}/multipart/{uploadId}/{n}`` sends each ``PART_SIZE`` part
  (``PART_CONCURRENCY`` at once, each streamed from disk), keeping its ``ETag``; ``POST
  {access_url}/multipart/{uploadId}/complete`` with ``{"parts": [{"partNumber", "etag"}]}``.

Where secrets go: the key only to the storage host (the token call); the token only to the
origin of the ``base_url`` its answer named (a multipart ``access_url`` elsewhere is refused).
Redirects are never followed, and the request log holds paths only: neither is ever written.

Every call is retried like the queue client's: 408, 409, 429 (``Retry-After`` honoured), 5xx
and transport errors, with backoff. A 401/403 (or 404) on the token call is a FatalError: the
key may not use this storage, and no upload of the run would succeed; a storage never reached
for ``Reach.give_up_after`` seconds is Unreachable (a wrong ``--storage-base-url``). A 401/403
on an upload gets one fresh token. A file that reads short while it is sent fails at once.

Reading the storage's answers is ``storage_answers``' job; ``datauri`` is the way for a
provider without storage.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from batchgen.api import network
from batchgen.api.answers import MAX_BODY, Answer, describe, excerpt, log_request, read_answer
from batchgen.api.backoff import Backoff
from batchgen.api.classify import classify
from batchgen.api.datauri import DATA_URI_MAX_BYTES, MIB
from batchgen.api.reach import Reach
from batchgen.api.storage_answers import (
    STORAGE_TYPE,
    StorageToken,
    origin,
    parse_token,
    url_in,
)
from batchgen.errors import (
    ApiError,
    FatalError,
    PermanentError,
    ProtocolError,
    RetryableError,
    Unreachable,
)

MULTIPART_THRESHOLD = 100 * MIB
PART_SIZE = 10 * MIB
PART_CONCURRENCY = 4
# A token is renewed this long before it expires (or half its life, if that is shorter).
TOKEN_MARGIN = 60.0
# An upload may take the request timeout plus its bytes at this rate (a slow uplink).
MIN_UPLOAD_RATE = 100_000
_CHUNK = 256 * 1024


class _FileBody:
    """``length`` bytes of ``path`` from ``offset``, read from disk as they are sent."""

    __slots__ = ("length", "offset", "path", "problem")

    def __init__(self, path: Path, offset: int, length: int) -> None:
        self.path, self.offset, self.length = path, offset, length
        self.problem: str | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            left = self.length
            while left > 0:
                chunk = await asyncio.to_thread(handle.read, min(_CHUNK, left))
                if not chunk:
                    self.problem = f"{self.path} is shorter than when it was planned"
                    raise OSError(self.problem)
                left -= len(chunk)
                yield chunk


class StorageClient:
    """Uploads files to one fal storage with one key (see the module docstring)."""

    __slots__ = (
        "_backoff",
        "_base",
        "_key",
        "_lock",
        "_max_body",
        "_part_concurrency",
        "_part_size",
        "_reach",
        "_session",
        "_sleep",
        "_threshold",
        "_timeout",
        "_token",
        "_valid_until",
        "clock",
        "stopped",
    )

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
        part_size: int = PART_SIZE,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_concurrency: int = PART_CONCURRENCY,
        max_body: int = MAX_BODY,
        reach: Reach | None = None,
    ) -> None:
        self._session = session
        self._reach = reach or Reach()
        self._base = base_url.rstrip("/")
        self._key = api_key
        self._backoff = backoff or Backoff()
        self._sleep, self._timeout, self.clock = sleep, timeout, clock
        self._part_size, self._threshold = part_size, multipart_threshold
        self._part_concurrency, self._max_body = part_concurrency, max_body
        self._token: StorageToken | None = None
        self._valid_until = 0.0
        self._lock = asyncio.Lock()
        self.stopped = False  # set on a drain (Ctrl-C): a failed call is not tried again

    def __repr__(self) -> str:
        return f"<StorageClient {self._base}{' stopped' if self.stopped else ''}>"

    async def token(self) -> StorageToken:
        """The current token, asked for anew when the kept one is about to expire."""
        async with self._lock:
            if self._token is None or self.clock() >= self._valid_until:
                asked = self.clock()
                answer = await self._send(
                    "POST",
                    f"{self._base}/storage/auth/token?storage_type={STORAGE_TYPE}",
                    "token",
                    json={},
                )
                self._token = parse_token(answer, asked)
                life = self._token.expires_at - asked
                self._valid_until = self._token.expires_at - min(TOKEN_MARGIN, life / 2)
            return self._token

    async def upload(self, path: str | Path, *, size: int, mime: str) -> str:
        """Upload ``size`` bytes of ``path``; the URL the storage serves them at."""
        path = Path(path)
        name = "".join(c if " " <= c <= "~" else "_" for c in path.name) or "upload.bin"
        headers = {"Content-Type": mime, "X-Fal-File-Name": name}
        token = await self.token()
        if size > self._threshold:
            return await self._multipart(path, size, headers, token)
        answer = await self._send(
            "POST",
            f"{token.base_url}/files/upload",
            "upload",
            headers=headers,
            body=_FileBody(path, 0, size),
        )
        return url_in(answer, "access_url")

    async def _multipart(
        self, path: Path, size: int, headers: dict[str, str], token: StorageToken
    ) -> str:
        url = f"{token.base_url}/files/upload/multipart"
        answer = await self._send("POST", url, "multipart", headers=headers)
        access_url = url_in(answer, "access_url")
        data = answer.object() or {}
        upload_id = data.get("uploadId")
        if not isinstance(upload_id, str) or not upload_id:
            raise ProtocolError(f"multipart answer without an uploadId: {excerpt(answer.body)}")
        base = f"{access_url}/multipart/{quote(upload_id, safe='')}"
        etags: dict[int, str] = {}
        slots = asyncio.Semaphore(self._part_concurrency)

        async def put(number: int) -> None:
            offset = (number - 1) * self._part_size
            body = _FileBody(path, offset, min(self._part_size, size - offset))
            part_headers = {"Content-Type": headers["Content-Type"], "Accept-Encoding": "identity"}
            async with slots:
                sent = await self._send(
                    "PUT", f"{base}/{number}", "part", headers=part_headers, body=body
                )
            etag = sent.headers.get("ETag")
            if not etag:
                raise ProtocolError(f"part {number} answered {sent.status} without an ETag")
            etags[number] = etag

        try:
            async with asyncio.TaskGroup() as group:
                for number in range(1, math.ceil(size / self._part_size) + 1):
                    group.create_task(put(number))
        except BaseExceptionGroup as errors:
            raise _worst(errors) from None
        parts = [{"partNumber": n, "etag": etags[n]} for n in sorted(etags)]
        await self._send("POST", f"{base}/complete", "complete", json={"parts": parts})
        return access_url

    async def _send(
        self,
        method: str,
        url: str,
        route: str,
        *,
        headers: dict[str, str] | None = None,
        json: Any = None,
        body: _FileBody | None = None,
    ) -> Answer:
        """One storage call, retried (see the module docstring); ``route`` ``token`` sends
        the key, any other the token."""
        retry = 0
        renewed = False
        length = 0 if body is None else body.length
        timeout = aiohttp.ClientTimeout(
            total=self._timeout + length / MIN_UPLOAD_RATE, connect=min(self._timeout, 30.0)
        )
        while True:
            send = dict(headers or {})
            if route == "token":
                send["Authorization"] = f"Key {self._key}"
            else:
                send["Authorization"] = self._token_for(url).authorization
            if body is not None:
                send["Content-Length"] = str(body.length)
            started = time.perf_counter()
            error: ApiError | None
            try:
                async with self._session.request(
                    method,
                    url,
                    headers=send,
                    json=json,
                    data=None if body is None else body.chunks(),
                    allow_redirects=False,
                    timeout=timeout,
                ) as resp:
                    answer = await read_answer(resp, self._max_body)
            except network.NOT_SENT as exc:
                log_request(method, url, "not-connected", None, started)
                if not network.local(exc):  # too many open files says nothing of the host
                    self._never_reached(url, describe(exc), network.lasting(exc))
                error = RetryableError(f"storage {route}: cannot connect: {describe(exc)}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                log_request(method, url, "lost", None, started)
                if body is not None and body.problem is not None:
                    raise PermanentError(body.problem) from None
                error = RetryableError(f"storage {route}: {describe(exc)}")
            else:
                self._reach.answer()
                log_request(method, url, answer.status, None, started)
                if answer.status in (401, 403) and route != "token" and not renewed:
                    renewed = True  # the token may have expired early: one fresh one
                    self._valid_until = 0.0
                    await self.token()
                    continue
                error = self._error(answer, route)
                if error is None:
                    return answer
            if not isinstance(error, RetryableError) or self.stopped:
                raise error
            retry += 1
            if retry >= self._backoff.attempts:
                raise error
            left = self._reach.time_left()  # never past the moment to give up
            delay = self._backoff.delay(retry, error.retry_after)
            await self._sleep(delay if left is None else min(delay, left))
            if self.stopped:  # stopped while waiting: send nothing more
                raise error

    def _never_reached(self, url: str, reason: str, lasting: bool) -> None:
        """Unreachable when the storage has never answered for too long (or at once, for a
        ``lasting`` failure)."""
        try:
            self._reach.cannot_connect(origin(url), reason, lasting=lasting)
        except Unreachable:
            where = f"{origin(url)}{self._reach.route(origin(url))}"
            if lasting:
                raise Unreachable(
                    f"cannot reach the storage at {where}: {reason}; nothing was uploaded"
                ) from None
            proxied = "the proxy (or NO_PROXY), " if " through " in where else ""
            raise Unreachable(
                f"cannot reach the storage at {where}: {reason} (no answer for "
                f"{self._reach.give_up_after:g} s); nothing was uploaded. Check {proxied}"
                "--storage-base-url and the network (or --upload data), then run again"
            ) from None

    def _token_for(self, url: str) -> StorageToken:
        """The token, for a URL on its ``base_url``'s origin only."""
        token = self._token
        assert token is not None, "token() comes first"
        if origin(url) != origin(token.base_url):
            raise ProtocolError(
                f"the storage named {origin(url)} for an upload, not the host of its token "
                f"({origin(token.base_url)}): batchgen sends the token nowhere else"
            )
        return token

    def _error(self, answer: Answer, route: str) -> ApiError | None:
        status = answer.status
        if status < 300:
            if not answer.complete:
                return ProtocolError(f"storage {route} answered more than batchgen reads")
            return None
        where = f"the storage at {origin(self._base)}"
        detail = excerpt(answer.body, 120) if answer.body else ""
        if route == "token" and status in (401, 403, 404, 405):
            what = "has no storage route" if status in (404, 405) else "refused the key for storage"
            return FatalError(
                f"{where} {what} ({status}: {detail}): this key may not use fal storage; "
                "set FAL_KEY to a key that may and pass --upload fal, or --upload data to "
                f"send files of up to {DATA_URI_MAX_BYTES // MIB} MiB inline "
                "(--storage-base-url names another storage host)",
                status=status,
            )
        if status in (401, 403):
            return FatalError(f"{where} refused its own token ({status}: {detail})", status=status)
        if 300 <= status < 400:
            return FatalError(
                f"{where} answered {status} redirecting to {answer.headers.get('Location')}: "
                "batchgen does not follow storage redirects with credentials; check "
                "--storage-base-url",
                status=status,
            )
        return classify(status, answer.headers, answer.body, route=f"storage {route}")


def _worst(errors: BaseExceptionGroup[Any]) -> BaseException:
    """The error a failed multipart upload reports: a fatal one first."""
    flat: list[BaseException] = []
    pending: list[BaseException] = [errors]
    while pending:
        error = pending.pop()
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        else:
            flat.append(error)
    return next((e for e in flat if isinstance(e, FatalError)), flat[0])
