"""One run of a plan, end to end: plan -> ledger -> resume -> engine -> manifest.

``Runner.run`` syncs the plan into the folder's ledger (new keys added, known ones kept as they
are), checks finished videos are still whole, drives every job that is not finished with the
engine, rewrites the manifest now and then and at the end, and writes ``run.json``. Jobs
already submitted are polled by request id, never submitted again; jobs a crash left
``submitting`` are *uncertain* (their POST may have gone out). Failed and cancelled jobs stay
as they are unless asked (``retry_failed``, ``retry_cancelled``; see ``Runner``). Every
request is logged to ``DIR/batchgen.log`` (method, path, status, request id, time; no header,
no query).

Library code: nothing is printed; progress goes to the ``Reporter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiolimiter import AsyncLimiter

from batchgen.api.client import QueueClient
from batchgen.api.objectstore import ObjectStore
from batchgen.api.providers import IN_PROCESS, Connection
from batchgen.api.reach import Reach
from batchgen.api.sessions import api_session, file_session
from batchgen.errors import DiskError, UsageError
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.leases import Leases
from batchgen.ledger.lock import folder_lock
from batchgen.ledger.manifest import iso_utc, remove_stale_temps, write_manifest, write_run_json
from batchgen.ledger.money import Money, tally
from batchgen.ledger.opener import open_shared
from batchgen.ledger.rebuild import lost_ledger
from batchgen.ledger.shared import Worker, check_url, masked
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.ledger.store import LEDGER_NAME, Ledger
from batchgen.plan.build import Plan
from batchgen.run.billing import load_billing
from batchgen.run.claims import Claims
from batchgen.run.download import Downloader
from batchgen.run.engine import Engine
from batchgen.run.folderfiles import manifest_from, publish, writing
from batchgen.run.history import earlier_runs, plan_info, with_this_run
from batchgen.run.keys import KeyPool
from batchgen.run.lost import adopt_lost, first_started, rebuild, still_lost
from batchgen.run.outcome import RunResult, run_result
from batchgen.run.polling import PollPolicy
from batchgen.run.progress import Reporter
from batchgen.run.reconcile import reconciler
from batchgen.run.resume import (
    check_origin,
    forget_dead_emulator,
    recheck_done,
    reopen,
    to_drive,
    videos_in,
)
from batchgen.run.runlog import request_log
from batchgen.run.store_sink import recover_manifest
from batchgen.run.timing import Timing
from batchgen.run.uploads import Uploads, check_files
from batchgen.version import __version__

S = JobStatus
log = logging.getLogger("batchgen.run")
LOG_NAME = "batchgen.log"


def limiter_for(rate: float) -> AsyncLimiter:
    """At most ``rate`` requests per second, with bursts of a tenth of a second's worth."""
    burst = max(1.0, rate / 10)
    return AsyncLimiter(burst, burst / rate)


def poll_policy(plan: Plan, timing: Timing) -> PollPolicy:
    settings = plan.settings
    seed = settings.expect_latency or plan.typical_latency_s
    high = timing.s(settings.max_poll_interval)
    low = min(timing.s(timing.min_poll_interval), high)
    return PollPolicy(None if seed is None else timing.s(seed), min_interval=low, max_interval=high)


