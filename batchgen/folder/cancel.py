"""``batchgen cancel``: stop a batch: cancel its jobs at the provider and record each answer.

Jobs in flight (``queued``, ``running``, and ``cancelling`` from an earlier attempt) get a
``PUT .../requests/{id}/cancel``. What the provider answers decides the job's state:

- ``CANCELLATION_REQUESTED`` (2xx): a queued job is removed and never runs: ``cancelled``. A
  running job may still finish, and be billed, if its runner ignores the signal: it is left
  ``cancelling``, and a run (the live one, or the next) follows it until the provider says how
  it ended: ``cancelled``, or completed after all, when its paid video is collected.
- ``ALREADY_COMPLETED`` (400): left as it is; the next run fetches its result.
- 404 (unknown id): ``cancelled``, with the error "unknown to provider".
- anything else: ``cancelling`` (asked, answer unclear); the next run asks again.
- an error (no answer, after retries): left as it is, and reported.

``pending`` jobs are marked ``cancelled`` here (unless ``include_pending`` is off: ``cancel
--in-flight``), so neither a live run nor a resumed one submits them: the run reads a job's
row again just before its POST and leaves it alone when another process moved it. A job
caught ``submitting`` (its POST on the way) is read again until the run records its request
id, and then cancelled at the provider; one still ``submitting`` after ``settle`` seconds is
cancelled here only, like a ``submit_uncertain`` job, which has no request id to cancel:
the outcome says a job may exist at the provider.

A run may be live beside the command: every change names the state the job was read in, and
a job the run moved meanwhile (a pending job it just submitted, say) is read again and
cancelled from its new state, or reported when there is nothing left to cancel. A later run
does not resubmit cancelled jobs unless told to (``run --retry-cancelled``). Each answer is
kept in the job's ``error`` and returned as a ``CancelOutcome``; ``summary`` counts them by
answer. The manifest is rewritten after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Protocol

from batchgen.api.network import Network
from batchgen.api.providers import IN_PROCESS, Connection, connect
from batchgen.api.sessions import api_session
from batchgen.errors import ApiError, FatalError, JobChanged, KeyRefused, UsageError
from batchgen.folder.choose import check_rows, resolve_keys
from batchgen.folder.status import open_ledger
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.manifest import write_manifest
from batchgen.ledger.shared import SharedBatch
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.plan.endpoint import resolve
from batchgen.plan.settings import RunSettings

S = JobStatus
AT_PROVIDER = frozenset({S.QUEUED, S.RUNNING, S.CANCELLING})
LOCAL_ONLY = frozenset({S.SUBMIT_UNCERTAIN})
IN_FLIGHT = AT_PROVIDER | LOCAL_ONLY | {S.SUBMITTING}
CANCELLABLE = IN_FLIGHT | {S.PENDING}
# Reads of a job a live run keeps moving; it moves each job a few times at most.
_TRIES = 5
SETTLE_S = 10.0  # how long a job caught submitting may take to get its request id
_LOOK_S = 0.05  # between reads of such a job
log = logging.getLogger("batchgen.cancel")
NO_REQUEST_ID = "no request id: cancelled here only"
# A job of another key that the provider refuses to show to this key (a key rotated since).
NOT_SHOWN = "not shown to this key"
# A job in flight in a run's own emulator (``run --mock``), gone with that run.
GONE_WITH_EMULATOR = "gone with its emulator"


class Canceller(Protocol):
    """What cancel needs of a queue client (``batchgen.api.client.QueueClient`` is one)."""

    async def cancel(self, request_id: str) -> str: ...


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What happened to one job: its state before and after, and the provider's answer."""

    key: str
    row: int
    request_id: str | None
    before: str
    after: str
    answer: str
    ok: bool = True  # False when the cancel could not be sent or answered


