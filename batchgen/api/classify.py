"""The one place where an HTTP answer (or a job's error) becomes a branch of the error tree.

``classify`` reads a status code, headers and body; ``job_failure`` reads the ``error`` and
``error_type`` of a job that ended COMPLETED with an error. See ``batchgen.api.client`` for what
each branch means to the caller. Sources: the fal queue protocol notes (error_type table).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from batchgen.api import bounded
from batchgen.api.answers import unwrapped
from batchgen.api.backoff import parse_retry_after
from batchgen.errors import (
    PROTOCOL_ERROR,
    SERVER_ERROR,
    TRANSIENT_ERROR_TYPES,
    ApiError,
    FatalError,
    KeyRefused,
    PermanentError,
    RetryableError,
)

# error_types after which submitting the same job again may well succeed.
TRANSIENT = TRANSIENT_ERROR_TYPES
CANCELLED = frozenset({"client_disconnected", "client_cancelled"})
UNKNOWN_REQUEST = "unknown_request"  # batchgen's own: a 404 for a request id we hold
# batchgen's own: a submit went out and a job may exist, but we hold no request id for it.
SUBMIT_UNCERTAIN = "submit_uncertain"
_READS_A_JOB = frozenset({"status", "stream", "result"})
# Texts that refuse the account or the key, whatever the status code that carries them (a
# proxy may say so in a 400, or even in a 200): fal's "User is locked. Reason: Exhausted
# balance", and the usual spellings of no credit, a locked account and a refused key.
_FATAL_TEXT = re.compile(
    r"exhausted[ _]balance|(insufficient|not enough|no|out of|zero)[\s_]+(account[\s_]+)?"
    r"(balance|credits?|funds)|balance is (too low|exhausted|empty)|(low|negative) balance"
    r"|user is locked|account (is )?(locked|suspended|disabled)"
    r"|(invalid|revoked|expired)\s+(api\s+)?(key|token)|(missing|wrong|no)\s+api\s+(key|token)"
    r"|unauthori[sz]ed"
    r"|not authenticated|authentication (failed|required)",
    re.IGNORECASE,
)
_IN_PROGRESS = "still in progress"
_MESSAGES = ("detail", "error", "message")  # where an answer says what went wrong
_TEXT = object()  # a body that is no JSON


def classify(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    route: str = "api",
    request_id: str | None = None,
) -> ApiError | None:
    """None for a success; otherwise the error this answer means.

    ``route`` is ``submit``, ``status``, ``stream``, ``result``, ``cancel`` or ``file``: a file
    host's 401/403 is a missing file, not a bad key. A 404 for ``request_id`` on a route that
    reads a job is a PermanentError with error_type ``unknown_request``: the provider forgot
    the job (its result expired, or it is another server), so asking again cannot help.
    """
    if 200 <= status < 300:
        return None
    header = {k.lower(): v for k, v in headers.items()}
    detail, error_type = _detail(body)
    error_type = header.get("x-fal-error-type") or error_type
    where = f"{route} answered {status}"
    message = f"{where}: {detail}" if detail else where
    if route == "file":
        if status in (408, 425, 429) or status >= 500:
            return RetryableError(message, status=status, retry_after=_retry_after(header))
        return PermanentError(f"video file not available ({message})", status=status)
    if status in (401, 402, 403) or refuses_the_key(detail):
        return KeyRefused(_fatal_message(status, detail), status=status)
    if 300 <= status < 400:
        target = header.get("location", "?")
        return FatalError(
            f"{where} redirecting to {target}: batchgen does not follow API "
            "redirects with credentials; check --base-url",
            status=status,
        )
    if status == 429:
        return RetryableError(message, status=status, retry_after=_retry_after(header))
    if error_type:
        return job_failure(detail or error_type, error_type, status=status)
    if still_in_progress(status, body):
        return RetryableError(message, status=status)
    if status in (408, 409, 425) or status >= 500:
        return RetryableError(message, status=status, retry_after=_retry_after(header))
    if status == 404 and route in _READS_A_JOB:
        rid = request_id or "?"
        return PermanentError(
            f"request {rid} is unknown to the provider (expired?)",
            status=status,
            error_type=UNKNOWN_REQUEST,
        )
    if route == "submit" and status in (404, 405):
        return FatalError(f"{message} (is the endpoint id right for this provider?)", status=status)
    return PermanentError(message, status=status)


def refuses_the_key(text: str) -> bool:
    """True when a provider's message says the key or its account cannot run jobs (no
    balance, locked, a bad key), in whatever answer it comes."""
    return _FATAL_TEXT.search(text) is not None


def refusal_in_success(status: int, body: bytes, route: str = "submit") -> ApiError | None:
    """The error a 2xx answer without a request id carries in its body (``detail``,
    ``error``, ``message``), classified like the same text in a 4xx: a key or balance
    refusal stops the run; anything else is a protocol error for that job. None when the
    body says nothing of an error (a job may have been made: see ``SUBMIT_UNCERTAIN``)."""
    data = _parsed(body)
    said, _ = _detail_of(data, body)
    if said and refuses_the_key(said):  # in an error object, a JSON string or plain text
        return KeyRefused(_fatal_message(status, said), status=status)
    says_error = isinstance(data, dict) and any(data.get(k) for k in _MESSAGES)
    if not said or not says_error:
        return None
    return PermanentError(
        f"{route} answered {status} with an error and no request id: {said}",
        status=status,
        error_type=PROTOCOL_ERROR,
    )


def job_failure(
    error: str | None, error_type: str | None, *, status: int | None = None
) -> ApiError:
    """The error of a job that ended with ``error``/``error_type``: Retryable (with its
    error_type: submit the job again) when transient, else Permanent."""
    message = error or error_type or "the job failed without a message"
    if error_type and error_type in TRANSIENT:
        return RetryableError(message, status=status, error_type=error_type)
    if error_type is None and status is not None and status >= 500:
        return RetryableError(message, status=status, error_type=SERVER_ERROR)
    return PermanentError(message, status=status, error_type=error_type)


def still_in_progress(status: int, body: bytes) -> bool:
    """True for the result route's "not done yet": 400 (500 in one source) saying so."""
    return status in (400, 500) and _IN_PROGRESS in _detail(body)[0].lower()


