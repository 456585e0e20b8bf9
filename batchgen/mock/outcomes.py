"""How a job ends when it does not produce its output, and what the result route then says.

Two families, as on fal: the model refuses the input (422 with a ``detail`` list, while the
status looks like a plain COMPLETED), or the infrastructure fails (status COMPLETED with
``error`` and ``error_type``; the result answers ``{"detail", "error_type"}`` with the code of
the table in the protocol doc and an ``X-Fal-Error-Type`` header).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# error_type -> (HTTP status of the result, message). From the protocol doc's table.
ERROR_TYPES: dict[str, tuple[int, str]] = {
    "request_timeout": (504, "Request timed out"),
    "startup_timeout": (504, "Runner startup timed out"),
    "runner_scheduling_failure": (503, "Runner scheduling failure"),
    "runner_connection_timeout": (503, "Runner connection timed out"),
    "runner_disconnected": (503, "Runner disconnected"),
    "runner_connection_refused": (503, "Runner connection refused"),
    "runner_connection_error": (503, "Runner connection error"),
    "runner_incomplete_response": (502, "Runner sent an incomplete response"),
    "runner_server_error": (500, "Runner server error"),
    "internal_error": (500, "Internal error"),
    "client_disconnected": (499, "Client disconnected"),
    "client_cancelled": (499, "Request cancelled by the client"),
    "bad_request": (400, "Bad request"),
}

POLICY_MESSAGE = (
    "The content could not be processed because it contained material flagged by a content checker."
)


@dataclass(frozen=True, slots=True)
class Failure:
    """A job's unsuccessful ending.

    ``error``/``error_type`` go into the COMPLETED status (``None`` for input refusals, which
    fal reports only at result); ``http_status`` and ``detail`` make the result answer.
    """

    http_status: int
    detail: Any
    error: str | None = None
    error_type: str | None = None
    timeout_type: str | None = None
    retryable: bool | None = None

    def result_body(self) -> dict[str, Any]:
        if self.error_type is None:
            return {"detail": self.detail}
        return {"detail": self.detail, "error_type": self.error_type}

    def result_headers(self) -> dict[str, str]:
        headers = {}
        if self.error_type is not None:
            headers["X-Fal-Error-Type"] = self.error_type
        if self.timeout_type is not None:
            headers["X-Fal-Request-Timeout-Type"] = self.timeout_type
        if self.retryable is not None:
            headers["X-Fal-Retryable"] = "true" if self.retryable else "false"
        return headers


def infrastructure(error_type: str, *, timeout_type: str | None = None) -> Failure:
    """A failure of fal's side, with the status code the protocol doc gives ``error_type``."""
    status, message = ERROR_TYPES[error_type]
    return Failure(
        http_status=status,
        detail=message,
        error=message,
        error_type=error_type,
        timeout_type=timeout_type,
    )


def validation(
    problems: list[tuple[str, str]], files: list[tuple[str, str, str]] | None = None
) -> Failure:
    """The 422 of input that fails the endpoint spec, or whose files (``(field, message,
    type)``) the model could not fetch, in FastAPI's ``detail`` list shape."""
    detail = [
        {
            "loc": _loc(name),
            "msg": "Field required" if "required" in message else message,
            "type": "missing" if "required" in message else "value_error",
        }
        for name, message in problems
    ]
    detail += [{"loc": _loc(name), "msg": msg, "type": kind} for name, msg, kind in files or []]
    return Failure(http_status=422, detail=detail, retryable=False)


def _loc(name: str) -> list[str | int]:
    """FastAPI's ``loc`` of a field: ``image_urls.2`` is ``["body", "image_urls", 1]`` (a
    list's index counts from 0 there)."""
    return ["body", *(int(p) - 1 if p.isdigit() else p for p in name.split("."))]


def content_policy() -> Failure:
    """The 422 of a prompt the content checker refuses."""
    detail = [
        {
            "loc": ["body", "prompt"],
            "msg": POLICY_MESSAGE,
            "type": "content_policy_violation",
        }
    ]
    return Failure(http_status=422, detail=detail, retryable=False)


CLIENT_CANCELLED = infrastructure("client_cancelled")
USER_TIMEOUT = infrastructure("request_timeout", timeout_type="user")
