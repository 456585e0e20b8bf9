"""Submitting a job: checks before anything is spent, the POST, and what its answer means.

``Submitter._submit`` sends one job (``pending``, or ``submit_uncertain`` after a lost answer)
under the run's concurrency slot, the ``--max-cost`` cap and the key's rate limit. The move to
``submitting`` is committed right before the POST leaves (a crash then means "uncertain",
never "not sent"); the answer's request id is committed the moment it arrives. In a batch
several workers share, that move is also where the cap holds for the whole batch: the ledger
refuses it (``OverCost``) when the batch's committed spend would pass ``--max-cost``
(``batchgen.ledger.budget``), and the job is held back as on one machine. A lost answer
is resolved from the provider's request log where there is one (``batchgen.run.reconcile``),
else the job is sent again flagged ``possibly_duplicate``. Local input files are uploaded (or
inlined) first (``batchgen.run.uploads``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from batchgen.api.classify import no_such_app
from batchgen.errors import (
    AmbiguousSubmit,
    FatalError,
    OverCost,
    PermanentError,
    RequestIdTaken,
    RetryableError,
    Unreachable,
)
from batchgen.ledger.money import committed
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.ledger.unique_ids import DUPLICATE_REQUEST_ID, held_message
from batchgen.run.claims import Claims
from batchgen.run.follow import Follower
from batchgen.run.jobs import Job
from batchgen.run.uploads import failure as upload_failure

S = JobStatus
log = logging.getLogger("batchgen.run")
# A submit refused as no such endpoint at this provider (in a run over several endpoints).
ENDPOINT_UNKNOWN = "endpoint_unknown"


class Submitter(Follower):
    """The step of a run that submits jobs (see the module docstring); ``Engine`` sets the
    run's state named here."""

    _origin: str  # the API base URL request ids belong to
    _outputs: Mapping[str, str]  # endpoint id -> the result key holding its video
    _reserved: float  # USD of jobs about to be submitted (--max-cost)
    _draining: bool  # submit nothing more
    _claims: Claims | None  # this worker's share of a batch in a shared ledger
    held_by_cost: int
    not_submitted: int

    @property
    def draining(self) -> bool:
        return self._draining

    async def _submit(self, job: Job) -> bool:
        row, settings = job.row, self._settings
        if not row.in_input:  # followed only because the provider held it: never sent again
            lost = " (its last submit's answer was lost: a job may exist at the provider)"
            why = lost if row.status is S.SUBMIT_UNCERTAIN else f": {row.error}"
            await self._fail(
                job, f"no longer in the input; not submitted again{why}", row.error_type
            )
            return False
        if row.status is S.SUBMIT_UNCERTAIN and settings.on_uncertain_submit == "fail":
            await self._fail(
                job, f"{row.error}; not sent again (--on-uncertain-submit fail)", "submit_uncertain"
            )
            return False
        if row.attempts - row.retry_from >= settings.max_attempts:
            if await self._adopted_at_cap(job):  # its last, lost submit made a job after all
                return True
            # The last answer lost: a job may exist, and --retry-failed sends it again, flagged
            # (it is no refusal: "--retry-failed all" is not needed to try it once more).
            unanswered = row.status is S.SUBMIT_UNCERTAIN and row.error_type is None
            kind = "submit_uncertain" if unanswered else row.error_type
            await self._fail(job, f"gave up after {row.attempts} attempts: {row.error}", kind)
            return False
        if self._draining:
            return False
        if job.slot is None:
            job.slot = await self._slots.acquire(lambda: self._draining)
            if job.slot is None:
                return False
        # A job submitted again after a transient failure is committed already.
        cost = 0.0 if committed(row) else (row.cost_usd or 0.0)
        if self._over_cost(row, cost):
            return False
        payload, files_sent = row.payload, dict[str, str]()
        if row.files and self._uploads is not None:  # local files: uploaded (or inline) first
            try:
                payload, files_sent = await self._uploads.payload(row)
            except (RetryableError, PermanentError) as exc:
                if self.draining:  # stopped, or failed while the run stops: for the next run
                    return False
                message, error_type, flags = upload_failure(row, exc)
                await self._fail(job, message, error_type, **flags)
                return False
            if self._draining or self._over_cost(row, cost):  # others spent meanwhile
                return False
        duplicate = await self._reconciled(job, payload)  # batchgen.run.reconcile
        if duplicate is None:  # its lost submit made a job, now followed: not sent again
            return True
        sent = False
        held = cost  # held for this job while it waits for the rate limiter
        self._reserved += held

        async def before_send() -> None:
            nonlocal sent, held
            if not sent:  # committed before the POST leaves: a crash now means "uncertain"
                await self._move(
                    job,
                    S.SUBMITTING,
                    attempts=row.attempts + 1,
                    origin=self._origin,
                    submitted_at=self._timing.wall(),  # where a lost answer's job is looked for
                    key_id=job.slot or None,
                    possibly_duplicate=duplicate,
                    request_id=None,
                    error=None,
                    error_type=None,
                    sent=files_sent,
                )
                self._reserved -= held  # counted in self.committed from this move on
                held = 0.0
                sent = True

        async def not_sent() -> None:
            nonlocal sent, held
            if sent:  # the connection failed before a byte left: back to where it was
                back = S.SUBMIT_UNCERTAIN if row.status is S.SUBMIT_UNCERTAIN else S.PENDING
                await self._move(job, back, attempts=row.attempts, error=row.error)
                sent = False
                held = cost  # held again until it is sent, or given up
                self._reserved += held

        try:
            answer = await self._keys.client(job.slot).submit(
                payload,
                before_send=before_send,
                not_sent=not_sent,
                stop=lambda: self._draining,
                endpoint=row.endpoint,
            )
        except AmbiguousSubmit as exc:
            await self._move(job, S.SUBMIT_UNCERTAIN, error=f"submit uncertain: {exc}")
            return True
        except OverCost as exc:  # other workers of the batch committed the rest: not sent
            self._hold(row, exc)
            return False
        except (FatalError, RetryableError, PermanentError, Unreachable) as exc:
            if no_such_app(exc) and len(self._outputs) > 1:
                # A comparison goes on without a model the provider does not serve.
                await self._fail(job, str(exc), ENDPOINT_UNKNOWN, attempts=row.attempts)
                return False
            if isinstance(exc, PermanentError):
                # A refused submit created nothing (unlike a 2xx we could not read).
                unpaid = sent and exc.error_type != "submit_uncertain"
                await self._fail(
                    job, str(exc), exc.error_type, **({"attempts": row.attempts} if unpaid else {})
                )
                return False
            if sent:
                await self._move(
                    job,
                    S.PENDING,
                    attempts=row.attempts,
                    possibly_duplicate=duplicate,  # an earlier uncertain submit still may be
                    error=f"not submitted: {exc}",
                )
            if isinstance(exc, FatalError | Unreachable):
                raise
            self.not_submitted += 1
            return False
        finally:
            self._reserved -= held
        now = self._timing.wall()
        job.sent = self._timing.clock.now()
        state = answer.status.state
        target = {"IN_PROGRESS": S.RUNNING, "COMPLETED": S.COMPLETED}.get(state, S.QUEUED)
        try:
            await self._move(
                job,
                target,
                request_id=answer.request_id,
                submitted_at=now,
                queue_position=answer.status.queue_position,
                started_at=now if target is S.RUNNING else None,
                completed_at=now if target is S.COMPLETED else None,
            )
        except RequestIdTaken as exc:  # the provider answered two submits with one id
            await self._id_taken(job, exc)
            return False
        self._submitted(job, answer.status)
        if target is S.COMPLETED:
            await self._finished(job, answer.status)
        return True

    async def _id_taken(self, job: Job, exc: RequestIdTaken) -> None:
        """``job``'s submit was answered with a request id another job holds: a provider
        fault. It fails, naming the job that holds the id (which keeps it, and its video):
        neither row takes the other's video as its own."""
        owner = self._ledger.get(exc.owner)
        message = held_message(exc.request_id, owner.row, owner.key)
        log.warning("job %s: %s", job.row.key, message)
        await self._fail(job, message, DUPLICATE_REQUEST_ID)

    def _over_cost(self, row: JobRow, cost: float) -> bool:
        """True (and the job held, saying why) when ``cost`` would take the committed spend
        above ``--max-cost``."""
        limit = self._settings.max_cost
        if limit is None:
            return False
        # A shared batch's is every worker's, read now; the move to submitting checks it
        # again, atomically. This early look spares uploads for jobs that cannot go.
        known = self.committed if self._claims is None else self._ledger.committed_usd()
        total = known + self._reserved + cost
        if total <= limit + 1e-9:
            return False
        self._hold(row, OverCost(total, limit))
        return True

    def _hold(self, row: JobRow, why: OverCost) -> None:
        """``row`` stays pending, held back by ``--max-cost``; its error says why."""
        self._ledger.update(row.key, error=str(why))
        self.held_by_cost += 1