def no_such_app(exc: Exception) -> bool:
    """A submit answered 404/405: the provider serves no such app (nothing was created); in a
    run over several endpoints, that endpoint's jobs alone fail."""
    return (
        isinstance(exc, FatalError) and not isinstance(exc, KeyRefused) and exc.status in (404, 405)
    )


def surely_not_created(status: int, headers: Mapping[str, str]) -> bool:
    """True when a failed submit answer proves no job was created: safe to send again."""
    if status == 429:
        return True
    has_id = any(k.lower() == "x-fal-request-id" for k in headers)
    return status == 503 and not has_id


def _retry_after(header: Mapping[str, str]) -> float | None:
    return parse_retry_after(header.get("retry-after"))


def _fatal_message(status: int, detail: str) -> str:
    reason = {401: "the API key was refused", 402: "payment required", 403: "access denied"}.get(
        status, "the account cannot run jobs"
    )
    return f"{reason} ({status}{': ' + detail if detail else ''})"


def detail(body: bytes) -> str:
    """The provider's own message in an answer's body, on one line ("" without one)."""
    return _detail(body)[0]


def _detail(body: bytes) -> tuple[str, str | None]:
    """The provider's own message and error_type from a JSON body (in a proxy's ``data``
    envelope or not), or the start of a text."""
    return _detail_of(_parsed(body), body)


def _parsed(body: bytes) -> Any:
    """``body`` as JSON (inside a ``data`` envelope), or ``_TEXT`` when it is none."""
    try:
        return unwrapped(bounded.loads(body))
    except ValueError:
        return _TEXT


def _detail_of(data: Any, body: bytes) -> tuple[str, str | None]:
    """``_detail`` of a body already parsed (``_parsed``)."""
    if data is _TEXT:
        text = body[:300].decode("utf-8", "replace").strip()
        return (" ".join(text.split()) if text else ""), None
    if not isinstance(data, dict):
        return str(data)[:300], None
    error_type = data.get("error_type")
    detail = data.get("detail", data.get("error", data.get("message", "")))
    return _text(detail), str(error_type) if error_type else None


def _text(detail: Any) -> str:
    """A ``detail`` (string, list of validation items, or anything) as one line."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                msg = str(item.get("msg", item))
                parts.append(f"{loc}: {msg}" if loc else msg)
            else:
                parts.append(str(item))
        return "; ".join(parts)
    if detail is None:
        return ""
    return detail if isinstance(detail, str) else json.dumps(detail)
