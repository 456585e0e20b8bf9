"""The run engine: submit, follow and collect jobs concurrently; hand videos to downloaders.

One task drives each job through the ledger's states (PENDING -> SUBMITTING -> QUEUED/RUNNING ->
COMPLETED -> DOWNLOADING), committing each step before acting on it. At most ``concurrency``
jobs are in flight at the provider (a slot is taken before the submit and given back when the
provider says the job finished); a fixed pool of download workers fetches videos, so downloads
never hold up submits or polls. Requests to the API share the client's rate limiter.

Outcomes: a transient job error (runner_disconnected...) submits the job again, up to
``max_attempts`` submits in all; a permanent one fails the job with the provider's message; a
job the provider reports cancelled (``client_cancelled``) ends ``cancelled``; a request id the
provider no longer knows (404) fails the job, so ``run --retry-failed`` can submit it anew. A
``FatalError`` anywhere stops everything at once (``Engine.fatal``). ``drain()`` stops new
submits and lets jobs in flight finish and download. Cancelling ``run`` stops at once; the
ledger then holds a resumable state.

Other processes may change jobs under a live run (``batchgen cancel``). Every move names the
state the engine last saw (``Ledger.transition(expect=...)``); when the ledger says the job is
elsewhere now, the engine leaves it as the other process put it and drives it no further.

Downloads and the rule that stops a run on a failing disk live in ``batchgen.run.download_pool``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchgen.api.classify import CANCELLED, UNKNOWN_REQUEST, job_failure
from batchgen.api.client import QueueClient, Status
from batchgen.errors import (
    AmbiguousSubmit,
    ApiError,
    FatalError,
    JobChanged,
    PermanentError,
    RetryableError,
)
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.ledger.store import Ledger
from batchgen.plan.settings import RunSettings
from batchgen.run.download import Downloader, part_path, video_of
from batchgen.run.download_pool import DownloadPool
from batchgen.run.limits import Slots
from batchgen.run.polling import PollPolicy
from batchgen.run.progress import Reporter
from batchgen.run.timing import Timing

S = JobStatus
log = logging.getLogger("batchgen.run")


@dataclass(slots=True)
class _Job:
    row: JobRow
    holding: bool = False
    learn: bool = False  # submitted in this run: its latency teaches the poll policy
    stream_broken: bool = False
    output: dict[str, Any] | None = None  # the result, when a look at the result route read it


class Engine:
    """Runs the jobs it is given to the end (or to a stop). One use per instance."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        client: QueueClient,
        downloader: Downloader,
        settings: RunSettings,
        timing: Timing,
        policy: PollPolicy,
        reporter: Reporter,
        out_dir: Path,
        origin: str = "",
        key_id: str | None = None,
    ) -> None:
        self._ledger, self._client, self._downloader = ledger, client, downloader
        self._origin, self._key_id = origin, key_id
        self._settings, self._timing, self._policy = settings, timing, policy
        self._reporter, self._out = reporter, out_dir
        self._slots = Slots(settings.concurrency)
        self._pool = DownloadPool(
            ledger=ledger,
            downloader=downloader,
            reporter=reporter,
            out_dir=out_dir,
            workers=settings.download_concurrency,
            on_disk_stop=self.drain,
        )
        self._active = 0
        self._idle = asyncio.Event()
        self._draining = False
        self.spent = 0.0
        self.fatal: FatalError | None = None
        self.held_by_cost = 0
        self.not_submitted = 0

    def __repr__(self) -> str:
        return (
            f"<Engine in_flight={self._slots.used}/{self._slots.limit} "
            f"active={self._active} downloads={self._pool.queued} "
            f"spent=${self.spent:.2f}{' draining' if self._draining else ''}>"
        )

    def drain(self) -> None:
        """Submit nothing more; let the jobs in flight finish and download."""
        self._draining = True
        self._slots.wake()

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def disk_stop(self) -> str | None:
        """Why the run stopped for a failing disk, or None (see ``batchgen.run.download_pool``)."""
        return self._pool.disk_stop

    async def run(self, jobs: Iterable[tuple[str, JobStatus]], spent: float = 0.0) -> None:
        """Drive ``jobs`` (key and status of the run's jobs, in input order) to their end.

        ``spent`` is the folder's estimated spend so far. Only keys are kept: a job's row is
        read from the ledger when its turn comes, so 100,000 waiting jobs cost little memory.
        """
        self.spent = spent
        waiting: list[str] = []
        remote: list[str] = []
        fetch: list[str] = []
        for key, status in jobs:
            if status in (S.PENDING, S.SUBMITTING, S.SUBMIT_UNCERTAIN):
                waiting.append(key)
            elif status in (S.QUEUED, S.RUNNING, S.CANCELLING):
                remote.append(key)
            elif status in (S.COMPLETED, S.DOWNLOADING):
                fetch.append(key)
        get = self._ledger.get
        try:
            async with asyncio.TaskGroup() as tg:
                self._pool.start(tg)
                for key in fetch:
                    self._spawn(tg, _Job(get(key)))
                for key in remote:
                    self._slots.take()
                    self._spawn(tg, _Job(get(key), holding=True))
                for key in waiting:
                    if not await self._slots.acquire(lambda: self._draining):
                        break
                    self._spawn(tg, _Job(get(key), holding=True))
                await self._wait_idle()
                await self._pool.close()
        except BaseExceptionGroup as group:
            fatal = [e for e in group.exceptions if isinstance(e, FatalError)]
            if not fatal:
                raise group.exceptions[0] if len(group.exceptions) == 1 else group from None
            self.fatal = fatal[0]
            log.error("fatal: %s", self.fatal)

    # -- driving one job ------------------------------------------------------------------

    def _spawn(self, tg: asyncio.TaskGroup, job: _Job) -> None:
        self._active += 1
        self._idle.clear()
        tg.create_task(self._drive(job))

    async def _wait_idle(self) -> None:
        while self._active:
            await self._idle.wait()

    async def _drive(self, job: _Job) -> None:
        try:
            while await self._step(job):
                pass
        except JobChanged as exc:
            job.row = self._ledger.get(job.row.key)
            log.info("%s: changed by another process; left as it is", exc)
        finally:
            self._release(job)
            self._active -= 1
            if not self._active:
                self._idle.set()

    async def _step(self, job: _Job) -> bool:
        """Move ``job`` on by one state; False when this run is done with it."""
        status = job.row.status
        if status is S.SUBMITTING:  # left so by a crash: its POST may have gone out
            self._move(
                job,
                S.SUBMIT_UNCERTAIN,
                error="interrupted while submitting: a job may exist at the provider",
            )
        elif status in (S.PENDING, S.SUBMIT_UNCERTAIN):
            return await self._submit(job)
        elif status in (S.QUEUED, S.RUNNING):
            await self._follow(job)
        elif status is S.CANCELLING:
            await self._cancel(job)
            return job.row.status is not S.CANCELLING
        elif status is S.COMPLETED:
            await self._collect(job)
        elif status is S.DOWNLOADING:
            row = job.row
            assert row.video_url is not None
            assert row.video_path is not None
            self._pool.put(row.key, row.video_url, row.bytes, row.video_path)
            return False
        else:
            return False
        return True

    async def _submit(self, job: _Job) -> bool:
        row, settings = job.row, self._settings
        if not row.in_input:  # followed only because the provider held it: never sent again
            lost = " (its last submit's answer was lost: a job may exist at the provider)"
            why = lost if row.status is S.SUBMIT_UNCERTAIN else f": {row.error}"
            self._fail(job, f"no longer in the input; not submitted again{why}", row.error_type)
            return False
        if row.status is S.SUBMIT_UNCERTAIN and settings.on_uncertain_submit == "fail":
            self._fail(
                job, f"{row.error}; not sent again (--on-uncertain-submit fail)", "submit_uncertain"
            )
            return False
        if row.attempts - row.retry_from >= settings.max_attempts:
            self._fail(job, f"gave up after {row.attempts} attempts: {row.error}", row.error_type)
            return False
        if self._draining:
            return False
        if not job.holding:
            if not await self._slots.acquire(lambda: self._draining):
                return False
            job.holding = True
        cost = row.cost_usd or 0.0
        if settings.max_cost is not None and self.spent + cost > settings.max_cost + 1e-9:
            self._ledger.update(
                row.key,
                error=(
                    f"not submitted: it would take the estimated spend to "
                    f"${self.spent + cost:,.2f}, above --max-cost ${settings.max_cost:,.2f}"
                ),
            )
            self.held_by_cost += 1
            return False
        duplicate = row.possibly_duplicate or row.status is S.SUBMIT_UNCERTAIN
        sent = False

        def before_send() -> None:
            nonlocal sent
            if not sent:  # committed before the POST leaves: a crash now means "uncertain"
                self._move(
                    job,
                    S.SUBMITTING,
                    attempts=row.attempts + 1,
                    origin=self._origin,
                    key_id=self._key_id,
                    possibly_duplicate=duplicate,
                    request_id=None,
                    error=None,
                    error_type=None,
                )
                sent = True

        self._add_spend(cost)
        try:
            answer = await self._client.submit(row.payload, before_send=before_send)
        except JobChanged:  # cancelled (say) before its POST left: nothing was sent
            self._add_spend(-cost)
            raise
        except AmbiguousSubmit as exc:
            self._move(job, S.SUBMIT_UNCERTAIN, error=f"submit uncertain: {exc}")
            return True
        except (FatalError, RetryableError, PermanentError) as exc:
            if exc.error_type != "submit_uncertain":  # a 2xx we could not read may have made one
                self._add_spend(-cost)  # the answer proves no job was created
            if isinstance(exc, PermanentError):
                self._fail(job, str(exc), exc.error_type)
                return False
            if sent:
                self._move(
                    job,
                    S.PENDING,
                    attempts=row.attempts,
                    possibly_duplicate=row.possibly_duplicate,
                    error=f"not submitted: {exc}",
                )
            if isinstance(exc, FatalError):
                raise
            self.not_submitted += 1
            return False
        now = self._timing.wall()
        state = answer.status.state
        target = {"IN_PROGRESS": S.RUNNING, "COMPLETED": S.COMPLETED}.get(state, S.QUEUED)
        self._move(
            job,
            target,
            request_id=answer.request_id,
            submitted_at=now,
            queue_position=answer.status.queue_position,
            started_at=now if target is S.RUNNING else None,
            completed_at=now if target is S.COMPLETED else None,
        )
        job.learn = True
        if row.attempts == 0:
            self._reporter.submitted()
        if target is S.COMPLETED:
            await self._finished(job, answer.status)
        return True

    async def _follow(self, job: _Job) -> None:
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

    async def _watch(self, job: _Job, deadline: float) -> Status | None:
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

    def _seen(self, job: _Job, status: Status) -> None:
        if status.state == "IN_PROGRESS" and job.row.status is S.QUEUED:
            self._move(job, S.RUNNING, started_at=self._timing.wall(), queue_position=None)

    async def _finished(self, job: _Job, status: Status) -> None:
        """The provider says the job ended: give back its slot, then take its outcome."""
        self._release(job)
        if status.error or status.error_type:
            self._job_failed(job, job_failure(status.error, status.error_type))
        elif job.row.status is not S.COMPLETED:
            self._move(job, S.COMPLETED, completed_at=self._timing.wall(), queue_position=None)

    async def _timeout(self, job: _Job) -> None:
        self._move(job, S.CANCELLING, error_type="timeout")
        await self._cancel(job)

    async def _cancel(self, job: _Job) -> None:
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

    async def _collect(self, job: _Job) -> None:
        """Read the result of a completed job; record its video URL; queue the download."""
        row, timing = job.row, self._timing
        assert row.request_id is not None
        deadline = (row.submitted_at or timing.wall()) + timing.s(self._settings.job_timeout)
        output, job.output = job.output, None  # already read by the look that saw it done
        while output is None:
            try:
                output = await self._client.result(row.request_id)
            except RetryableError as exc:
                if exc.error_type is not None:
                    return self._job_failed(job, exc)
                # The job ran and is paid for: keep asking for its result, not for a new job.
                if timing.wall() >= deadline:
                    return self._fail(
                        job, f"result unreadable until --job-timeout: {exc}", "timeout"
                    )
                await timing.sleep(timing.s(self._settings.max_poll_interval))
            except PermanentError as exc:
                return self._job_failed(job, exc)
        url, size = video_of(output, self._client.endpoint.output)
        if url is None:
            return self._fail(
                job, f"the result holds no video URL: {str(output)[:300]}", "no_output"
            )
        path = f"videos/{row.filename}"
        if row.video_url is not None:  # an earlier attempt's .part holds another video
            with contextlib.suppress(OSError):  # unwritable: its download will say so
                part_path(self._out / path).unlink(missing_ok=True)
        self._move(job, S.DOWNLOADING, video_url=url, video_path=path, bytes=size)
        self._reporter.completed()

    def _job_failed(self, job: _Job, exc: ApiError) -> None:
        """A job ended in error: submit it again when transient and attempts remain."""
        if exc.error_type in CANCELLED:  # someone cancelled it: not a failure of the job
            self._release(job)
            error = f"cancelled at the provider: {exc}"
            self._move(job, S.CANCELLED, error=error, error_type=exc.error_type)
            log.info("job %s: cancelled at the provider: %s", job.row.key, exc)
            return
        if isinstance(exc, RetryableError):
            self._add_spend(-(job.row.cost_usd or 0.0))  # fal bills no 5xx
            if job.row.attempts - job.row.retry_from < self._settings.max_attempts:
                log.info("job %s: %s; submitting again", job.row.key, exc)
                self._move(job, S.PENDING, error=str(exc), error_type=exc.error_type)
                return
            return self._fail(job, f"{exc} (after {job.row.attempts} attempts)", exc.error_type)
        self._fail(job, str(exc), exc.error_type)

    # -- small helpers ------------------------------------------------------------------------

    def _move(self, job: _Job, status: JobStatus, **fields: Any) -> None:
        """Move the job on from the state this run last saw; JobChanged if it is elsewhere."""
        job.row = self._ledger.transition(job.row.key, status, expect=job.row.status, **fields)

    def _fail(self, job: _Job, message: str, error_type: str | None) -> None:
        self._release(job)
        self._move(job, S.FAILED, error=message, error_type=error_type)
        self._reporter.failed()
        log.info("job %s: failed: %s", job.row.key, message)

    def _release(self, job: _Job) -> None:
        if job.holding:
            job.holding = False
            self._slots.release()

    def _add_spend(self, usd: float) -> None:
        if usd:
            self.spent = round(self.spent + usd, 6)
            self._reporter.spend(self.spent)
