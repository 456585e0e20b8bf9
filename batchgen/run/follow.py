"""Following a job at the provider: looks (or its status stream) until it ends, or its time is up.

``Follower._follow`` looks at a job as the client follows jobs (status looks, or result polling
through a proxy), timed by the poll policy; a job whose ``--job-timeout`` runs out is cancelled
(``_timeout``, ``_cancel``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from batchgen.api.classify import UNKNOWN_REQUEST, job_failure
from batchgen.api.client import Status
from batchgen.errors import PermanentError, RetryableError
from batchgen.ledger.states import JobStatus
from batchgen.run.jobs import Job, JobBook

S = JobStatus
log = logging.getLogger("batchgen.run")


class Follower(JobBook):
    """The steps of a run that follow submitted jobs (see the module docstring)."""

    async def _follow(self, job: Job) -> None:
        """Look at the job until it ends, or its time is up."""
        row, timing, client = job.row, self._timing, self._client
        assert row.request_id is not None
        submitted = row.submitted_at or timing.wall()
        deadline = submitted + timing.s(self._settings.job_timeout)
        if self._settings.poll == "stream" and client.follow != "result" and not job.stream_broken:
            status = await self._watch(job, deadline)
            if status is not None:
                if job.learn:
                    elapsed = timing.wall() - submitted
                    self._policy.observe(elapsed, elapsed)
                return await self._finished(job, status)
        last_miss = 0.0
        while True:
            now = timing.wall()
            if now >= deadline:
                return await self._timeout(job)
            await timing.sleep(min(self._policy.delay(now - submitted), deadline - now))
            try:  # a look (its retries too) must not outlast the job's time
                async with asyncio.timeout(max(0.0, deadline - timing.wall())):
                    look = await client.look(row.request_id)
            except TimeoutError:
                continue  # the job's time is up: the loop's check cancels it
            except (RetryableError, PermanentError) as exc:
                if isinstance(exc, RetryableError) and exc.error_type is None:
                    continue  # the next look is the retry
                self._release(job)  # the job ended in error, or the provider forgot it
                return self._job_failed(job, exc)
            elapsed = timing.wall() - submitted
            status = look.status
            if status.done:
                if job.learn:
                    self._policy.observe(last_miss, elapsed)
                job.output = look.output
                return await self._finished(job, status)
            if status.state == "CANCELLED":
                self._move(job, S.CANCELLED, error="cancelled at the provider")
                self._release(job)
                return None
            last_miss = elapsed
            self._seen(job, status)

    async def _watch(self, job: Job, deadline: float) -> Status | None:
        """Follow the job's status stream; None when it broke (then we poll)."""
        assert job.row.request_id is not None
        silence = self._timing.s(self._timing.stream_silence)
        try:
            async with asyncio.timeout(max(0.0, deadline - self._timing.wall())):
                stream = self._client.stream(job.row.request_id, silence=silence)
                async with contextlib.aclosing(stream) as statuses:
                    async for status in statuses:
                        if status.done:
                            return status
                        self._seen(job, status)
        except (RetryableError, PermanentError) as exc:
            log.info("job %s: status stream: %s; polling instead", job.row.key, exc)
        except TimeoutError:
            pass  # the job's time is up: the poll loop cancels it
        job.stream_broken = True
        return None

    def _seen(self, job: Job, status: Status) -> None:
        if status.state == "IN_PROGRESS" and job.row.status is S.QUEUED:
            self._move(job, S.RUNNING, started_at=self._timing.wall(), queue_position=None)

    async def _finished(self, job: Job, status: Status) -> None:
        """The provider says the job ended: give back its slot, then take its outcome."""
        self._release(job)
        if status.error or status.error_type:
            self._job_failed(job, job_failure(status.error, status.error_type))
        elif job.row.status is not S.COMPLETED:
            self._move(job, S.COMPLETED, completed_at=self._timing.wall(), queue_position=None)

    async def _timeout(self, job: Job) -> None:
        self._move(job, S.CANCELLING, error_type="timeout")
        await self._cancel(job)

    async def _cancel(self, job: Job) -> None:
        """Send the cancel of a ``cancelling`` job. Completed meanwhile: collect it. Else a job
        whose time is up fails; one the user cancelled (``batchgen cancel`` got an unclear
        answer) ends cancelled, or stays cancelling for the next run if it is still unclear."""
        assert job.row.request_id is not None
        try:
            word = await self._client.cancel(job.row.request_id)
        except (RetryableError, PermanentError) as exc:
            word = f"cancel failed: {exc}"
        self._release(job)
        if word == "ALREADY_COMPLETED":
            self._move(job, S.COMPLETED, completed_at=self._timing.wall())
            return
        if job.row.error_type == "cancelled":  # batchgen cancel's mark: the user asked
            if word in ("CANCELLATION_REQUESTED", "NOT_FOUND"):
                error = (
                    "cancelled by user" if word != "NOT_FOUND" else "cancelled: unknown to provider"
                )
                self._move(job, S.CANCELLED, error=error)
            else:
                self._move(job, S.CANCELLING, error=f"cancel asked again, provider answered {word}")
            return
        if word == "NOT_FOUND":  # not a job that ran too long: one the provider forgot
            message = f"request {job.row.request_id} is unknown to the provider (expired?)"
            return self._fail(job, message, UNKNOWN_REQUEST)
        limit = self._settings.job_timeout
        self._fail(job, f"timed out after {limit:g} s (--job-timeout); cancel: {word}", "timeout")
