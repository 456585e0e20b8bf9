"""Where a job is: the status enum, its allowed transitions, and one job as the ledger holds it.

``TRANSITIONS`` is the only place the moves are written; every ledger backend refuses the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    """Where a job is. Remote states mirror the queue; the rest are batchgen's own."""

    PENDING = "pending"  # planned, not submitted (or to be submitted again)
    SUBMITTING = "submitting"  # its POST may be in flight: never blindly resubmit
    SUBMIT_UNCERTAIN = "submit_uncertain"  # the POST went out and its answer was lost
    QUEUED = "queued"  # request_id known, IN_QUEUE at the provider
    RUNNING = "running"  # IN_PROGRESS at the provider
    COMPLETED = "completed"  # COMPLETED at the provider, result not read yet
    DOWNLOADING = "downloading"  # video URL known, file not yet verified on disk
    CANCELLING = "cancelling"  # cancel sent, answer pending
    DONE = "done"  # verified video on disk
    FAILED = "failed"  # ended with an error (see ``error``)
    CANCELLED = "cancelled"  # cancelled at the provider or by the user

    @property
    def final(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)

    @property
    def remote(self) -> bool:
        """True when the provider holds a job for it that may still run (poll, don't submit)."""
        return self in (
            JobStatus.QUEUED,
            JobStatus.RUNNING,
            JobStatus.COMPLETED,
            JobStatus.CANCELLING,
        )


S = JobStatus
# Submitted (or maybe submitted) and not yet at an end: the provider may hold a job for it.
IN_FLIGHT = frozenset(
    {
        S.SUBMITTING,
        S.SUBMIT_UNCERTAIN,
        S.QUEUED,
        S.RUNNING,
        S.COMPLETED,
        S.DOWNLOADING,
        S.CANCELLING,
    }
)
# The only allowed moves. PENDING again means "submit anew" (transient failure, retry-failed).
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.PENDING: frozenset({S.SUBMITTING, S.FAILED, S.CANCELLED}),
    S.SUBMITTING: frozenset(
        {S.QUEUED, S.RUNNING, S.COMPLETED, S.PENDING, S.SUBMIT_UNCERTAIN, S.FAILED}
    ),
    # QUEUED: the provider's request log shows the job its lost submit made (adopted).
    S.SUBMIT_UNCERTAIN: frozenset({S.SUBMITTING, S.QUEUED, S.FAILED, S.CANCELLED}),
    S.QUEUED: frozenset({S.RUNNING, S.COMPLETED, S.PENDING, S.FAILED, S.CANCELLING, S.CANCELLED}),
    S.RUNNING: frozenset({S.COMPLETED, S.PENDING, S.FAILED, S.CANCELLING, S.CANCELLED}),
    # CANCELLED: the result says client_cancelled (a cancel that landed as the job ended).
    S.COMPLETED: frozenset({S.DOWNLOADING, S.PENDING, S.FAILED, S.CANCELLED}),
    S.DOWNLOADING: frozenset({S.DONE, S.FAILED}),
    S.CANCELLING: frozenset({S.CANCELLED, S.COMPLETED, S.FAILED, S.PENDING}),
    S.DONE: frozenset({S.DOWNLOADING}),  # only when its file is found missing or damaged
    # Reopened by run --retry-failed: DOWNLOADING when the video is paid for and only saving
    # it failed (disk full...), PENDING otherwise.
    S.FAILED: frozenset({S.PENDING, S.DOWNLOADING}),
    S.CANCELLED: frozenset({S.PENDING}),
}

FIELDS = (
    "request_id",
    "attempts",
    "possibly_duplicate",
    "queue_position",
    "video_url",
    "video_path",
    "bytes",
    "sha256",
    "cost_usd",
    "error",
    "error_type",
    "submitted_at",
    "started_at",
    "completed_at",
    "origin",
    "key_id",
    "retry_from",
    "sent",
    "video_dir",
    "billed_usd",
)


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job as the ledger holds it. Times are Unix seconds."""

    key: str
    position: int
    row: int
    line: int | None
    repeat: int
    endpoint: str
    payload: dict[str, Any]
    extra: dict[str, Any]
    filename: str
    status: JobStatus
    request_id: str | None
    attempts: int
    possibly_duplicate: bool
    queue_position: int | None
    video_url: str | None
    video_path: str | None
    bytes: int | None
    sha256: str | None
    cost_usd: float | None
    error: str | None
    error_type: str | None
    submitted_at: float | None
    started_at: float | None
    completed_at: float | None
    origin: str | None  # the API base URL its request ids belong to
    key_id: str | None  # which key submitted it: variable name and fingerprint, never the key
    retry_from: int  # ``attempts`` when --retry-failed last reopened it: its budget starts there
    updated_at: float
    in_input: bool
    # Local input files: parameter -> {path, sha256, size, mime}, as the input named them last.
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What the last submit sent for each file parameter: the uploaded URL, or a data: URI
    # described as ``data:<mime>;base64 (N bytes)`` (never the URI itself).
    sent: dict[str, str] = field(default_factory=dict)
    # The folder ``video_path`` is relative to, as ``host:/absolute/path``, when the ledger is
    # shared by workers that each download into their own folder; None: the ledger's folder.
    video_dir: str | None = None
    # What the provider billed: the result's billable units x the endpoint's unit price; None
    # when the result did not say (never 0 for unknown). ``cost_usd`` is the estimate.
    billed_usd: float | None = None
