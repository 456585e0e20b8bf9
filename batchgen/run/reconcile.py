"""Uncertain submits resolved from fal's request log instead of guessed.

A submit whose answer was lost (``submit_uncertain``) may or may not have made a job. Before
it is sent again, ``Reconciler.resolve`` asks the provider's request log
(``batchgen.api.requestlog``) for requests to the job's endpoint since just before the lost
POST (the ledger's ``submitted_at``, recorded as it leaves) whose input is the job's payload:

- found, and held by no other job of the ledger: that request id is the job's (adopted: no
  second submit, no second payment, not flagged);
- not found once ``settle`` (``Timing.reconcile_settle``) has passed since the POST, for the
  log to catch up: the job is sent again, not flagged ``possibly_duplicate`` (flagged when the
  log read is another key's than the one that sent it: a key rotated since, whose account may
  not see it);
- the log unreachable, or the key without the scope to read it: sent again flagged, as without
  a log; said once (a progress note and the log), and not asked again in this run.

Jobs with the same payload (repeats) are resolved one at a time, so two never adopt one id.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from batchgen.api.providers import Connection
from batchgen.api.requestlog import LogUnavailable, RequestLog, canonical
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.places import get_at, put_at
from batchgen.plan.settings import RunSettings
from batchgen.run.progress import Reporter
from batchgen.run.timing import Timing

log = logging.getLogger("batchgen.run")
# Real seconds the log's window opens before the POST: clocks of two hosts differ a little.
SKEW = 60.0
_FILE = "\u0000a local file"  # what a file place holds when jobs are compared without their files


class Reconciler:
    """Resolves uncertain submits of one run against the request logs of its keys."""

    __slots__ = ("_down", "_ledger", "_lock", "_logs", "_reporter", "_timing")

    def __init__(
        self,
        logs: Mapping[str, RequestLog],
        *,
        ledger: LedgerStore,
        timing: Timing,
        reporter: Reporter,
    ) -> None:
        if not logs:
            raise ValueError("a reconciler needs a request log")
        self._logs = dict(logs)  # by key id ("" for a run without a key pool)
        self._ledger = ledger
        self._timing = timing
        self._reporter = reporter
        self._lock = asyncio.Lock()
        self._down: str | None = None  # why the log cannot be read, once it could not

    def __repr__(self) -> str:
        return f"<Reconciler {len(self._logs)} log(s){' down' if self._down else ''}>"

    async def resolve(self, row: JobRow, payload: dict[str, Any]) -> str | bool:
        """For an uncertain ``row`` about to be sent with ``payload``: the request id to adopt,
        else whether a new submit must be flagged ``possibly_duplicate``."""
        sent = row.submitted_at
        if row.status is not JobStatus.SUBMIT_UNCERTAIN:
            return row.possibly_duplicate
        if self._down is not None or sent is None:
            return True
        timing = self._timing
        wait = sent + timing.s(timing.reconcile_settle) - timing.wall()
        if wait > 0:
            await timing.sleep(wait)
        # The log of the key that sent it; a key rotated since reads with another key's, whose
        # account may not be the job's: there, not finding it proves nothing (sent flagged).
        own = row.key_id is None or row.key_id in self._logs or "" in self._logs
        reader = self._logs.get(row.key_id or "") or next(iter(self._logs.values()))
        async with self._lock:
            try:
                found = await reader.find(row.endpoint, payload, sent - SKEW, timing.wall() + SKEW)
            except LogUnavailable as exc:
                self._unavailable(str(exc))
                return True
            if found:
                # Another job's request, or an earlier attempt of this one (a request that
                # ended: the lost POST's own id was never recorded), is not the lost submit's.
                held = {
                    r.request_id
                    for r in self._ledger.iter_jobs()
                    if r.request_id is not None and r.key != row.key
                }
                held.update(self._ledger.requests(row.key))
                for request_id in found:
                    if request_id not in held:
                        log.info("%s: its lost submit made %s: adopted", row.key, request_id)
                        return request_id
        if not own:
            log.info(
                "%s: another key's log shows no job for its lost submit: sent flagged", row.key
            )
            return True
        log.info("%s: the request log shows no job for its lost submit: sent again", row.key)
        return row.possibly_duplicate

    def _unavailable(self, why: str) -> None:
        if self._down is None:
            self._down = why
            message = f"{why}; uncertain submits are sent again, flagged possibly_duplicate"
            self._reporter.note(message)
            log.warning("%s", message)


def reconciler(
    connection: Connection,
    settings: RunSettings,
    session: aiohttp.ClientSession,
    ledger: LedgerStore,
    timing: Timing,
    reporter: Reporter,
) -> Reconciler | None:
    """The run's reconciler: None with ``--reconcile off`` or a provider without a request
    log (quickrouter, a proxy). Each key reads its own account's log."""
    logs = request_logs(connection, settings, session, timing)
    if not logs:
        return None
    return Reconciler(logs, ledger=ledger, timing=timing, reporter=reporter)


