"""``--max-cost`` for a whole shared batch: checked in the database, in the submit's own move.

Several workers submit the jobs of one PostgreSQL batch, each with its own view of the money.
So the cap is held where they all meet: a move to ``submitting`` made by a ledger opened with
``max_cost`` sums the batch's committed spend in SQL (``money.COMMITTED_SQL``, the rule of
``money.committed``), with the job's own price counted whatever it was before, and is refused
(``OverCost``, nothing of the move written) when that passes the cap. The move is what makes a
job committed, so the batch's committed spend never passes the cap, however many workers
submit at once.

What makes that exact: a transaction with such a move first takes the batch's money lock (a
transaction-level advisory lock, before any row lock, so two of them queue rather than
deadlock) and holds it until it commits; the next one, by any worker, sums after that commit
and so counts the job. Moves that lower the committed spend (a job failed unbilled, cancelled
in the queue, a POST that never left) take no lock: they only leave more room. Mixed into
``PgLedger``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchgen.errors import OverCost
from batchgen.ledger.access import SqlAccess
from batchgen.ledger.core import Move
from batchgen.ledger.money import COMMITTED_SQL
from batchgen.ledger.states import JobStatus

# The money lock's class; the batch's id is its other half (any 32-bit number unique to it).
MONEY_LOCK = 0x62674D43
_AFTER = f"SELECT COALESCE(SUM(cost_usd), 0) FROM jobs WHERE key = ? OR {COMMITTED_SQL}"


class Budget(SqlAccess):
    """The cap on a shared batch's committed spend (see the module docstring); ``max_cost``
    None: no cap."""

    __slots__ = ()
    max_cost: float | None
    batch_id: int

    def _capped(self, move: Move) -> bool:
        return self.max_cost is not None and move.status is JobStatus.SUBMITTING

    def _before_moves(self, db: Any, moves: Sequence[Move]) -> None:
        if any(self._capped(move) for move in moves):
            self._query(db, "SELECT pg_advisory_xact_lock(?, ?)", (MONEY_LOCK, self.batch_id))

    def _admit(self, db: Any, move: Move) -> None:
        if not self._capped(move):
            return
        assert self.max_cost is not None
        total = float(self._query(db, _AFTER, (move.key,)).fetchone()[0])
        if total > self.max_cost + 1e-9:
            raise OverCost(round(total, 6), self.max_cost)
