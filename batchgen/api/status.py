"""What a job's state at the provider is: a status answer, a look, a submit's answer.

Status words are read as proxies spell them: ``state_word`` takes any case, spaces or hyphens
for underscores, and the variants other queues use (``queued``, ``running``, ``succeeded``,
``canceled``), and gives fal's word; a word it does not know is kept as it came (tolerated,
like ``CANCELLATION_REQUESTED``). ``cancel_word`` does the same for a cancel's answer, where
anything saying the job already ended is ``ALREADY_COMPLETED``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from batchgen.api.answers import unwrapped
from batchgen.errors import RetryableError

# The state of a job the result route says is not done, without saying queued or running.
NOT_READY = "NOT_READY"
ALREADY_COMPLETED = "ALREADY_COMPLETED"
_PENDING_STATES = frozenset({"IN_QUEUE", "IN_PROGRESS"})
# fal's words, by every spelling seen from proxies and other queues (after ``_key``). fal has
# no FAILED: a job that failed is COMPLETED with an ``error``, and its result says how.
_WORDS = {
    **dict.fromkeys(("IN_QUEUE", "INQUEUE", "QUEUED", "PENDING"), "IN_QUEUE"),
    **dict.fromkeys(("IN_PROGRESS", "INPROGRESS", "RUNNING", "PROCESSING"), "IN_PROGRESS"),
    **dict.fromkeys(
        ("COMPLETED", "COMPLETE", "SUCCEEDED", "SUCCESS", "DONE", "FINISHED", "FAILED", "ERROR"),
        "COMPLETED",
    ),
    **dict.fromkeys(("CANCELLED", "CANCELED"), "CANCELLED"),
    **dict.fromkeys(
        ("CANCELLATION_REQUESTED", "CANCELATION_REQUESTED", "CANCELLING", "CANCELING"),
        "CANCELLATION_REQUESTED",
    ),
    **dict.fromkeys(("ALREADY_COMPLETED", "ALREADY_COMPLETE", "ALREADY_DONE"), ALREADY_COMPLETED),
}
_ENDED = re.compile(r"already (completed?|finished|done|ended)|has (completed|finished|ended)")


def _key(word: str) -> str:
    return re.sub(r"[\s\-]+", "_", word.strip()).upper()


def state_word(word: str) -> str:
    """fal's word for a status ``word`` however a proxy spells it; an unknown one as it is."""
    return _WORDS.get(_key(word), word)


def cancel_word(word: Any, detail: str = "") -> str | None:
    """fal's word for a cancel's answer: its ``status`` word (``ALREADY_COMPLETED`` for any
    that says the job ended), else ``ALREADY_COMPLETED`` when its ``detail`` says so; None
    when it says neither."""
    if isinstance(word, str) and word.strip():
        said = state_word(word)
        return ALREADY_COMPLETED if said == "COMPLETED" else said
    return ALREADY_COMPLETED if _ENDED.search(detail.lower()) else None


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
        """A status object (in a ``data`` envelope or not), its word read as fal's."""
        data = unwrapped(data)
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise RetryableError(f"unreadable status answer: {str(data)[:200]}")
        position = data.get("queue_position")
        error, error_type = data.get("error"), data.get("error_type")
        metrics = data.get("metrics")
        ran = metrics.get("inference_time") if isinstance(metrics, dict) else None
        return cls(
            state=state_word(data["status"]),
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
    word = data.get("status") if isinstance(data, dict) else None
    return isinstance(word, str) and state_word(word) in _PENDING_STATES


def pending_status(data: Any) -> Status:
    return Status.parse(data) if is_status(data) else Status(NOT_READY)
