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
``FatalError`` anywhere stops everything at once (``Engine.fatal``), but for a key the provider
refuses (``KeyRefused``) while others are left: that key is retired (``batchgen.run.keys``),
the job it refused to submit goes to another key, and a job in flight it can no longer follow
is left as it is for a later run (``Engine.stranded``); and for a submit answered 404 in a run
over several endpoints: that endpoint's jobs fail (``endpoint_unknown``), the others go on.
``drain()`` stops new submits and lets jobs in flight finish and download. Cancelling ``run``
stops at once; the ledger then holds a resumable state.

Other processes may change jobs under a live run (``batchgen cancel``). Every move names the
state the engine last saw (``Ledger.transition(expect=...)``); when the ledger says the job is
elsewhere now, the engine leaves it as the other process put it and drives it no further.

Submitting lives in ``batchgen.run.submit``, following jobs in ``batchgen.run.follow``, shared
moves in ``batchgen.run.jobs`` (committed through ``batchgen.ledger.writer``), downloads in
``batchgen.run.download_pool``, what a job was billed in ``batchgen.run.billing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from batchgen.api.objectstore import ObjectStore
from batchgen.errors import (
    BatchgenError,
    DiskError,
    FatalError,
    JobChanged,
    KeyRefused,
    PermanentError,
    RetryableError,
    Unreachable,
)
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.states import JobStatus
from batchgen.plan.settings import RunSettings
from batchgen.run.ahead import Ahead
from batchgen.run.billing import Billing
from batchgen.run.claims import Claims
from batchgen.run.download import Downloader, video_of
from batchgen.run.download_pool import DownloadPool, Video
from batchgen.run.follow import COMPLETED_AFTER_CANCEL
from batchgen.run.jobs import Job, NotShown
from batchgen.run.keys import KeyPool
from batchgen.run.links import FreshLinks
from batchgen.run.partfile import part_path
from batchgen.run.polling import PollPolicy
from batchgen.run.progress import Reporter
from batchgen.run.reconcile import Reconciler
from batchgen.run.submit import Submitter
from batchgen.run.timing import Timing
from batchgen.run.uploads import Uploads

S = JobStatus
log = logging.getLogger("batchgen.run")


