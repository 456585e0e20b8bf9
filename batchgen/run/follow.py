"""Following a job at the provider: looks (or its status stream) until it ends, or its time is up.

``Follower._follow`` looks at a job as the client follows jobs (status looks, or result polling
through a proxy), timed by the poll policy. A job whose ``--job-timeout`` runs out is cancelled.

A cancel is not an outcome until the provider says so. After a cancel (for a timeout here, or
asked by ``batchgen cancel``, which leaves a running job ``cancelling``), the job is still
followed, for ``Timing.cancel_grace`` at most, until the provider says how it ended: cancelled
(the job ends ``cancelled`` if the user asked, ``failed`` as timed out otherwise), or completed
anyway, when its video is paid for and is collected like any other, the row saying that it
completed after its cancel. A cancel answered ``ALREADY_COMPLETED`` (in any spelling, or any
answer saying the job ended) reads the job's result at once rather than wait for a look to
say so. A job still running when the grace is over stays ``cancelling``, with a message, and
the next run follows it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from batchgen.api.classify import CANCELLED, UNKNOWN_REQUEST, job_failure
from batchgen.api.clock import duration_text
from batchgen.api.status import ALREADY_COMPLETED, Status
from batchgen.errors import ApiError, PermanentError, RetryableError
from batchgen.ledger.states import JobStatus
from batchgen.run.jobs import Job, JobBook, NotShown

S = JobStatus
log = logging.getLogger("batchgen.run")
USER_CANCEL = "cancelled"  # error_type batchgen cancel marks a job with
# error_type of a job that completed although it was cancelled: paid for, so its video is kept.
COMPLETED_AFTER_CANCEL = "completed_after_cancel"


class Follower(JobBook):
    """The steps of a run that follow submitted jobs (see the module docstring)."""

    async def _follow(self, job: Job) -> None:
        """Look at the job until it ends, or its time (or its cancel's grace) is up."""
        row, timing, client = job.row, self._timing, self._client(job.row)
        assert row.request_id is not None
        clock = timing.clock  # time the process ran: a night with the lid shut is not counted
        cancelling = row.status is S.CANCELLING
        submitted = self._sent(job)
        timeout = self._window(self._settings.job_timeout)
        # A job asked to stop holds its slot until the provider says it ended, or until the
        # ceiling: a wedged provider must not stall the batch forever.
        ceiling = submitted + timeout * timing.stuck_after
        # A queue that moves is a provider at work: the job's time starts again each time its
        # position goes down, and when it is first seen running (see _moved).
        position: int | None = None
        if row.status is S.QUEUED:  # as the submit's answer placed it
            position = _UNPLACED if row.queue_position is None else row.queue_position
        grace = clock.now() + self._window(timing.cancel_grace) if cancelling else None
        deadline = grace if grace is not None else submitted + timeout
        streams = self._settings.poll == "stream" and client.follow != "result"
        if streams and not cancelling and not job.stream_broken:
            status = await self._watch(job, deadline)
            if status is not None:
                if job.learn:
                    elapsed = clock.now() - submitted
                    self._policy.observe(elapsed, elapsed, job.group, wait=job.wait)
                return await self._finished(job, status)
        last_miss = 0.0
        looked = False  # a job is never given up on before one look: it may have ended
        while True:
            now = clock.now()
            if now >= deadline and looked:
                if not cancelling:
                    return await self._timeout(job)
                if deadline == grace and ceiling > now:
                    deadline = ceiling  # still running: looked at now and then, slot held
                    await self._overdue(job)
                    continue
                return await self._unresolved(job)
            start = self._policy.start_of(job.row.key)  # predicted again once the run learned
            if start is not None:
                job.wait = start - submitted
            delay = self._policy.delay(now - submitted, job.group, wait=job.wait, scout=job.scout)
            await self._pause(job, max(0.0, min(delay, deadline - now)))
            looked = True
            # A look (its retries too) must not outlast the job's time; the one at its end gets
            # a request's time, since its answer decides whether the job is cancelled.
            left = max(deadline - clock.now(), timing.request_timeout)
            try:
                async with clock.deadline(left):
                    look = await client.look(row.request_id, row.endpoint)
            except TimeoutError:
                continue  # the job's time is up: the loop's check cancels it
            except (RetryableError, PermanentError) as exc:
                if isinstance(exc, RetryableError) and exc.error_type is None:
                    continue  # the next look is the retry
                self._release(job)  # the job ended in error, or the provider forgot it
                return await self._ended(job, exc)
            elapsed = clock.now() - submitted
            status = look.status
            if status.done:
                if job.learn and not cancelling:
                    first = not self._policy.knows(job.group)
                    ran = status.inference_time
                    moved = self._policy.observe(
                        last_miss,
                        elapsed,
                        job.group,
                        wait=job.wait,
                        ran=None if ran is None else timing.s(ran),
                    )
                    if first:  # the first completion: every wait is timed anew
                        self._retime()
                    elif moved:
                        self._replan()

                job.output = look if look.output is not None else None
                # It ended between the last look that missed it and this one.
                return await self._finished(job, status, submitted + (last_miss + elapsed) / 2)
            if status.state == "CANCELLED":
                self._release(job)
                return await self._ended(job, None)
            last_miss = elapsed
            if not cancelling and _moved(position, status):  # its time starts again
                restart = clock.now()
                deadline, ceiling = restart + timeout, restart + timeout * timing.stuck_after
            position = _position(status)
            await self._seen(job, status)
            if status.state == "IN_QUEUE" or job.wait > elapsed:  # predict its start anew
                self._aim(job, status)

    async def _reconciled(self, job: Job, payload: dict[str, Any]) -> bool | None:
        """Whether sending ``job`` (with ``payload``) must be flagged ``possibly_duplicate``;
        None when the request log shows the job its lost submit made: then it is followed."""
        row = job.row
        if self._reconciler is None or row.status is not S.SUBMIT_UNCERTAIN:
            return row.possibly_duplicate or row.status is S.SUBMIT_UNCERTAIN
        found = await self._reconciler.resolve(row, payload)
        if not isinstance(found, str):
            return found
        await self._move(job, S.QUEUED, request_id=found, error=None, error_type=None)
        self._submitted(job, Status("IN_QUEUE"))
        return None

    async def _adopted_at_cap(self, job: Job) -> bool:
        """Out of attempts, a job whose last submit's answer was lost may have made a job all
        the same: True when the request log shows it (it is then followed, not failed)."""
        row = job.row
        if self._reconciler is None or row.status is not S.SUBMIT_UNCERTAIN:
            return False
        if job.slot is None:
            job.slot = await self._slots.acquire(lambda: False)
            if job.slot is None:
                return False
        # What that submit sent: the planned payload, each local file as the URL it went as.
        urls = {name: sent for name, sent in row.sent.items() if not sent.startswith("data:")}
        return await self._reconciled(job, {**row.payload, **urls}) is None

    def _submitted(self, job: Job, status: Status) -> None:
        """A job this run just submitted teaches the poll policy: its group, whether it is a
        scout, when it should start (its key's jobs in flight tell the account's concurrency)."""
        job.learn = True
        job.group = self._group(job.row)
        job.scout = self._policy.enlist(job.group)
        others = None if job.slot is None else self._slots.in_flight(job.slot) - 1
        self._aim(job, status, others)

    def _aim(self, job: Job, status: Status, others: int | None = None) -> None:
        """Predict when the job starts running, from what the provider said of it now."""
        now = self._timing.clock.now()
        start = self._policy.track(
            job.row.key,
            job.group,
            now,
            queued=status.state == "IN_QUEUE",
            queue_position=status.queue_position,
            others=others,
            lane=job.slot or "",
        )
        job.wait = start - self._sent(job)

    async def _pause(self, job: Job, seconds: float) -> None:
        """Sleep ``seconds`` before the next look, or less when looks are to be timed anew:
        at the run's first completion (a job that is not a scout waits for it), when no job
        is left to submit, and (a long nap in the queue) when learned run times move (see
        ``batchgen.run.polling``)."""
        policy = self._policy
        long = seconds > policy.max_interval  # a nap in the queue
        if not long and policy.tail and (job.scout or policy.knows(job.group)):
            await self._timing.sleep(seconds)
            return
        events = [self._retimed, self._replanned] if long else [self._retimed]
        nap = asyncio.ensure_future(self._timing.sleep(seconds))
        woken = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait({nap, *woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (nap, *woken):
                task.cancel()

    async def _watch(self, job: Job, deadline: float) -> Status | None:
        """Follow the job's status stream; None when it broke (then we poll)."""
        assert job.row.request_id is not None
        silence = self._timing.s(self._timing.stream_silence)
        try:
            async with self._timing.clock.deadline(max(0.0, deadline - self._timing.clock.now())):
                stream = self._client(job.row).stream(
                    job.row.request_id, silence=silence, endpoint=job.row.endpoint
                )
                async with contextlib.aclosing(stream) as statuses:
                    async for status in statuses:
                        if status.done:
                            return status
                        await self._seen(job, status)
        except (RetryableError, PermanentError) as exc:
            log.info("job %s: status stream: %s; polling instead", job.row.key, exc)
        except TimeoutError:
            pass  # the job's time is up: the poll loop cancels it
        job.stream_broken = True
        return None

    async def _seen(self, job: Job, status: Status) -> None:
        if status.state == "IN_PROGRESS" and job.row.status is S.QUEUED:
            await self._move(job, S.RUNNING, started_at=self._timing.wall(), queue_position=None)

    async def _finished(self, job: Job, status: Status, ended: float | None = None) -> None:
        """The provider says the job ended (at ``ended`` on the run clock, when known): give
        back its slot, then take its outcome."""
        self._release(job, ended)
        if status.error or status.error_type:
            await self._ended(job, job_failure(status.error, status.error_type))
        elif job.row.status is S.CANCELLING:
            await self._completed_after_cancel(job)
        elif job.row.status is not S.COMPLETED:
            await self._move(
                job, S.COMPLETED, completed_at=self._timing.wall(), queue_position=None
            )

    async def _ended(self, job: Job, exc: ApiError | None) -> None:
        """The job ended in error (``None``: the provider reported it cancelled)."""
        if job.row.status is not S.CANCELLING:
            if exc is None:
                await self._move(job, S.CANCELLED, error="cancelled at the provider")
                return
            return await self._job_failed(job, exc)
        # A cancel was asked: whatever the error, the job is over and is not submitted again.
        if exc is not None and exc.error_type == UNKNOWN_REQUEST:
            word = "unknown to the provider"
        elif exc is None or exc.error_type in CANCELLED:
            word = "cancelled at the provider"
        else:
            word = f"ended with an error after its cancel: {exc}"
        await self._cancel_outcome(job, word)

    async def _timeout(self, job: Job) -> None:
        await self._move(job, S.CANCELLING, error_type="timeout")
        await self._cancel(job)

    async def _cancel(self, job: Job) -> None:
        """Send the cancel of a ``cancelling`` job, then follow it until the provider says how
        it ended (see the module docstring)."""
        assert job.row.request_id is not None
        grace = self._window(self._timing.cancel_grace)
        try:
            async with self._timing.clock.deadline(grace):
                client = self._client(job.row)
                word = await client.cancel(job.row.request_id, job.row.endpoint)
        except (RetryableError, PermanentError, TimeoutError) as exc:
            word = f"cancel failed: {str(exc) or type(exc).__name__ + ' (no answer in time)'}"
        if word == "NOT_FOUND":  # the result route does not know it either
            self._release(job)
            return await self._cancel_outcome(job, "unknown to the provider")
        log.info("job %s: cancel asked (%s); following it until it ends", job.row.key, word)
        await self._move(job, S.CANCELLING, error=f"cancel asked; the provider answered {word}")
        # It ended, but only its result says how (cancelled, failed, a video): read it now.
        if word == ALREADY_COMPLETED and await self._read_now(job):
            return
        await self._follow(job)

    async def _read_now(self, job: Job) -> bool:
        """Read the result of a job the provider says has ended, at once and whatever its
        status words said (they may be a spelling batchgen does not know); True when that
        settled how the job ended, False when it must be followed still."""
        assert job.row.request_id is not None
        try:
            async with self._timing.clock.deadline(self._window(self._timing.cancel_grace)):
                look = await self._client(job.row).look_result(job.row.request_id, job.row.endpoint)
        except TimeoutError:
            return False
        except (RetryableError, PermanentError) as exc:
            if isinstance(exc, RetryableError) and exc.error_type is None:
                return False  # no answer to go by: follow it as any other
            self._release(job)
            await self._ended(job, exc)
            return True
        if not look.status.done:
            return False
        job.output = look
        await self._finished(job, look.status)
        return True

    async def _cancel_outcome(self, job: Job, word: str) -> None:
        """A cancelled job ended without a video: cancelled if the user asked, else failed."""
        if job.row.error_type == USER_CANCEL:
            error = {
                "cancelled at the provider": "cancelled by user",
                "unknown to the provider": "cancelled: unknown to provider",
            }.get(word, f"cancelled by user; the job {word}")
            await self._move(job, S.CANCELLED, error=error)
            return
        if word == "unknown to the provider":
            if self._keys.foreign(job.row.key_id):  # maybe only hidden from this key
                raise NotShown(f"request {job.row.request_id} is unknown to this key")
            message = f"request {job.row.request_id} is unknown to the provider (expired?)"
            return await self._fail(job, message, UNKNOWN_REQUEST)
        limit = self._settings.job_timeout
        await self._fail(job, f"timed out after {limit:g} s (--job-timeout); {word}", "timeout")

    async def _completed_after_cancel(self, job: Job) -> None:
        """The job completed although a cancel was asked: it is paid for; collect its video."""
        why = "the user's cancel" if job.row.error_type == USER_CANCEL else "its --job-timeout"
        await self._move(
            job,
            S.COMPLETED,
            completed_at=self._timing.wall(),
            queue_position=None,
            error=f"completed after {why}; paid for, so its video is kept",
            error_type=COMPLETED_AFTER_CANCEL,
        )

    async def _overdue(self, job: Job) -> None:
        """The cancel's grace is over and the job still runs: it keeps its slot (the cap
        counts what the provider runs) and is looked at now and then until it ends."""
        grace = duration_text(self._window(self._timing.cancel_grace))
        times = self._timing.stuck_after
        await self._move(
            job,
            S.CANCELLING,
            error=(
                f"cancel asked; after {grace} the provider still had not said how the job "
                f"ended: followed until it does, holding its --concurrency slot, for up to "
                f"{times:g}x its --job-timeout"
            ),
        )
        log.info("job %s: %s", job.row.key, job.row.error)

    async def _unresolved(self, job: Job) -> None:
        """Past the ceiling (``Timing.stuck_after`` times its --job-timeout) the provider
        still has not said how the job ended: its slot goes to another job, saying so."""
        self._release(job)
        self.overdue += 1
        times = self._timing.stuck_after
        await self._move(
            job,
            S.CANCELLING,
            error=(
                f"cancel asked; after {times:g}x its --job-timeout the provider still had not "
                "said how the job ended: it may still complete and be billed; its slot went "
                "to another job; the next run follows it"
            ),
        )
        log.info("job %s: %s", job.row.key, job.row.error)
        if self.overdue & (self.overdue - 1):
            return  # said at 1, 2, 4, 8...: an incident is one line now and then, not a flood
        self._reporter.note(
            f"{self.overdue} job(s) still not ended {times:g}x past their --job-timeout: "
            "their slots went to other jobs, so more than --concurrency may be running and "
            "billed at the provider now (batchgen status shows them)"
        )


_UNPLACED = 1 << 62  # queued, at a position the provider did not say


def _position(status: Status) -> int:
    """The job's place as ``_moved`` compares it: its queue position, or -1 once it runs."""
    if status.state != "IN_QUEUE":
        return -1
    return _UNPLACED if status.queue_position is None else status.queue_position


def _moved(before: int | None, status: Status) -> bool:
    """Whether the provider moved the job on since the look that saw it at ``before`` (see
    ``_position``; None: not looked at yet): a lower queue position, or its start."""
    if before is None or before < 0 or status.state not in ("IN_QUEUE", "IN_PROGRESS"):
        return False
    return _position(status) < before
