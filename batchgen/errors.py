"""The one error tree of batchgen.

Every exception here is meant to be displayed to the user as it is: its ``str()`` is the
message. The CLI maps the branches to exit codes; the library never prints.

    BatchgenError
    ├── InputError              bad input files, rows or settings (exit 2); holds Problems
    ├── UsageError              contradictory or missing options (exit 2)
    ├── LedgerError             the output folder's state refuses an operation
    │   ├── JobChanged          another process moved the job since it was read
    │   └── OverCost            a submit would take the committed spend above --max-cost
    ├── DiskError               a file of the output folder cannot be written (or opened:
    │                           too many open files, ``open_files``)
    └── ApiError                an answer from the queue API, classified once (see client)
        ├── RetryableError      429, 5xx, timeouts, connection errors: try again later
        ├── PermanentError      422, content policy, bad_request: this job failed
        │   └── ProtocolError   an answer that breaks the protocol (unreadable, too large,
        │                       a 2xx submit without a request id): this job failed
        ├── FatalError          no request will succeed: stop the whole run (exit 3)
        │   └── KeyRefused      401/403/402, exhausted balance: this key is refused (a pool
        │                       retires it and goes on with its other keys)
        ├── Unreachable         the API never answered (refused, no host, TLS): stop (exit 1)
        └── AmbiguousSubmit     the submit POST went out and the answer was lost
"""

from __future__ import annotations

import errno as errnos
import os
import sys
from dataclasses import dataclass
from typing import Any

if sys.platform != "win32":  # imported now: out of descriptors, an import opens no file
    import resource

# The error_types of a job failure (fal's ``error_type``) that are transient: submitting the job
# again may well succeed, and fal bills none of them (its 5xx family). batchgen.api.classify
# retries them; batchgen.ledger.money counts them unbilled.
TRANSIENT_ERROR_TYPES = frozenset(
    {
        "request_timeout",
        "startup_timeout",
        "runner_scheduling_failure",
        "runner_connection_timeout",
        "runner_disconnected",
        "runner_connection_refused",
        "runner_connection_error",
        "runner_incomplete_response",
        "runner_server_error",
        "internal_error",
    }
)
# batchgen's own error_type for a job that failed with a 5xx and no error_type of its own.
SERVER_ERROR = "server_error"
# batchgen's own error_type for a job failed on answers that break the protocol (its
# ``ProtocolError``): not the provider's refusal, and the provider may have run the job.
PROTOCOL_ERROR = "protocol"
# batchgen's own error_type for a job whose result answer was too large to read even pruned
# (``batchgen.api.bounded``): the provider made its output, so it is paid; a new try pays again.
RESULT_TOO_LARGE = "result_too_large"
# batchgen's own error_type for a job whose local input file could not be made a URL (the
# upload failed, the file went missing or changed): that attempt was never submitted.
UPLOAD_ERROR = "upload"


class BatchgenError(Exception):
    """Base of every error batchgen raises on purpose; ``str()`` is the user-facing message."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where it is (file, line, column) and what is wrong."""

    path: str
    line: int | None
    column: str | None
    message: str
    label: str = "column"  # what ``column`` names: a column of rows, or a field of a spec

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        if self.column is not None:
            return f"{where}: {self.label} '{self.column}': {self.message}"
        return f"{where}: {self.message}"