class Engine(Submitter):
    """Runs the jobs it is given to the end (or to a stop). One use per instance."""

    def __init__(
        self,
        *,
        ledger: LedgerStore,
        keys: KeyPool,
        downloader: Downloader,
        settings: RunSettings,
        timing: Timing,
        policy: PollPolicy,
        reporter: Reporter,
        out_dir: Path,
        origin: str = "",
        outputs: Mapping[str, str] | None = None,
        uploads: Uploads | None = None,
        drivers: Mapping[str, tuple[str, ...]] | None = None,
        store: ObjectStore | None = None,
        claims: Claims | None = None,
        video_dir: str | None = None,
        billing: Billing | None = None,
        reconciler: Reconciler | None = None,
    ) -> None:
        super().__init__(
            ledger=ledger,
            keys=keys,
            settings=settings,
            timing=timing,
            policy=policy,
            reporter=reporter,
            out_dir=out_dir,
        )
        self._downloader = downloader
        self._origin = origin
        self._outputs = outputs or {}  # endpoint id -> the result key holding its video
        self._drivers = drivers or {}
        self._uploads = uploads
        self._billing = billing or Billing()
        self.links = FreshLinks(
            ledger=ledger, keys=keys, writes=self._writes, outputs=self._outputs
        )
        self._pool = DownloadPool(
            writes=self._writes,
            downloader=downloader,
            reporter=reporter,
            out_dir=out_dir,
            workers=settings.download_concurrency,
            on_disk_stop=self.drain,
            store=store,
            video_dir=video_dir,
            links=self.links,
            patience=settings.download_patience,
        )
        self._claims, self._reconciler = claims, reconciler
        self._nudge = asyncio.Event()  # a job of this run ended, or it drains
        self._active = 0
        self._idle = asyncio.Event()
        self._draining = False
        self._reserved = 0.0  # USD of jobs about to be submitted (--max-cost)
        self.fatal: FatalError | None = None
        self._stopped: str | None = None  # see ``stopped``
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
        self._nudge.set()
        if self._uploads is not None:
            self._uploads.drain()

    @property
    def stopped(self) -> str | None:
        """Why the run stopped early on an environment fault, or None: a failing disk (videos
        that cannot be written, see ``batchgen.run.download_pool``, or a ledger that cannot
        be), or an API that never answered (``batchgen.api.reach``)."""
        return self._stopped or self._pool.disk_stop

    @property
    def downloads_left(self) -> int:
        """Paid videos this run left to download for the next one: their file host did not
        answer for ``--download-patience`` (see ``batchgen.run.download_pool``)."""
        return self._pool.left

    @property
    def download_patience(self) -> float:
        """``--download-patience``, in the user's seconds (for messages)."""
        return self._settings.download_patience

    async def run(self, jobs: Iterable[tuple[str, JobStatus]]) -> None:
        """Drive ``jobs`` (key and status of the run's jobs, in input order) to their end.

        Only keys are kept: a job's row is read from the ledger when its turn comes, so
        100,000 waiting jobs cost little memory. Call ``count_money`` first.
        """
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
        self._writes.start()
        try:
            async with asyncio.TaskGroup() as tg:
                self._pool.start(tg)
                if self._claims is None:
                    await self._given(tg, waiting, remote, fetch)
                else:
                    await self._claimed(tg, self._claims)
                self._policy.tail = True  # nothing left to submit: the run's end is near
                self._retime()
                while self._active:
                    await self._idle.wait()
                await self._pool.close()
        except BaseExceptionGroup as group:
            fatal = [e for e in group.exceptions if isinstance(e, FatalError)]
            ledger = [e for e in group.exceptions if isinstance(e, DiskError)]
            if fatal:
                self.fatal = fatal[0]
                log.error("fatal: %s", self.fatal)
            elif ledger:  # the ledger cannot be written: stop, as nothing can be recorded
                fix = (
                    "raise `ulimit -n` (or lower --concurrency)"
                    if ledger[0].open_files
                    else "free some space (or fix the folder)"
                )
                self._stopped = (
                    f"stopped: {ledger[0]}; nothing is lost: {fix}, then run again to resume"
                )
                log.error("%s", self._stopped)
            else:
                errors = group.exceptions
                # One failed commit fails every move in it: the same error, from many jobs.
                if len(errors) == 1 or all(isinstance(e, BatchgenError) for e in errors):
                    raise errors[0] from None
                raise group from None
        finally:
            await self._writes.close()
            writes = self._writes
            log.info("ledger: %d moves in %d transactions", writes.moves, writes.transactions)
            log.info("videos: %d folder fsyncs", self._downloader.folder_fsyncs)
            if self.links.reads:
                log.info("videos: %d results read again for a fresh link", self.links.reads)

    async def _given(
        self, tg: asyncio.TaskGroup, waiting: list[str], remote: list[str], fetch: list[str]
    ) -> None:
        """Start the jobs of the run's own folder: all of them are this run's."""
        get = self._ledger.get
        for key in fetch:
            self._spawn(tg, Job(get(key)))
        for key in remote:
            row = get(key)
            self._spawn(tg, Job(row, slot=self._slots.take(row.key_id)))
        ahead = Ahead(self._uploads, waiting, get)  # their files, while they wait
        tg.create_task(ahead.run())
        try:
            for key in waiting:
                slot = await self._slots.acquire(lambda: self._draining)
                if slot is None:
                    break
                self._spawn(tg, Job(get(key), slot=slot))
                ahead.given()
        finally:
            ahead.over()

    async def _claimed(self, tg: asyncio.TaskGroup, claims: Claims) -> None:
        """Start the jobs this worker claims from a shared batch (``batchgen.run.claims``),
        until none is left that it does not hold."""
        get = self._ledger.get
        while not self._draining:
            for key, status in claims.follow():  # left by a worker that died, or by nobody
                row = get(key)
                remote = status in (S.QUEUED, S.RUNNING, S.CANCELLING)
                self._spawn(tg, Job(row, slot=self._slots.take(row.key_id) if remote else None))
            slot = await self._slots.acquire(lambda: self._draining)
            if slot is None:
                break
            claimed = claims.waiting()
            if claimed is not None:
                self._spawn(tg, Job(get(claimed), slot=slot))
                continue
            self._slots.release(slot)
            if not claims.open_elsewhere() and not self._active:
                break
            self._nudge.clear()  # look again when a job ends, or a lease may have run out
            # Not wait_for: on 3.11 it loses a cancel that comes as the nudge does (a job
            # failing sets both), and this would claim more jobs into a stopping run.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timing.heartbeat):
                    await self._nudge.wait()

    # -- driving one job ------------------------------------------------------------------

    def _spawn(self, tg: asyncio.TaskGroup, job: Job) -> None:
        self._active += 1
        self._idle.clear()
        tg.create_task(self._drive(job))

    async def _drive(self, job: Job) -> None:
        try:
            while True:
                try:
                    if not await self._step(job):
                        break
                except Unreachable as exc:  # a wrong URL or no network: submit nothing more
                    if self._stopped is None:  # every other request gives up at once too
                        self._stopped = str(exc)
                        log.error("%s", exc)
                    self.drain()
                    break
                except KeyRefused as exc:
                    if not self._keys.holds(exc.key_id):
                        raise  # not a key of this run's (a storage's, say): stop
                    if not self._refused(job, exc):
                        break
                except NotShown as exc:  # another key's job, unknown to this key
                    self._not_shown(job, exc)
                    break
                except JobChanged as exc:
                    seen, job.row = job.row, self._ledger.get(job.row.key)
                    self._account(seen, job.row)
                    if job.row.status is not S.CANCELLING:
                        log.info("%s: changed by another process; left as it is", exc)
                        break
                    # batchgen cancel asked to cancel it: follow it to its outcome.
                    log.info("%s: a cancel was asked; following it", exc)
        finally:
            self._release(job)
            if self._claims is not None:
                self._claims.done_with(job.row)
            self._active -= 1
            self._nudge.set()
            if not self._active:
                self._idle.set()

    async def _step(self, job: Job) -> bool:
        """Move ``job`` on by one state; False when this run is done with it."""
        status = job.row.status
        if status is S.SUBMITTING:  # left so by a crash: its POST may have gone out
            await self._move(
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
            # A ledger rebuilt from the manifest knows the paths of done jobs only.
            path = row.video_path or f"videos/{row.filename}"
            self._pool.put(
                Video(row.key, row.video_url, row.bytes, path, row.cost_usd, row.error_type)
            )
            return False
        else:
            return False
        return True

    async def _collect(self, job: Job) -> None:
        """Read the result of a completed job; record its video URL; queue the download."""
        row, timing = job.row, self._timing
        assert row.request_id is not None
        # It is paid for: its result is asked for a whole job timeout, however long it queued.
        deadline = timing.clock.now() + self._window(self._settings.job_timeout)
        look, job.output = job.output, None  # already read by the look that saw it done
        while look is None:
            try:
                look = await self._client(row).result(row.request_id, row.endpoint)
            except RetryableError as exc:
                if exc.error_type is not None:
                    return await self._job_failed(job, exc)
                # The job ran and is paid for: keep asking for its result, not for a new job.
                if timing.clock.now() >= deadline:
                    return await self._fail(
                        job, f"result unreadable until --job-timeout: {exc}", "timeout"
                    )
                await timing.sleep(timing.s(self._settings.max_poll_interval))
            except PermanentError as exc:
                return await self._job_failed(job, exc)
        url, size = video_of(look.output or {}, self._outputs.get(row.endpoint, "video"))
        if url is None:
            return await self._fail(
                job, f"the result holds no video URL: {str(look.output)[:300]}", "no_output"
            )
        path = f"videos/{row.filename}"
        if row.video_url is not None:  # an earlier attempt's .part holds another video
            with contextlib.suppress(OSError):  # unwritable: its download will say so
                part_path(self._out / path).unlink(missing_ok=True)
        billed = self._billing.usd(row, look.units)
        fields = {"video_url": url, "video_path": path, "bytes": size, "billed_usd": billed}
        if row.error_type != COMPLETED_AFTER_CANCEL:  # one keeps saying so: see run.follow
            fields |= {"error": None, "error_type": None}
        await self._move(job, S.DOWNLOADING, **fields)
