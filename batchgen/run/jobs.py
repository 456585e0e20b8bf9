"""The book-keeping every step of a run shares: one job as a run drives it, and its moves.

``Job`` is a ledger row plus what this run knows of it (which key's concurrency slot it holds,
may its latency teach the poll policy, did a look already read its output). ``JobBook`` holds
what the steps share (ledger, the keys with their clients and slots, settings, timing,
reporter, the spend so far) and the moves they all make: ``_move`` commits through the run's
``LedgerWriter`` (a thread, many moves to a transaction) and names the state this run last
saw, so a job another process moved meanwhile raises JobChanged instead of being overwritten;
``_job_failed`` decides what a job that ended in error becomes; ``_refused`` what a key the
provider refuses means for the job that sent it. ``batchgen.run.follow`` and
``batchgen.run.engine`` build on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchgen.api.classify import CANCELLED, UNKNOWN_REQUEST
from batchgen.api.client import QueueClient
from batchgen.api.status import Look
from batchgen.errors import RESULT_TOO_LARGE, ApiError, KeyRefused, RetryableError
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.money import Money, share
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.ledger.writer import LedgerWriter
from batchgen.plan.settings import RunSettings
from batchgen.run.keys import KeyPool
from batchgen.run.polling import PollPolicy
from batchgen.run.progress import Reporter
from batchgen.run.reconcile import Reconciler
from batchgen.run.timing import Timing
from batchgen.run.uploads import FILE_REFUSED, Uploads

S = JobStatus
log = logging.getLogger("batchgen.run")


class NotShown(Exception):
    """The provider does not show a job of another key to this run's key (see
    ``Jobs._job_failed``): the job is left as it is."""


WINDOW_LOOKS = 10  # looks at every job in flight a safety window allows at least (_window)


@dataclass(slots=True)
class Job:
    """A job as this run drives it."""

    row: JobRow
    slot: str | None = None  # the lane (key_id) of the run's concurrency slot it holds
    learn: bool = False  # submitted in this run: its latency teaches the poll policy
    stream_broken: bool = False
    # Poll policy state: the group it runs with, its predicted seconds in the queue from its
    # submit, whether it is one of its group's scouts (see batchgen.run.polling).
    group: Hashable = ""
    wait: float = 0.0
    scout: bool = True  # a job this run did not submit looks as a scout would
    output: Look | None = None  # the look that read its result, when one did
    # When it was submitted, on the run clock (timing.clock): time the process was stopped
    # does not count against its --job-timeout. None until known (see JobBook._sent).
    sent: float | None = None


class JobBook:
    """What the steps of a run share, and the moves they make on the ledger."""

    def __init__(
        self,
        *,
        ledger: LedgerStore,
        keys: KeyPool,
        settings: RunSettings,
        timing: Timing,
        policy: PollPolicy,
        reporter: Reporter,
        out_dir: Path,
    ) -> None:
        self._ledger, self._keys = ledger, keys
        # The moves of this run's jobs, committed in a thread (started and closed by run()).
        self._writes = LedgerWriter(ledger)
        self._settings, self._timing, self._policy = settings, timing, policy
        self._reporter, self._out = reporter, out_dir
        self._slots = keys.slots
        # Set when looks should be timed anew: at the run's first completion, and when no job
        # is left to submit (see Follower._pause).
        self._retimed = asyncio.Event()
        self._replanned = asyncio.Event()  # set (and renewed) when learned run times move
        # Per endpoint: the parameters its jobs' run times depend on (its price's drivers).
        self._drivers: Mapping[str, tuple[str, ...]] = {}
        self._uploads: Uploads | None = None  # the run's local input files, if it has any
        self._reconciler: Reconciler | None = None  # resolves lost submits from a request log
        # The folder's money (batchgen.ledger.money), kept up to date move by move.
        self.committed = self.spent = 0.0
        self.stranded = 0  # jobs in flight left for a later run: their key was refused
        # Jobs of keys this run does not hold that its key may not read, by the key that sent them.
        self.unshown: Counter[str | None] = Counter()
        self.overdue = 0  # jobs asked to stop that outlived the ceiling: their slots freed

    def _group(self, row: JobRow) -> Hashable:
        """The jobs whose run times the poll policy learns together: one endpoint, the same
        values of the parameters that drive its price (a 10 s video runs longer than a 5 s)."""
        drivers = self._drivers.get(row.endpoint, ())
        return (row.endpoint, *(str(row.payload.get(name)) for name in drivers))

    def count_money(self, money: Money) -> None:
        """Start from the folder's money as the ledger holds it."""
        self.committed, self.spent = money.committed, money.spent
        self._reporter.money(self.committed, self.spent)

    async def _job_failed(self, job: Job, exc: ApiError) -> None:
        """A job ended in error: submit it again when transient and attempts remain. A job
        of another key that this key is told is unknown raises NotShown: it may be paid and
        only hidden from this key (another account's), so it is neither failed nor sent."""
        if exc.error_type == UNKNOWN_REQUEST and self._keys.foreign(job.row.key_id):
            raise NotShown(str(exc))
        if exc.error_type in CANCELLED:  # someone cancelled it: not a failure of the job
            self._release(job)
            error = f"cancelled at the provider: {exc}"
            await self._move(job, S.CANCELLED, error=error, error_type=exc.error_type)
            log.info("job %s: cancelled at the provider: %s", job.row.key, exc)
            return
        if isinstance(exc, RetryableError):
            if job.row.attempts - job.row.retry_from < self._settings.max_attempts:
                log.info("job %s: %s; submitting again", job.row.key, exc)
                await self._move(job, S.PENDING, error=str(exc), error_type=exc.error_type)
                return
            return await self._fail(
                job, f"{exc} (after {job.row.attempts} attempts)", exc.error_type
            )
        if self._uploads is not None and self._uploads.refused(job.row, exc):
            return await self._fail(job, str(exc), FILE_REFUSED)  # --retry-failed uploads it again
        made = exc.error_type == RESULT_TOO_LARGE and job.row.completed_at is None
        # A result answered 2xx, too large to read: the provider made the output, it is paid.
        await self._fail(
            job, str(exc), exc.error_type, **({"completed_at": self._timing.wall()} if made else {})
        )

    def _window(self, seconds: float) -> float:
        """A safety window (``seconds`` of run time: a job timeout, a cancel's grace) in real
        seconds, never shorter than ``WINDOW_LOOKS`` looks at every job in flight at the
        configured --rate: on a compressed clock (``--mock-time-scale``) the rate, not the
        provider, would otherwise time jobs out."""
        floor = WINDOW_LOOKS * self._settings.concurrency / self._settings.rate
        return max(self._timing.s(seconds), floor)

    def _sent(self, job: Job) -> float:
        """When ``job`` was submitted, on the run clock: this run's own reading, else (a job
        an earlier run submitted) what the wall clock says has passed since its submit."""
        if job.sent is None:
            timing = self._timing
            ago = timing.wall() - (job.row.submitted_at or timing.wall())
            job.sent = timing.clock.now() - max(0.0, ago)
        return job.sent

    async def _move(self, job: Job, status: JobStatus, **fields: Any) -> None:
        """Move the job on from the state this run last saw; JobChanged if it is elsewhere."""
        old = job.row
        moving = self._writes.move(old.key, status, expect=old.status, **fields)
        try:
            job.row = await asyncio.shield(moving)
        except asyncio.CancelledError:
            # Cancelled (a --job-timeout, a stop) while the writer has the move: it may be
            # made all the same. Its outcome is awaited, so that ``job.row`` stays what the
            # ledger holds for whatever the caller does next (a cancel, say).
            try:
                job.row = await asyncio.shield(moving)
            except asyncio.CancelledError:
                moving.cancel()  # cancelled again: nobody waits for it any more
            except Exception:  # not made: the row is as it was
                pass
            else:
                self._account(old, job.row)
            raise
        self._account(old, job.row)

    def _account(self, old: JobRow, new: JobRow) -> None:
        """Count a job's move from ``old`` to ``new`` (by this run or another process)."""
        self._reporter.moved(old.status, new.status)
        before, after = share(old), share(new)
        if after != before:
            self.committed = round(self.committed + after[0] - before[0], 6)
            self.spent = round(self.spent + after[1] - before[1], 6)
            self._reporter.money(self.committed, self.spent)

    async def _fail(self, job: Job, message: str, error_type: str | None, **fields: Any) -> None:
        self._release(job)
        await self._move(job, S.FAILED, error=message, error_type=error_type, **fields)
        self._reporter.note(f"failed: row {job.row.row} ({job.row.key[:8]}): {message}")
        log.info("job %s: failed: %s", job.row.key, message)

    def _retime(self) -> None:
        """Wake every job waiting for its next look, to time it anew."""
        self._retimed.set()
        self._retimed = asyncio.Event()

    def _replan(self) -> None:
        """Wake the jobs on a long nap in the queue (see ``batchgen.run.polling``): what
        their naps were timed by has moved."""
        self._replanned.set()
        self._replanned = asyncio.Event()

    def _not_shown(self, job: Job, exc: Exception) -> None:
        """``job`` was submitted with a key this run does not hold, and the provider will not
        show it to this run's key: left as it is (paid, maybe) for a run with its own key."""
        self._release(job)
        row = job.row
        self.unshown[row.key_id] += 1
        note = (
            f"row {row.row} ({row.key[:8]}) cannot be read with this run's key ({exc}): it "
            f"was submitted with {row.key_id}; left {row.status} for a run with that key"
        )
        self._reporter.note(note)
        log.info("job %s: %s", row.key, note)

    def _client(self, row: JobRow) -> QueueClient:
        """The client of the key that submitted ``row`` (see ``batchgen.run.keys``)."""
        return self._keys.client(row.key_id)

    def _release(self, job: Job, ended: float | None = None) -> None:
        """The job no longer holds its slot; ``ended``: when it ended (run clock), if known."""
        self._policy.forget(job.row.key, self._timing.clock.now() if ended is None else ended)
        if job.slot is not None:
            self._slots.release(job.slot)
            job.slot = None

    def _refused(self, job: Job, exc: KeyRefused) -> bool:
        """The provider refused the key of this request: retire it (FatalError when no key is
        left). True when the job goes on: its submit goes to another key; False for a job
        in flight with that key, left as it is for a later run with a working key. A job of
        a key this run does not hold is only not shown to this key: the key stays."""
        if self._keys.foreign(job.row.key_id) and job.row.status not in (
            S.PENDING,
            S.SUBMIT_UNCERTAIN,
        ):
            self._not_shown(job, exc)
            return False
        line = self._keys.retire(exc)
        if line is not None:
            self._reporter.note(line)
            log.warning("%s", line)
        self._release(job)
        row = job.row
        if row.status in (S.PENDING, S.SUBMIT_UNCERTAIN):
            return True
        self.stranded += 1
        note = (
            f"row {row.row} ({row.key[:8]}) cannot be followed now: its key "
            f"{self._keys.env(exc.key_id)} was refused; left {row.status} for a later run "
            "with a working key"
        )
        self._reporter.note(note)
        log.info("job %s: %s", row.key, note)
        return False