class InputError(BatchgenError):
    """One or more problems with input files or rows; all of them, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def one(
        cls,
        path: str,
        message: str,
        line: int | None = None,
        column: str | None = None,
        label: str = "column",
    ) -> InputError:
        return cls([Problem(path, line, column, message, label)])


class UsageError(BatchgenError):
    """Options that contradict each other or are missing."""


class LedgerError(BatchgenError):
    """The ledger of an output folder refused an operation (bad transition, unknown key...)."""


class JobChanged(LedgerError):
    """A transition expected the job in one state and found it in another: another process
    (``batchgen cancel``, a second run) changed it since it was read."""


class RequestIdTaken(LedgerError):
    """A move would give a job a request id that another job of the ledger holds (or held):
    the provider (or a proxy) answered two submits with one id. Nothing of the move is
    written; ``owner`` is the key of the job that holds it."""

    def __init__(self, request_id: str, owner: str) -> None:
        super().__init__(f"request id {request_id} belongs to job {owner} already")
        self.request_id, self.owner = request_id, owner


class OverCost(LedgerError):
    """A job held back by ``--max-cost``: submitting it would take the committed spend to
    ``total`` USD, above ``limit``. Raised by a shared ledger for a move to ``submitting``
    (the batch's spend is summed in that move's transaction), nothing of the move written."""

    def __init__(self, total: float, limit: float) -> None:
        super().__init__(
            f"not submitted: it would take the committed spend to ${total:,.2f}, "
            f"above --max-cost ${limit:,.2f}"
        )
        self.total, self.limit = total, limit


class DiskError(BatchgenError):
    """A file cannot be written (disk full, permission denied, name too long...).

    ``path`` is the file meant, ``reason`` the system's words (``No space left on device``)
    and ``errno`` its number, so a caller can tell one failing file from a failing disk. Too
    many open files (``open_files``) is no disk's fault: its reason says so, with the limit.
    """

    def __init__(self, path: str, reason: str, errno: int | None = None) -> None:
        verb = "open" if errno in OPEN_FILES_ERRNOS else "write"
        super().__init__(f"cannot {verb} {path}: {reason}")
        self.path, self.reason, self.errno = path, reason, errno

    @property
    def open_files(self) -> bool:
        """True when the process (or the system) may open no more files: not the disk."""
        return self.errno in OPEN_FILES_ERRNOS

    @classmethod
    def from_os(cls, path: str, exc: OSError) -> DiskError:
        if exc.errno in OPEN_FILES_ERRNOS:
            return cls(path, too_many_open_files(exc.errno), exc.errno)
        return cls(path, exc.strerror or str(exc) or type(exc).__name__, exc.errno)


# A process out of file descriptors (EMFILE), or a system out of open files (ENFILE).
OPEN_FILES_ERRNOS = frozenset({errnos.EMFILE, errnos.ENFILE})


def too_many_open_files(errno: int | None = errnos.EMFILE) -> str:
    """EMFILE (ENFILE) in words: ``too many open files (the limit is 64: raise it with
    ulimit -n)``."""
    if errno == errnos.ENFILE:
        return "too many open files on this system (its table of open files is full)"
    if sys.platform == "win32":
        return "too many open files (raise the limit of open files)"
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limit = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    return f"too many open files (the limit is {limit}: raise it with ulimit -n)"


def out_of_files() -> int | None:
    """EMFILE (ENFILE) when this process cannot open one more file now, else None: for a
    failure that gives no errno (SQLite's "unable to open database file")."""
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
    except OSError as exc:
        return exc.errno if exc.errno in OPEN_FILES_ERRNOS else None
    os.close(fd)
    return None


def open_files_error(exc: BaseException) -> int | None:
    """The errno of ``exc`` (or of the OSError behind it) when it is EMFILE or ENFILE."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "errno", None)
        if code in OPEN_FILES_ERRNOS:
            return int(code)
        inner = getattr(current, "os_error", None)  # aiohttp's connector errors hold one
        current = inner if isinstance(inner, BaseException) else current.__cause__
    return None


class ApiError(BatchgenError):
    """An answer (or a missing answer) from the queue API."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.retry_after = retry_after


class RetryableError(ApiError):
    """Transient: the same request may succeed later (429, 5xx, timeouts, connection errors)."""


class PermanentError(ApiError):
    """The job itself failed for good (validation, content policy, bad request)."""


class ProtocolError(PermanentError):
    """An answer that breaks the protocol: too large, unreadable again and again, a 2xx submit
    without a request id. Asking the same way again will not help; ``str()`` starts with
    ``protocol error:`` and quotes the start of what came back. Its ``error_type`` is
    ``PROTOCOL_ERROR`` unless given (``submit_uncertain``)."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        if kwargs.get("error_type") is None:
            kwargs["error_type"] = PROTOCOL_ERROR
        super().__init__(f"protocol error: {message}", **kwargs)


class FatalError(ApiError):
    """No request will succeed (bad key, no permission, no balance): stop the whole run."""


class KeyRefused(FatalError):
    """The provider refuses the key itself (401/403/402, exhausted balance, a locked user).
    ``key_id`` names the key (its variable and fingerprint) when the client that sent it
    knows it: a run with several keys retires that one and goes on with the others."""

    key_id: str | None = None


class Unreachable(ApiError):
    """The API has never answered this run (connection refused, DNS, TLS): a wrong base URL
    or no network. Nothing was sent; the run stops rather than wait all night."""


class AmbiguousSubmit(ApiError):
    """The submit went out but its answer was lost: a paid job may or may not exist."""
