"""``batchgen cancel``: cancel a batch's jobs at the provider and record each answer.

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

A run may be live beside the command: every change names the state the job was read in, and
a job the run moved meanwhile (a pending job it just submitted, say) is read again and
cancelled from its new state, or reported when there is nothing left to cancel.

A ``submit_uncertain`` job has no request id to cancel: it is marked ``cancelled`` locally and
the outcome says a job may exist at the provider. ``pending`` jobs are cancelled locally only
when asked (``include_pending``), so a resumed run does not submit them. A later run does not
resubmit cancelled jobs unless told to (``run --retry-cancelled``). Each answer is kept in the
job's ``error`` and returned as a ``CancelOutcome``; the manifest is rewritten after.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from batchgen.api.providers import Connection, connect
from batchgen.errors import ApiError, FatalError, JobChanged, LedgerError, UsageError
from batchgen.folder.status import open_ledger
from batchgen.ledger.manifest import write_manifest
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.ledger.store import Ledger
from batchgen.plan.endpoint import resolve
from batchgen.plan.settings import RunSettings

S = JobStatus
AT_PROVIDER = frozenset({S.QUEUED, S.RUNNING, S.CANCELLING})
LOCAL_ONLY = frozenset({S.SUBMIT_UNCERTAIN})
CANCELLABLE = AT_PROVIDER | LOCAL_ONLY | {S.PENDING}
# Reads of a job a live run keeps moving; it moves each job a few times at most.
_TRIES = 5


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
    ledger: Ledger, keys: Iterable[str] | None = None, *, include_pending: bool = False
) -> tuple[list[JobRow], list[CancelOutcome]]:
    """The jobs to cancel, and outcomes for named keys that have nothing to cancel."""
    wanted = set(AT_PROVIDER | LOCAL_ONLY)
    if include_pending or keys is not None:  # a pending job named by key is cancelled too
        wanted.add(S.PENDING)
    if keys is None:
        return ledger.jobs(wanted), []
    jobs, skipped = [], []
    for key in dict.fromkeys(keys):
        try:
            job = ledger.get(key)
        except LedgerError:
            raise UsageError(f"no job with key {key!r} in {ledger.path.parent}") from None
        if job.status in wanted:
            jobs.append(job)
        else:
            skipped.append(_outcome(job, job.status, f"nothing to cancel: {job.status}"))
    return jobs, skipped


async def cancel_jobs(
    ledger: Ledger,
    client_for: Callable[[str], Canceller],
    jobs: list[JobRow],
    *,
    concurrency: int = 8,
) -> list[CancelOutcome]:
    """Cancel ``jobs`` (from ``select``), at most ``concurrency`` requests at a time.

    ``client_for(endpoint_id)`` gives the client of each job's endpoint. A FatalError (bad
    key, no permission) stops at once and is raised; jobs not yet answered stay as they were.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(job: JobRow) -> CancelOutcome:
        async with gate:
            return await _cancel_one(ledger, client_for(job.endpoint), job)

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def _cancel_one(ledger: Ledger, client: Canceller, job: JobRow) -> CancelOutcome:
    first = job
    for _ in range(_TRIES):
        try:
            return await _cancel_from(ledger, client, job)
        except JobChanged:
            job = ledger.get(job.key)
            if job.status not in CANCELLABLE:
                break
    return _outcome(first, job.status, f"nothing to cancel: the run moved it to {job.status}")


async def _cancel_from(ledger: Ledger, client: Canceller, job: JobRow) -> CancelOutcome:
    """Cancel ``job`` as read; JobChanged when a run moved it since."""
    if job.status is S.PENDING:
        ledger.transition(
            job.key,
            S.CANCELLED,
            expect=job.status,
            error="cancelled by user before submit",
            error_type="cancelled",
        )
        return _outcome(job, S.CANCELLED, "not submitted")
    if job.status in LOCAL_ONLY or not job.request_id:
        note = (
            "cancelled by user; its submit was never confirmed, so a job may exist at the "
            "provider that could not be cancelled (no request id)"
        )
        ledger.transition(
            job.key, S.CANCELLED, expect=job.status, error=note, error_type="cancelled"
        )
        return _outcome(job, S.CANCELLED, "no request id: cancelled here only")
    try:
        word = await client.cancel(job.request_id)
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


def connection_for(
    ledger: Ledger, overrides: dict[str, Any] | None = None, api_key_file: Path | None = None
) -> Connection:
    """Where the run of ``ledger`` sent its jobs (``run.json``'s settings), with ``overrides``
    (provider, base_url, auth_scheme, api_key_env) applied; the key comes from the environment
    or ``api_key_file``."""
    stored = _stored_settings(ledger)
    known = {f.name for f in fields(RunSettings)}
    settings = RunSettings().merged({k: v for k, v in stored.items() if k in known}, "ledger")
    return connect(settings.merged(overrides or {}, "command line"), api_key_file=api_key_file)


def _stored_settings(ledger: Ledger) -> dict[str, Any]:
    """The run settings in ``run.json``, else the options the run was given (ledger meta)."""
    try:
        info = json.loads((ledger.path.parent / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
    settings = info.get("settings") if isinstance(info, dict) else None
    if not isinstance(settings, dict):
        run = ledger.meta("run")
        settings = run.get("options") if isinstance(run, dict) else None
    return settings if isinstance(settings, dict) else {}


def cancel_folder(
    out_dir: Path,
    *,
    keys: Iterable[str] | None = None,
    include_pending: bool = False,
    overrides: dict[str, Any] | None = None,
    api_key_file: Path | None = None,
    timeout: float = 60.0,
) -> list[CancelOutcome]:
    """Cancel the jobs of ``out_dir`` (see ``select`` and ``cancel_jobs``) where its run sent
    them (see ``connection_for``), then rewrite its manifest."""
    from batchgen.api.client import QueueClient

    with open_ledger(out_dir, readonly=False) as ledger:
        jobs, skipped = select(ledger, keys, include_pending=include_pending)
        remote = any(job.status in AT_PROVIDER and job.request_id for job in jobs)
        connection = connection_for(ledger, overrides, api_key_file) if remote else None
        base_url = connection.base_url if connection else ""
        authorization = connection.authorization if connection else None

        async def main() -> list[CancelOutcome]:
            async with aiohttp.ClientSession() as session:
                clients: dict[str, Canceller] = {}

                def client_for(endpoint_id: str) -> Canceller:
                    if endpoint_id not in clients:
                        clients[endpoint_id] = QueueClient(
                            session,
                            base_url=base_url,
                            endpoint=resolve(endpoint_id),
                            authorization=authorization,
                            timeout=timeout,
                        )
                    return clients[endpoint_id]

                return await cancel_jobs(ledger, client_for, jobs)

        done = asyncio.run(main()) if jobs else []
        if done:
            write_manifest(ledger, out_dir)
    return skipped + done