def select(
    ledger: LedgerStore,
    keys: Iterable[str] | None = None,
    *,
    rows: set[int] | None = None,
    include_pending: bool = True,
) -> tuple[list[JobRow], list[CancelOutcome]]:
    """The jobs to cancel, and outcomes for named jobs that have nothing to cancel.

    Without ``keys`` or ``rows``: every job not yet at an end (only those in flight when
    ``include_pending`` is off). ``keys`` are key prefixes (see ``choose.resolve_keys``),
    ``rows`` input rows (the jobs of rows still in the input); named jobs are cancelled
    whatever their state, pending included, and the others reported as they are.
    """
    wanted = set(CANCELLABLE if include_pending or keys or rows else IN_FLIGHT)
    if keys is None and rows is None:
        return ledger.jobs(wanted), []
    everything = ledger.jobs()
    named = set(resolve_keys((job.key for job in everything), keys or ()))
    if rows is not None:
        check_rows(rows, {job.row for job in everything if job.in_input})
        named.update(job.key for job in everything if job.in_input and job.row in rows)
    jobs, skipped = [], []
    for job in everything:
        if job.key not in named:
            continue
        if job.status in wanted:
            jobs.append(job)
        else:
            skipped.append(_outcome(job, job.status, f"nothing to cancel: {job.status}"))
    return jobs, skipped