def request_logs(
    connection: Connection, settings: RunSettings, session: aiohttp.ClientSession, timing: Timing
) -> dict[str, RequestLog]:
    """The request log of each key of ``connection`` (by key id, "" without a pool); none
    with ``--reconcile off`` or a provider without one."""
    if settings.reconcile == "off" or connection.request_log is None:
        return {}
    keys = connection.pool or (None,)
    return {
        ("" if key is None else key.key_id): RequestLog(
            session,
            base_url=connection.request_log,
            authorization=connection.header(key),
            backoff=timing.backoff.scaled(timing.scale),
            timeout=timing.request_timeout,
            sleep=timing.sleep,
        )
        for key in keys
    }


async def adopt_after_loss(
    ledger: LedgerStore,
    logs: Mapping[str, RequestLog],
    *,
    origin: str,
    since: float,
    timing: Timing,
    reporter: Reporter,
) -> int:
    """After a ledger rebuilt from the manifest: its jobs not done (``LATER_SUBMIT``) may have
    been submitted after the manifest's last write (``since``, epoch seconds). Each request
    the log shows to their endpoints since then whose input is such a job's payload, that no
    job holds and that was sent after the job's last known submit, is that job's (the newest
    first): adopted (followed by its request id, not sent again). A job with local files
    sent their uploaded URLs, not the planned ``sha256:`` references: it is matched with its
    file places left out, unless other jobs match the same way (they differ only by their
    files, which the log cannot tell apart): those are left as they are, saying so.
    Returns how many were adopted; a log that cannot be read adopts none, saying so."""
    candidates = list(ledger.jobs(LATER_SUBMIT))
    if not candidates or not logs:
        return 0
    held = {row.request_id for row in ledger.iter_jobs() if row.request_id is not None}
    waiting: dict[tuple[str, tuple[str, ...], str], list[JobRow]] = {}
    for row in candidates:
        places = tuple(sorted(row.files))
        waiting.setdefault((row.endpoint, places, _masked(row.payload, places)), []).append(row)
    alike = [k for k, rows in waiting.items() if k[1] and len(rows) > 1]
    for key in alike:  # jobs told apart only by their files: never paired by a guess
        unsure = waiting.pop(key)
        message = (
            f"{len(unsure)} job(s) differ only by their local files: a submit of theirs after "
            "the manifest's last write cannot be told apart in the request log, so they may "
            "be sent again (flagged possibly_duplicate)"
        )
        for row in unsure:
            ledger.update(row.key, possibly_duplicate=True)
        reporter.note(message)
        log.warning("%s", message)
    layouts: dict[str, set[tuple[str, ...]]] = {}
    for endpoint, places, _ in waiting:
        layouts.setdefault(endpoint, set()).add(places)
    adopted = 0
    try:
        for endpoint in sorted({row.endpoint for row in candidates}):
            seen: dict[str, tuple[float, str, str | None]] = {}  # request id -> its entry
            for name, reader in logs.items():
                for when, rid, text in await reader.entries(
                    endpoint, since - SKEW, timing.wall() + SKEW
                ):
                    seen.setdefault(rid, (when, text, name or None))
            # The newest first: a job sent again after a transient failure made the latest.
            for rid, (when, text, sender) in sorted(seen.items(), key=lambda e: -e[1][0]):
                rows = _waiting_for(waiting, endpoint, layouts.get(endpoint, set()), text)
                # Not an attempt the manifest knew (held), nor one sent before it (older).
                match = next((r for r in rows if _later(r, when)), None)
                if rid in held or match is None:
                    continue
                rows.remove(match)
                _adopt(ledger, match, rid, sender, origin, when)
                held.add(rid)
                adopted += 1
    except LogUnavailable as exc:
        message = f"{exc}: jobs submitted after the manifest's last write may be sent again"
        reporter.note(message)
        log.warning("%s", message)
    if adopted:
        message = (
            f"{adopted} job(s) the manifest did not know were submitted were found in the "
            "provider's request log: followed by their request ids, not sent again"
        )
        reporter.note(message)
        log.warning("%s", message)
    return adopted


