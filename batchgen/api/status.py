"""What a job's state at the provider is: a status answer, a look, a submit's answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchgen.errors import RetryableError

# The state of a job the result route says is not done, without saying queued or running.
NOT_READY = "NOT_READY"
_PENDING_STATES = frozenset({"IN_QUEUE", "IN_PROGRESS"})


@dataclass(frozen=True, slots=True)
class Status:
    """A job's state at the provider. ``state`` may be a string batchgen does not know."""

    state: str
    queue_position: int | None = None
    error: str | None = None
    error_type: str | None = None
    # Seconds the job ran, when the provider says (``metrics.inference_time`` of a COMPLETED).
    inference_time: float | None = None

    @property
    def done(self) -> bool:
        return self.state == "COMPLETED"

    @classmethod
    def parse(cls, data: Any) -> Status:
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise RetryableError(f"unreadable status answer: {str(data)[:200]}")
        position = data.get("queue_position")
        error, error_type = data.get("error"), data.get("error_type")
        metrics = data.get("metrics")
        ran = metrics.get("inference_time") if isinstance(metrics, dict) else None
        return cls(
            state=data["status"],
            queue_position=position if isinstance(position, int) else None,
            error=str(error) if error is not None else None,
            error_type=str(error_type) if error_type is not None else None,
            inference_time=(
                float(ran)
                if isinstance(ran, int | float) and not isinstance(ran, bool) and ran >= 0
                else None
            ),
        )


@dataclass(frozen=True, slots=True)
class Look:
    """One look at a job: its status, and its output when the look read the result route."""

    status: Status
    output: dict[str, Any] | None = None
    units: float | None = None  # the result answer's x-fal-billable-units, if it said


@dataclass(frozen=True, slots=True)
class Submitted:
    """The answer to a submit: the request id and the state the job starts in."""

    request_id: str
    status: Status


def is_status(data: Any) -> bool:
    """A status body where an output was expected (a proxy's result route, not done yet)."""
    return isinstance(data, dict) and data.get("status") in _PENDING_STATES


def pending_status(data: Any) -> Status:
    return Status.parse(data) if is_status(data) else Status(NOT_READY)