class Runner:
    """Runs ``plan`` against ``connection``. ``drain`` and ``abort`` may come from signals.

    A failed job whose video is paid for and whose download failed (file host down, disk full)
    is downloaded again from its recorded URL by every run. ``retry_failed`` puts the folder's
    other retryable failed jobs back in line (``batchgen.run.resume.RETRYABLE``: transient,
    timed out, download), and with ``retry_failed="all"`` the refused ones too (validation,
    content policy): one whose video was refused (too big...) is downloaded again, any other
    (the file host said the video is gone, the job itself failed) is submitted anew.
    ``retry_cancelled`` submits cancelled jobs anew. A job submitted anew gets a fresh ``--max-
    attempts`` budget (``retry_from``), while ``attempts`` keeps counting every submit, and
    every request id it was ever given stays in the ledger's history (``Ledger.requests``).
    """

    def __init__(
        self,
        plan: Plan,
        connection: Connection,
        *,
        timing: Timing | None = None,
        reporter: Reporter | None = None,
        resume: dict[str, Any] | None = None,
        retry_failed: bool | str = False,
        retry_cancelled: bool = False,
        ledger: str | None = None,
        batch: str | None = None,
    ) -> None:
        if plan.settings.max_cost is not None and plan.estimated_cost is None:
            raise UsageError(
                "--max-cost needs a known price per job, and this endpoint's "
                "price is unknown (give an --endpoint-spec with a price)"
            )
        check_files(plan.jobs, connection.storage)  # files a data: URI cannot carry
        self.plan, self.connection = plan, connection
        store = plan.settings.store
        self.store = None if store is None else ObjectStore.open(store)  # videos go there
        self.timing = timing or Timing()
        self.reporter = reporter or Reporter()
        self._resume = resume
        self._retry = {S.FAILED} if retry_failed else set()
        self._refused_too = retry_failed == "all"
        if retry_cancelled:
            self._retry.add(S.CANCELLED)
        # A shared ledger (PostgreSQL URL) and the batch's name there: this run is one worker.
        self._shared = None if ledger is None else check_url(ledger)
        self._batch = batch or Path(plan.output_dir).name
        self._worker: Worker | None = None
        self._first_started: str | None = None  # the folder's first run, from its run.json
        self._earlier: list[dict[str, Any]] = []  # the folder's runs before this one
        self._engine: Engine | None = None
        self._task: asyncio.Task[None] | None = None
        self._aborted = False
        self._drained = False
        self._pricing: dict[str, Any] | None = None  # where billed costs are priced from

    def drain(self) -> None:
        """Stop submitting; jobs in flight finish and download (first Ctrl-C)."""
        self._drained = True
        log.warning("stopping: no new submits; jobs in flight finish and download")
        if self._engine is not None:
            self._engine.drain()

    def abort(self) -> None:
        """Stop now; the ledger stays resumable (second Ctrl-C, SIGTERM)."""
        self._aborted = True
        log.warning("stopping now; the folder can be resumed")
        if self._task is not None:
            self._task.cancel()

    async def run(self) -> RunResult:
        out = Path(self.plan.output_dir)
        with contextlib.ExitStack() as stack:
            stack.enter_context(folder_lock(out))
            if self.store is not None:  # refused here (exit 2) before anything is sent
                await asyncio.to_thread(self.store.probe)
                await asyncio.to_thread(self.store.remove_stale, "videos")
                if self._shared is None:  # a lost folder: its ledger comes back from the store
                    await asyncio.to_thread(recover_manifest, self.store, out, LEDGER_NAME)
            self._first_started = first_started(out)
            self._earlier = earlier_runs(out)
            records, ledger = self._open(stack, out)
            stack.enter_context(request_log(out / LOG_NAME))
            started = time.time()
            if self._shared is None:  # a shared batch's other workers may hold theirs alive
                forget_dead_emulator(ledger, self.connection, self.reporter)
            self._check_origin(ledger)
            remove_stale_temps(out)  # left by a run killed while writing run.json or a manifest
            orphaned = self._prepare(ledger, rebuilding=records is not None)
            if records is not None:
                orphaned = rebuild(ledger, self.plan, records, self.reporter)
                self._check_origin(ledger)  # the rebuilt jobs' keys
                settings = self.plan.settings
                await adopt_lost(
                    ledger,
                    self._first_started,
                    self.connection,
                    settings,
                    self.timing,
                    self.reporter,
                )
            rows = recheck_done(
                ledger, to_drive(ledger), out, self.reporter, self.store, video_dir=self._place
            )
            rows = reopen(ledger, rows, self._retry, self.reporter, refused_too=self._refused_too)
            money = tally(ledger.iter_jobs())
            self.reporter.money(money.committed, money.spent)
            self._report_start(rows)
            # Keys and statuses only from here on: rows hold payloads (100k jobs: ~100 MB).
            todo = [(row.key, row.status) for row in rows if not row.status.final]
            total = len(rows)
            del rows
            with writing(out, "run.json"):
                write_run_json(out, self._info(started, None))
            if self._shared is None and not (out / "manifest.jsonl").exists():
                # Before the first submit: a ledger lost seconds later is rebuilt from it
                # (and its jobs found in the request log), never started afresh.
                with writing(out, "manifest.csv"):
                    write_manifest(ledger, out)
            publish(self.store, out, *self._own("run.json"))
            log.info("run started: %d jobs, %s", total, self.connection.public())
            engine = await self._drive(ledger, todo, out, money)
            # Other processes (batchgen cancel) may have moved jobs this run never touched.
            engine.count_money(tally(ledger.iter_jobs()))
            self.reporter.recount(Counter(row.status for row in to_drive(ledger)))
            result = self._result(ledger, engine, orphaned)
            try:
                with writing(out, "manifest.csv"):
                    write_manifest(ledger, out)
                with writing(out, "run.json"):
                    write_run_json(out, self._info(started, result))
                publish(self.store, out, "manifest.csv", "manifest.jsonl", *self._own("run.json"))
            except DiskError:
                if engine.stopped is None:
                    raise
                # The disk is full: the ledger holds the state; the files follow next time.
                log.warning("manifest and run.json not written: the disk is still full")
            log.info("run ended: %s (%s)", result.outcome, result.message)
        self.reporter.close()
        return result

    # -- steps --------------------------------------------------------------------------------

    def _check_origin(self, ledger: LedgerStore) -> None:
        """Refuse jobs in flight of another host; say which are followed with another key."""
        foreign = check_origin(ledger, self.connection, self.plan.output_dir)
        if foreign is not None:
            self.reporter.note(foreign)
            log.warning("%s", foreign)

    def _open(
        self, stack: contextlib.ExitStack, out: Path
    ) -> tuple[list[dict[str, Any]] | None, LedgerStore]:
        """The ledger this run works on, and the manifest records to rebuild a lost one from.

        The folder's own (SQLite), or a shared batch this run joins as one worker: it leaves
        it (its claims given back) however the run ends, except when killed.
        """
        if self._shared is None:
            records = lost_ledger(out, LEDGER_NAME)  # before the ledger is made anew
            ledger = stack.enter_context(Ledger.in_folder(out))
            return still_lost(ledger, out, records), ledger
        self._worker = Worker.here(str(out))
        shared = stack.enter_context(
            open_shared(
                self._shared,
                self._batch,
                worker=self._worker,
                lease=self.timing.lease,
                max_cost=self.plan.settings.max_cost,  # held for the whole batch
            )
        )
        shared.join()
        stack.callback(shared.leave)
        return None, shared

    def _prepare(self, ledger: LedgerStore, *, rebuilding: bool = False) -> list[str]:
        plan = self.plan
        ledger.set_meta(
            "plan",
            {
                "endpoint": plan.endpoint.id,
                "endpoints": list(plan.endpoints) or [plan.endpoint.id],
                "endpoint_spec_digest": plan.endpoint.digest,
                "input_path": plan.input_path,
                "input_sha256": plan.input_sha256,
                "extra_columns": plan.extra_columns,
                "param_columns": plan.params,
                "filename_template": plan.filename_template,
            },
        )
        if self._resume is not None:
            ledger.set_meta("run", self._resume)
        store = self.store
        if self._shared is None:  # for report, export (a shared batch's jobs say, each)
            ledger.set_meta("store", None if store is None else store.url)
        out = Path(plan.output_dir)
        # Rebuilding a lost ledger, the videos on disk are its jobs' own, by their names.
        occupied = () if rebuilding else videos_in(out / "videos", store)
        report = ledger.sync(plan.jobs, plan.endpoint.id, occupied=occupied)
        if report.orphaned:
            self.reporter.note(
                f"{len(report.orphaned)} job(s) in {plan.output_dir} are no longer in the "
                "input: those the provider holds are followed to their end, the rest left as "
                "they are"
            )
        return report.orphaned

    @property
    def _place(self) -> str | None:
        """Where this worker of a shared batch puts videos, as its jobs record it (their
        ``video_dir``): its store's URL, else ``host:/folder``. None for a folder's run."""
        if self._worker is None:
            return None
        return self._worker.video_dir if self.store is None else self.store.url

    def _own(self, *names: str) -> tuple[str, ...]:
        """This run's own files to copy to its store: none for a worker of a shared batch,
        whose store other workers share (its folder keeps them)."""
        return names if self._shared is None else ()

    def _report_start(self, rows: list[JobRow]) -> None:
        plan, timing = self.plan, self.timing
        latency = plan.settings.expect_latency or plan.typical_latency_s
        self.reporter.start(
            Counter(row.status for row in rows),
            latency=None if latency is None else timing.s(latency),
            concurrency=plan.settings.concurrency,
        )

    async def _drive(
        self, ledger: LedgerStore, todo: list[tuple[str, JobStatus]], out: Path, money: Money
    ) -> Engine:
        plan, timing = self.plan, self.timing
        claims = Claims(ledger) if isinstance(ledger, Leases) else None
        network = self.connection.network
        async with api_session(network) as api, file_session(network) as files:
            specs = plan.endpoints or {plan.endpoint.id: plan.endpoint}
            prices = {i: ep.price for i, ep in specs.items()}
            conn = self.connection
            billing = await load_billing(
                api, conn, prices, out, timing.request_timeout, timing.wall
            )
            self._pricing = billing.public()
            client = QueueClient(
                api,
                base_url=self.connection.base_url,
                endpoint=plan.endpoint,
                authorization=self.connection.authorization,
                limiter=limiter_for(plan.settings.rate),
                backoff=timing.backoff.scaled(timing.scale),
                timeout=timing.request_timeout,
                sleep=timing.sleep,
                follow=self.connection.follow,
                notify=self.reporter.note,
                reach=Reach(
                    give_up_after=timing.unreachable_after,
                    notify=self.reporter.note,
                    clock=timing.clock.now,
                    route=network.route,
                ),
                clock=timing.clock,
            )
            downloader = Downloader(
                files,
                backoff=timing.download_backoff.scaled(timing.scale),
                patience=timing.s(plan.settings.download_patience),
                max_bytes=plan.settings.max_file_bytes,
                read_timeout=timing.download_read_timeout,
                sleep=timing.sleep,
            )
            engine = self._engine = Engine(
                ledger=ledger,
                keys=KeyPool.of(self.connection, client, plan.settings.concurrency),
                downloader=downloader,
                settings=plan.settings,
                timing=timing,
                policy=poll_policy(plan, timing),
                reporter=self.reporter,
                out_dir=out,
                origin=self.connection.origin,
                outputs={i: ep.output for i, ep in plan.endpoints.items()},
                drivers={i: ep.price.drivers for i, ep in plan.endpoints.items()},
                uploads=Uploads.open(
                    ledger, self.connection.storage, api, timing, route=network.route
                ),
                store=self.store,
                claims=claims,
                video_dir=self._place,
                billing=billing,
                reconciler=reconciler(
                    self.connection, plan.settings, api, ledger, timing, self.reporter
                ),
            )
            if self._drained:
                engine.drain()
            if self._aborted:  # a signal came while preparing
                return engine
            stop = asyncio.Event()
            ticker = asyncio.create_task(self._manifest_ticker(ledger.reader, out, stop))
            clock = asyncio.create_task(self._clock_ticker(stop))
            timing.clock.notify = self.reporter.note  # a pause is told once, as it ends
            watch = asyncio.create_task(timing.clock.watch(stop))
            beat = None if claims is None else claims.beat(timing.heartbeat, stop)
            beating = None if beat is None else asyncio.create_task(beat)
            engine.count_money(money)  # read at the start; nothing moved a job since
            self._task = asyncio.create_task(engine.run(todo))
            try:
                await self._task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we are cancelled ourselves, not by abort()
                log.info("run aborted: %r", engine)
            finally:
                stop.set()
                await ticker
                await clock
                await watch
                if beating is not None:
                    await beating
        return engine

    async def _clock_ticker(self, stop: asyncio.Event) -> None:
        """Let the progress display tick every second, even when no job moves."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.timing.progress_every)
            self.reporter.tick()

    async def _manifest_ticker(
        self, reader: Callable[[], LedgerStore], out: Path, stop: asyncio.Event
    ) -> None:
        """Rewrite the manifest now and then, in a thread, never more than ~10% of the time.

        Stopped by ``stop``, not by cancelling: a write under way must end before the final
        one starts, or its older snapshot could replace the final manifest.
        """
        wait = self.timing.manifest_every
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                return
            try:
                took = await asyncio.to_thread(manifest_from, reader, out, self.store)
            except (OSError, DiskError) as exc:  # disk full, say: the final write will tell
                log.warning("cannot write the manifest: %s", exc)
                took = 0.0
            wait = max(self.timing.manifest_every, 9 * took)

    def _result(self, ledger: LedgerStore, engine: Engine, orphaned: list[str]) -> RunResult:
        stopped = self._aborted or self._drained
        return run_result(
            ledger,
            engine,
            orphaned,
            self.plan.output_dir,
            stopped,
            self._aborted,
            in_process=self.connection.origin == IN_PROCESS,
        )

    def _info(self, started: float, result: RunResult | None) -> dict[str, Any]:
        plan = self.plan
        ended = None if result is None else iso_utc(time.time())
        outcome = None if result is None else result.outcome
        return {
            "batchgen_version": __version__,
            "started_at": iso_utc(started),
            # The folder's first run (from the run.json before): no job of it is older.
            "first_started_at": self._first_started or iso_utc(started),
            "finished_at": ended,
            "outcome": outcome,
            "message": None if result is None else result.message,
            "runs": with_this_run(self._earlier, iso_utc(started), ended, outcome),
            **plan_info(plan),
            "pricing": self._pricing,  # where billed_usd's unit prices came from
            "connection": self.connection.public(),
            "ledger": None if self._shared is None else masked(self._shared),
            "batch": None if self._shared is None else self._batch,
            "worker": None if self._worker is None else self._worker.id,
            "settings": plan.settings.public(),
            "counts": None if result is None else result.counts,
        }