def _masked(payload: dict[str, Any], places: tuple[str, ...]) -> str:
    """``payload`` as canonical text with the values at ``places`` (its files) left out."""
    for at in places:
        if get_at(payload, at) is not None:
            payload = put_at(payload, at, _FILE)
    return canonical(payload)


def _waiting_for(
    waiting: dict[tuple[str, tuple[str, ...], str], list[JobRow]],
    endpoint: str,
    layouts: set[tuple[str, ...]],
    text: str,
) -> list[JobRow]:
    """The jobs a logged input (canonical ``text``) may be: by the whole payload, or with
    each candidate layout of file places left out."""
    found = waiting.get((endpoint, (), text))
    if found:
        return found
    try:
        sent = json.loads(text)
    except ValueError:
        return []
    for places in layouts:
        if places and isinstance(sent, dict):
            rows = waiting.get((endpoint, places, _masked(sent, places)))
            if rows:
                return rows
    return []


def _later(row: JobRow, when: float) -> bool:
    """Whether a request sent at ``when`` may be ``row``'s latest submit: sent after its last
    known one (a job in flight must say when that was, or its own could be taken over)."""
    if row.submitted_at is None:
        return row.status in (JobStatus.PENDING, JobStatus.SUBMIT_UNCERTAIN)
    return when > row.submitted_at


# What a rebuilt ledger may hold of a job the manifest saw before a later submit of it: not
# sent yet, sent with its answer lost, or in flight by an attempt that then ended (a newer
# submit of the same job follows only a transient failure or a lost answer).
LATER_SUBMIT = (JobStatus.PENDING, JobStatus.SUBMIT_UNCERTAIN, JobStatus.QUEUED, JobStatus.RUNNING)


def _adopt(
    ledger: LedgerStore,
    row: JobRow,
    request_id: str,
    key_id: str | None,
    origin: str,
    when: float,
) -> None:
    """``row``'s latest submit made ``request_id``: recorded as sent (its attempt counted)
    and followed like any job in flight."""
    sent = when if when != float("-inf") else None
    attempt = {"attempts": row.attempts + 1, "origin": origin, "key_id": key_id}
    if row.status is JobStatus.PENDING:
        ledger.transition(
            row.key, JobStatus.SUBMITTING, expect=row.status, submitted_at=sent, **attempt
        )
    if row.status in (JobStatus.PENDING, JobStatus.SUBMIT_UNCERTAIN):
        ledger.transition(row.key, JobStatus.QUEUED, request_id=request_id, submitted_at=sent)
    else:  # in flight by an earlier attempt, which ended before this later one was sent
        ledger.update(row.key, request_id=request_id, submitted_at=sent, **attempt)
    log.info("%s: the request log shows its submit made %s: adopted", row.key, request_id)