async def cancel_jobs(
    ledger: LedgerStore,
    client_for: Callable[[JobRow], Canceller],
    jobs: list[JobRow],
    *,
    concurrency: int = 8,
    settle: float = SETTLE_S,
    pause: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> list[CancelOutcome]:
    """Cancel ``jobs`` (from ``select``), at most ``concurrency`` requests at a time.

    ``client_for(job)`` gives the client of each job's endpoint and key. A FatalError (bad
    key, no permission) stops at once and is raised; jobs not yet answered stay as they were.
    A job caught ``submitting`` is read again every ``pause`` until a run records its request
    id, for ``settle`` seconds at most.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(job: JobRow) -> CancelOutcome:
        if job.status is S.SUBMITTING:
            job = await _settled(ledger, job, settle, pause)
        async with gate:
            return await _cancel_one(ledger, lambda: client_for(job), job)

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def _settled(
    ledger: LedgerStore, job: JobRow, settle: float, pause: Callable[[float], Awaitable[object]]
) -> JobRow:
    """``job`` read again until it leaves ``submitting``, or ``settle`` seconds of pauses."""
    waited = 0.0
    while job.status is S.SUBMITTING and waited < settle:
        await pause(_LOOK_S)
        waited += _LOOK_S
        job = ledger.get(job.key)
    return job


async def _cancel_one(
    ledger: LedgerStore, client: Callable[[], Canceller], job: JobRow
) -> CancelOutcome:
    first = job
    for _ in range(_TRIES):
        try:
            outcome = await _cancel_from(ledger, client, job)
            return replace(outcome, before=first.status.value)
        except JobChanged:
            job = ledger.get(job.key)
            if job.status not in CANCELLABLE:
                break
    return _outcome(first, job.status, f"nothing to cancel: the run moved it to {job.status}")


async def _cancel_from(
    ledger: LedgerStore, client: Callable[[], Canceller], job: JobRow
) -> CancelOutcome:
    """Cancel ``job`` as read; JobChanged when a run moved it since. ``client()`` is asked
    for only when a request is sent."""
    if job.status is S.PENDING:
        return _here(ledger, job, "cancelled by user before submit", "not submitted")
    if job.status is S.SUBMITTING:  # its POST has gone on for ``settle``: never confirmed
        ledger.transition(job.key, S.SUBMIT_UNCERTAIN, expect=job.status)
        job = ledger.get(job.key)
    if job.origin == IN_PROCESS:  # its emulator ended with the run that served it
        said = "cancelled by user; the emulator it ran in ended with its run (free)"
        return _here(ledger, job, said, GONE_WITH_EMULATOR)
    if job.status in LOCAL_ONLY or not job.request_id:
        note = (
            "cancelled by user; its submit was never confirmed, so a job may exist at the "
            "provider that could not be cancelled (no request id)"
        )
        return _here(ledger, job, note, NO_REQUEST_ID)
    try:
        word = await client().cancel(job.request_id)
    except KeyRefused as exc:
        if job.key_id is None or exc.key_id == job.key_id:
            raise  # the job's own key: refused for every job
        # Another key's job (a key rotated since): this one stays, for a run with its key.
        log.info("job %s: not cancelled, not shown to this key: %s", job.key, exc)
        return _outcome(job, job.status, NOT_SHOWN, ok=False)
    except FatalError:
        raise
    except ApiError as exc:
        return _outcome(job, job.status, f"error: {exc}", ok=False)
    if word == "CANCELLATION_REQUESTED" and job.status is S.RUNNING:
        error = "cancel asked while running; a run follows it until the provider says it ended"
        after = S.CANCELLING
    elif word == "CANCELLATION_REQUESTED":
        error, after = "cancelled by user", S.CANCELLED
    elif word == "NOT_FOUND":
        error, after = "cancelled: unknown to provider", S.CANCELLED
    elif word == "ALREADY_COMPLETED":
        # Nothing to stop: the run fetches the result (COMPLETED if a cancel was pending).
        after = S.COMPLETED if job.status is S.CANCELLING else job.status
        if after is not job.status:
            ledger.transition(job.key, after, expect=job.status)
        return _outcome(job, after, word)
    else:
        error, after = f"cancel asked, provider answered {word}", S.CANCELLING
    ledger.transition(job.key, after, expect=job.status, error=error, error_type="cancelled")
    return _outcome(job, after, word)


def _here(ledger: LedgerStore, job: JobRow, error: str, answer: str) -> CancelOutcome:
    """``job`` cancelled in the ledger alone: there is nothing to ask a provider."""
    ledger.transition(job.key, S.CANCELLED, expect=job.status, error=error, error_type="cancelled")
    return _outcome(job, S.CANCELLED, answer)


def _outcome(job: JobRow, after: JobStatus, answer: str, *, ok: bool = True) -> CancelOutcome:
    return CancelOutcome(
        key=job.key,
        row=job.row,
        request_id=job.request_id,
        before=job.status.value,
        after=after.value,
        answer=answer,
        ok=ok,
    )


def summary(outcomes: Iterable[CancelOutcome]) -> list[tuple[str, int]]:
    """How many jobs got each kind of answer, most first: ``[("cancelled at the provider",
    4), ...]``."""
    counts = Counter(_kind(o) for o in outcomes)
    return sorted(counts.items(), key=lambda item: -item[1])


def _kind(o: CancelOutcome) -> str:
    if not o.ok and o.answer == NOT_SHOWN:
        return (
            "not cancelled: submitted with another key, which the provider will not show "
            "them to this key (left as they were; cancel them with the key that sent them)"
        )
    if not o.ok:
        return "not cancelled: no answer from the provider (left as they were; try again)"
    if o.answer.startswith("nothing to cancel"):
        return f"nothing to cancel: {o.after}"
    if o.answer == GONE_WITH_EMULATOR:
        return "cancelled: they were in the emulator of a run that has ended (nothing to stop)"
    if o.answer == NO_REQUEST_ID:
        return (
            "cancelled here only: their submit was never confirmed, so a job may exist at "
            "the provider"
        )
    if o.before == S.PENDING and o.after == S.CANCELLED:
        return "cancelled before submit"
    if o.answer == "CANCELLATION_REQUESTED":
        if o.after == S.CANCELLED:
            return "cancelled at the provider"
        return (
            "stopping at the provider (they were running): left cancelling, a run follows "
            "them until the provider says how they ended"
        )
    if o.answer == "NOT_FOUND":
        return "unknown to the provider: cancelled"
    if o.answer == "ALREADY_COMPLETED":
        return "already completed at the provider: a run collects their videos"
    return f"provider answered {o.answer}: left cancelling, the next run asks again"


def settings_for(
    ledger: LedgerStore, overrides: dict[str, Any] | None = None, folder: Path | None = None
) -> RunSettings:
    """How the run of ``ledger`` reached its provider (``folder``'s ``run.json`` settings,
    else the options the ledger keeps), with ``overrides`` (provider, base_url, auth_scheme,
    api_key_env, ca_bundle) applied."""
    stored = _stored_settings(ledger, folder)
    known = {f.name for f in fields(RunSettings)}
    settings = RunSettings().merged({k: v for k, v in stored.items() if k in known}, "ledger")
    return settings.merged(overrides or {}, "command line")


def connection_for(settings: RunSettings, api_key_file: Path | None = None) -> Connection:
    """Where the run of ``settings`` sent its jobs; the key comes from the environment or
    ``api_key_file``, a pool's keys (``api_key_env`` A,B) from the environment."""
    return connect(settings, api_key_file=api_key_file)


def _stored_settings(ledger: LedgerStore, folder: Path | None) -> dict[str, Any]:
    """The run settings in ``run.json``, else the options the run was given (ledger meta)."""
    info = None
    if folder is not None:
        with contextlib.suppress(OSError, ValueError):
            info = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    settings = info.get("settings") if isinstance(info, dict) else None
    if not isinstance(settings, dict):
        run = ledger.meta("run")
        settings = run.get("options") if isinstance(run, dict) else None
    return settings if isinstance(settings, dict) else {}


def _network(settings: RunSettings) -> Network:
    """The network of ``settings``; without its CA bundle when that cannot be read (no job
    needs the provider yet: one that comes to need it meets the same refusal in connect)."""
    try:
        return Network.from_env(ca_bundle=settings.ca_bundle)
    except UsageError:
        return Network.from_env()


def cancel_folder(
    out_dir: Path | None,
    *,
    shared: SharedBatch | None = None,
    keys: Iterable[str] | None = None,
    rows: set[int] | None = None,
    include_pending: bool = True,
    overrides: dict[str, Any] | None = None,
    api_key_file: Path | None = None,
    timeout: float = 60.0,
) -> list[CancelOutcome]:
    """Cancel the jobs of ``out_dir``, or of the ``shared`` batch (see ``select`` and
    ``cancel_jobs``), where its runs sent them (see ``connection_for``), each with the key
    that submitted it when the connection holds it (else its first key), then rewrite the
    folder's manifest."""
    from batchgen.api.client import QueueClient

    with open_ledger(out_dir, readonly=False, shared=shared) as ledger:
        jobs, skipped = select(ledger, keys, rows=rows, include_pending=include_pending)
        settings = settings_for(ledger, overrides, out_dir)
        # Known at once when a job needs a request (a missing key stops before anything is
        # touched); else only if a live run submits a job meanwhile.
        found: list[Connection] = []
        if any(job.status in AT_PROVIDER | {S.SUBMITTING} for job in jobs):
            found.append(connection_for(settings, api_key_file))
        network = found[0].network if found else _network(settings)

        async def main() -> list[CancelOutcome]:
            async with api_session(network) as session:
                clients: dict[tuple[str, str | None], Canceller] = {}

                def client_for(job: JobRow) -> Canceller:
                    if not found:
                        found.append(connection_for(settings, api_key_file))
                    key = found[0].key_for(job.key_id)
                    which = (job.endpoint, None if key is None else key.key_id)
                    if which not in clients:
                        clients[which] = QueueClient(
                            session,
                            base_url=found[0].base_url,
                            endpoint=resolve(job.endpoint),
                            authorization=found[0].header(key),
                            timeout=timeout,
                            key_id=None if key is None else key.key_id,
                        )
                    return clients[which]

                return await cancel_jobs(ledger, client_for, jobs)

        done = asyncio.run(main()) if jobs else []
        if done and shared is None and out_dir is not None:
            write_manifest(ledger, out_dir)
    return skipped + done
