"""What the parts of a ledger that write SQL need of it: a transaction, a query, a read.

``SqlLedger`` (and so each backend) provides them; ``UploadCache`` and ``Leases`` are written
against them, with ``?`` placeholders, and mixed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any


class SqlAccess:
    """A transaction (``_tx``), a statement in it (``_query``), a read outside one
    (``_read``), and the clock the ledger stamps rows with."""

    __slots__ = ()
    _clock: Callable[[], float]

    def _tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _query(self, db: Any, sql: str, args: Iterable[Any] = ()) -> Any:
        """Run ``sql`` (``?`` placeholders) on ``db``; a cursor."""
        raise NotImplementedError

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row ``sql`` reads, outside any transaction."""
        raise NotImplementedError
