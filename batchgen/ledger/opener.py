"""Opening a shared batch: the one door to ``batchgen.ledger.postgres``, which needs psycopg
(an optional install): without it, a plain message says what to install."""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchgen.errors import UsageError
from batchgen.ledger.shared import Worker, check_url

if TYPE_CHECKING:
    from batchgen.ledger.postgres import PgLedger


def open_shared(
    url: str,
    batch: str,
    *,
    readonly: bool = False,
    worker: Worker | None = None,
    lease: float = 60.0,
    max_cost: float | None = None,
) -> PgLedger:
    """The batch ``batch`` of the database at ``url`` (created unless ``readonly``); with
    ``max_cost``, its submits are held to that cap on the batch's committed USD."""
    check_url(url)
    try:
        from batchgen.ledger.postgres import PgLedger
    except ImportError:
        raise UsageError(
            "a PostgreSQL ledger needs psycopg: pip install 'batchgen[postgres]'"
        ) from None
    return PgLedger(url, batch, readonly=readonly, worker=worker, lease=lease, max_cost=max_cost)
