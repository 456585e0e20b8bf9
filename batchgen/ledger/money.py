"""Money, defined once, at list price: what a folder's jobs have committed and spent.

Every figure batchgen shows (the progress display, the final line, ``status``, the report,
the manifest's ``cost_usd``) and ``--max-cost`` come from these two rules, applied to ledger
rows, so they agree to the cent on the same folder (``billed`` is apart: what the provider's
result answers said each job was billed, see ``batchgen.run.billing``):

- **spent**: the provider ran the job to an output: its video URL is known (``downloading``,
  ``done``, or failed only in our download or disk: the video exists and is paid for), or it
  failed by batchgen's own doing after the provider said COMPLETED without an error (its
  ``completed_at`` is set): an answer that broke the protocol, a result unreadable until
  ``--job-timeout``, a result without a video (``CLIENT_FAILURES``). A job ``completed``
  whose result is not read yet is not counted: its result may be a refusal.
- **committed**: spent, plus every job submitted and not known to be unbilled: in flight at
  the provider (or maybe: a submit whose answer was lost), being submitted again after a
  transient failure, or ended in a way fal may still bill (a refusal after GPU time, a timeout
  or cancel while running). Known unbilled, and so not committed: never submitted; ended by a
  5xx-type failure (fal bills no 5xx; ``UNBILLED_ERRORS``) or by a failed upload of its input
  file (not submitted); cancelled before it started.

``spent`` only goes up. ``committed`` goes down only when a job turns out unbilled: it gave up
after 5xx failures, a submit was refused, or it was cancelled in the queue. A failed job put
back in line by ``--retry-failed`` keeps its last error until it is sent again, so an attempt
that may have been billed stays committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from batchgen.errors import (
    PROTOCOL_ERROR,
    RESULT_TOO_LARGE,
    SERVER_ERROR,
    TRANSIENT_ERROR_TYPES,
    UPLOAD_ERROR,
)
from batchgen.ledger.states import IN_FLIGHT, JobRow, JobStatus

S = JobStatus
# error_types of job failures fal does not bill: its 5xx family, and a failed upload (the
# attempt was never submitted).
UNBILLED_ERRORS = TRANSIENT_ERROR_TYPES | {SERVER_ERROR, UPLOAD_ERROR}
# error_types of failures that are batchgen's own, not the provider's word: after the provider
# said the job COMPLETED without an error, the job ran to an output all the same.
CLIENT_FAILURES = frozenset({PROTOCOL_ERROR, RESULT_TOO_LARGE, "timeout", "no_output"})
_RAN = frozenset({S.DONE, S.DOWNLOADING})


def spent(row: JobRow) -> bool:
    """True when the provider ran ``row``'s job to an output (see the module docstring)."""
    if row.status in _RAN:
        return True
    if row.status is not S.FAILED:
        return False
    return row.video_url is not None or (
        row.completed_at is not None and row.error_type in CLIENT_FAILURES
    )


def committed(row: JobRow) -> bool:
    """True when ``row``'s job was submitted and is not known to be unbilled."""
    if spent(row) or row.status in IN_FLIGHT:
        return True
    if row.status is S.PENDING:  # to be submitted again: retried, or reopened after a failure
        if not row.in_input or row.attempts == 0:
            return False
        return row.attempts > row.retry_from or row.error_type not in UNBILLED_ERRORS
    if row.attempts == 0:
        return False  # never submitted
    if row.status is S.CANCELLED:
        return row.started_at is not None  # a running job may be billed for its time
    return row.error_type not in UNBILLED_ERRORS  # failed: unbilled only after a 5xx


def _among(values: Iterable[str]) -> str:
    return ", ".join(f"'{value}'" for value in sorted(values))


_BILLABLE = f"COALESCE(error_type, '') NOT IN ({_among(UNBILLED_ERRORS)})"
# ``committed`` as a condition on a row of the jobs table, for sums made in the database (a
# shared batch's --max-cost, see batchgen.ledger.budget): the same rule, line for line, which
# tests/ledger/test_money.py holds to ``committed`` on every kind of row.
COMMITTED_SQL = (
    f"(status IN ({_among(_RAN)}) OR (status = 'failed' AND (video_url IS NOT NULL "
    f"OR (completed_at IS NOT NULL AND error_type IN ({_among(CLIENT_FAILURES)})))) "
    f"OR status IN ({_among(IN_FLIGHT)}) "
    "OR (attempts > 0 AND ("
    f"(status = 'pending' AND in_input = 1 AND (attempts > retry_from OR {_BILLABLE})) "
    "OR (status = 'cancelled' AND started_at IS NOT NULL) "
    f"OR (status = 'failed' AND {_BILLABLE}))))"
)


@dataclass(frozen=True, slots=True)
class Money:
    """Committed and spent USD of some jobs; ``unpriced``: jobs of unknown price (left out)."""

    committed: float
    spent: float
    unpriced: int = 0
    billed: float = 0.0  # what the provider billed, over the ``billed_jobs`` that say
    billed_jobs: int = 0


def tally(rows: Iterable[JobRow]) -> Money:
    """The committed and spent USD of ``rows``."""
    total_committed = total_spent = 0.0
    unpriced = billed_jobs = 0
    billed = 0.0
    for row in rows:
        if row.billed_usd is not None:
            billed += row.billed_usd
            billed_jobs += 1
        if not committed(row):
            continue
        if row.cost_usd is None:
            unpriced += 1
            continue
        total_committed += row.cost_usd
        if spent(row):
            total_spent += row.cost_usd
    return Money(
        round(total_committed, 6), round(total_spent, 6), unpriced, round(billed, 6), billed_jobs
    )


def share(row: JobRow) -> tuple[float, float]:
    """``row``'s own (committed, spent) USD: what it adds to a ``tally``."""
    cost = row.cost_usd or 0.0
    return (cost if committed(row) else 0.0, cost if spent(row) else 0.0)
