"""The ledger as the rest of batchgen sees it: one interface, two backends.

``LedgerStore`` is every call a run, ``batchgen status``, ``cancel``, ``report`` and ``export``
make on a ledger. ``batchgen.ledger.store.Ledger`` keeps one output folder's jobs in
``DIR/batchgen.db`` (SQLite, the default); ``batchgen.ledger.postgres.PgLedger`` keeps a named
batch in a PostgreSQL database that several workers share. Both implement it through
``batchgen.ledger.core.SqlLedger``; ``batchgen.ledger.opener.open_shared`` opens the second.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from batchgen.ledger.core import Move, SyncReport
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.ledger.uploads import Upload


class LedgerStore(Protocol):
    """The jobs of one batch and what was uploaded for them. Every call that changes
    something has committed when it returns."""

    @property
    def where(self) -> str:
        """The ledger as messages name it: its file, or its batch (never a password)."""
        ...

    def reader(self) -> LedgerStore:
        """Another connection to the same ledger, read-only, for a thread of its own."""
        ...

    def twin(self) -> LedgerStore:
        """Another connection to the same ledger, to write from a thread of its own (made
        in that thread: a connection stays in the thread that made it)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...

    def sync(
        self, jobs: Iterable[Any], endpoint: str = "", *, occupied: Iterable[str] = ()
    ) -> SyncReport: ...

    def restore(
        self,
        states: Iterable[dict[str, Any]],
        endpoint: str,
        orphans: dict[str, tuple[int, dict[str, Any], str | None]],
    ) -> int: ...

    def get(self, key: str) -> JobRow: ...

    def jobs(
        self, statuses: Iterable[JobStatus] | None = None, *, in_input_only: bool = False
    ) -> list[JobRow]: ...

    def iter_jobs(self) -> Iterator[JobRow]: ...

    def counts(self) -> dict[JobStatus, int]: ...

    def committed_usd(self) -> float: ...

    def requests(self, key: str) -> list[str]: ...

    def file_params(self) -> list[str]: ...

    def first_request(self) -> tuple[str, str] | None: ...

    def meta(self, name: str) -> Any: ...

    def set_meta(self, name: str, value: Any) -> None: ...

    def transition(
        self, key: str, status: JobStatus, *, expect: JobStatus | None = None, **values: Any
    ) -> JobRow: ...

    def transitions(self, moves: Sequence[Move]) -> list[JobRow | Exception]: ...

    def update(self, key: str, **values: Any) -> None: ...

    def upload(self, sha256: str, origin: str) -> Upload | None: ...

    def record_upload(self, sha256: str, origin: str, url: str, size: int) -> Upload: ...

    def stale_upload(self, url: str) -> int: ...
