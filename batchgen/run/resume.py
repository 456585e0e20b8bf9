"""What a run finds in its folder, and what it puts back in line before driving jobs.

A run resumes whatever the folder holds: ``check_origin`` refuses jobs in flight that belong to
another host (and says which it follows with another key than their own); ``to_drive`` picks
the jobs to drive (the input's, and those no longer in it that the provider holds or whose
paid video is still to fetch); ``recheck_done`` sends a
finished job whose video is missing or damaged back to download; ``reopen`` puts back in line
the failed jobs whose paid video can be fetched again, and those the user asked to retry.
``stored_run`` reads what an earlier run was given, so ``batchgen run --out DIR`` repeats it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from batchgen.api.objectstore import ObjectStore
from batchgen.api.providers import IN_PROCESS, Connection
from batchgen.errors import PROTOCOL_ERROR, RESULT_TOO_LARGE, JobChanged, UsageError
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.money import UNBILLED_ERRORS, committed
from batchgen.ledger.states import IN_FLIGHT, JobRow, JobStatus
from batchgen.ledger.store import LEDGER_NAME, Ledger
from batchgen.ledger.unique_ids import DUPLICATE_REQUEST_ID
from batchgen.run.download import DISK, DOWNLOAD, VIDEO_GONE, VIDEO_REFUSED, looks_whole
from batchgen.run.progress import Reporter
from batchgen.run.uploads import FILE_REFUSED

S = JobStatus
log = logging.getLogger("batchgen.run")
# Failures that a new try can mend: transient, timed out, forgotten by the provider, an
# input file not sent or refused (uploaded again), or a download that went wrong. Any other
# failure is sent again only with --retry-failed all: answers that broke the protocol
# (``PROTOCOL_ERROR``), and refusals (error_type None or the provider's own word:
# validation, content policy).
RETRYABLE = UNBILLED_ERRORS | {
    "timeout",
    "unknown_request",
    "submit_uncertain",
    DUPLICATE_REQUEST_ID,
    "endpoint_unknown",
    FILE_REFUSED,
    DOWNLOAD,
    DISK,
    VIDEO_GONE,
    VIDEO_REFUSED,
}
# Failures on answers that broke the protocol (a result without a video among them): the
# provider may have run the job; never called a refusal of the row.
BROKE = frozenset({PROTOCOL_ERROR, "no_output"})
# Jobs the provider may hold, by a request id or by a submit whose answer was lost.
AT_PROVIDER = (S.SUBMITTING, S.SUBMIT_UNCERTAIN, S.QUEUED, S.RUNNING, S.COMPLETED, S.CANCELLING)


def check_origin(ledger: LedgerStore, connection: Connection, folder: str | Path) -> str | None:
    """Refuse to follow jobs in flight through another host than the one that submitted them
    (their request ids mean nothing elsewhere). Jobs submitted with a key this run does not
    hold (a key rotated, a pool named without one of its keys) are followed with this run's
    first key: keys of one account read each other's jobs, and only the provider's refusal
    proves otherwise (see ``batchgen.run.keys.KeyPool.foreign``). Returns the line that says
    so, or None."""
    elsewhere: Counter[str] = Counter()
    foreign: Counter[str | None] = Counter()
    held = connection.key_ids
    for row in ledger.jobs(AT_PROVIDER):
        if row.origin is None:
            continue  # recorded before batchgen kept origins
        if row.origin != connection.origin:
            elsewhere[row.origin] += 1
        elif row.key_id is not None and row.key_id not in held:
            foreign[row.key_id] += 1
    if elsewhere:
        origin, count = elsewhere.most_common(1)[0]
        raise UsageError(
            f"{elsewhere.total()} job(s) in flight in {folder} were submitted to {origin}"
            f"{'' if count == elsewhere.total() else ' (and other hosts)'}, and this run "
            f"talks to {connection.origin}: their request ids are unknown there. Resume with "
            "that provider and base URL to follow them (or cancel them there first)"
        )
    if not foreign:
        return None
    whose = ", ".join(f"{n} with {key_id}" for key_id, n in foreign.most_common())
    first = held[0] if held else "no key"
    return (
        f"{foreign.total()} job(s) in flight were submitted with a key this run does not hold "
        f"({whose}): following them with {first} (keys of one account read each other's "
        "jobs); any the provider will not show to it are left for a run with their own key"
    )


def recheck_done(
    ledger: LedgerStore,
    rows: list[JobRow],
    out: Path,
    reporter: Reporter,
    store: ObjectStore | None = None,
    *,
    video_dir: str | None = None,
) -> list[JobRow]:
    """Finished jobs whose video is missing or damaged are downloaded again: in ``out``, a
    whole MP4 of the recorded size; in ``store``, an object of the recorded size and sha256.
    With a shared ledger, only those whose video is where this worker puts its own
    (``video_dir``): its folder, or its store, whichever worker put them there."""
    done = {
        row.video_path: (row.bytes, row.sha256)
        for row in rows
        if row.status is S.DONE and row.video_url and row.video_path and row.video_dir == video_dir
    }
    if store is None:
        whole = {path for path, (size, _) in done.items() if looks_whole(out / path, size)}
    else:
        whole = store.verified(done)
    checked = []
    for row in rows:
        if row.video_path in done and row.video_path not in whole:
            reporter.note(f"{row.video_path} is missing or damaged; downloading again")
            with contextlib.suppress(JobChanged):  # another worker's, now
                row = ledger.transition(row.key, S.DOWNLOADING, expect=S.DONE)
        checked.append(row)
    return checked


def forget_dead_emulator(ledger: LedgerStore, connection: Connection, reporter: Reporter) -> int:
    """Put back in line the jobs an earlier run's own emulator (``run --mock``) held when it
    ended with its process: their request ids and video links died with it, and the
    emulator is free, so they are submitted again. Returns how many."""
    if connection.origin != IN_PROCESS:
        return 0
    gone = 0
    for row in ledger.jobs((*AT_PROVIDER, S.DOWNLOADING)):
        if row.origin != IN_PROCESS:
            continue
        try:
            ledger.transition(
                row.key,
                S.PENDING,
                expect=row.status,
                retry_from=row.attempts,
                request_id=None,
                video_url=None,
                error=None,
                error_type=None,
            )
        except JobChanged:
            continue
        gone += 1
    if gone:
        said = (
            f"{gone} job(s) were in flight in the emulator of an earlier run, which ended with "
            "it: they are submitted again (the emulator is free)"
        )
        reporter.note(said)
        log.info("%s", said)
    return gone


def retryable(row: JobRow) -> bool:
    """True for a failed job that a new try may well finish (see ``RETRYABLE``)."""
    return row.status is S.FAILED and row.error_type in RETRYABLE


def reopen(
    ledger: LedgerStore,
    rows: list[JobRow],
    retry: set[JobStatus],
    reporter: Reporter,
    *,
    refused_too: bool = False,
) -> list[JobRow]:
    """Put failed jobs whose paid video is still to fetch back in line, and the failed or
    cancelled jobs asked for (``retry``; see ``batchgen.run.runner.Runner``): of the failed,
    only the retryable ones unless ``refused_too``."""
    reopened: list[JobRow] = []
    stay: list[JobRow] = []  # failed, not retryable, and not asked for with "all"
    fetch = asked = 0
    for row in rows:
        if row.status is S.FAILED and S.FAILED in retry and not (refused_too or retryable(row)):
            stay.append(row)
            reopened.append(row)
            continue
        try:
            row, moved = _reopened(ledger, row, retry)
        except JobChanged:  # another worker of a shared batch reopened it first
            row, moved = ledger.get(row.key), ""
        fetch += moved == "fetch"
        asked += moved == "asked"
        reopened.append(row)
    if fetch:
        reporter.note(f"{fetch} paid video(s) to download again from their URL")
    if asked:
        what = " and ".join(sorted(str(status) for status in retry))
        reporter.note(f"{asked} {what} job(s) to run again")
    unread = [row for row in stay if row.error_type == RESULT_TOO_LARGE]
    broke = [row for row in stay if row.error_type in BROKE]
    refused = [row for row in stay if row.error_type not in (*BROKE, RESULT_TOO_LARGE)]
    if unread:
        reporter.note(
            f"{len(unread)} failed job(s) are paid but their result was too large to read; "
            f"they stay failed: --retry-failed all pays again{resubmit_cost(unread)}"
        )
    if broke:
        reporter.note(
            f"{len(broke)} failed job(s) failed on answers that broke the protocol and "
            f"stay failed: --retry-failed all submits them again{resubmit_cost(broke)}"
        )
    if refused:
        reporter.note(
            f"{len(refused)} failed job(s) were refused by the provider (validation, "
            "content policy) and stay failed: --retry-failed all submits them again"
            f"{resubmit_cost(refused)}"
        )
    return reopened


def resubmit_cost(rows: list[JobRow]) -> str:
    """What submitting the failed ``rows`` again costs, for the end of an advice line: a paid
    video whose download failed is fetched again, not paid again; every other is a new job,
    paid again when its last attempt may have been billed (see ``batchgen.ledger.money``)."""
    sent = [row for row in rows if not refetch(row, {S.FAILED})]
    if not sent:
        return " (downloads their paid videos again: nothing is paid)"
    prices = [row.cost_usd for row in sent if row.cost_usd is not None]
    again = " again" if any(committed(row) for row in sent) else ""
    if not prices:
        price = "at a price batchgen does not know"
    else:
        price = f"about ${sum(prices):,.2f} at list price"
        if len(prices) < len(sent):
            price += f" for {len(prices)} of them, the others unpriced"
    return f" (submits {len(sent)} anew and pays{again}: {price})"


def _reopened(ledger: LedgerStore, row: JobRow, retry: set[JobStatus]) -> tuple[JobRow, str]:
    """``row`` put back in line if it is to be (see ``reopen``), and how: fetch, asked, or
    "" (left as it is)."""
    if refetch(row, retry):
        row = ledger.transition(
            row.key,
            S.DOWNLOADING,
            expect=row.status,
            error=None,
            error_type=None,
            video_path=row.video_path or f"videos/{row.filename}",
        )
        return row, "fetch"
    if row.status not in retry:
        return row, ""
    row = ledger.transition(
        row.key,
        S.PENDING,
        expect=row.status,
        retry_from=row.attempts,  # a fresh budget; attempts keep every payment
        request_id=None,
        # A submit whose answer was lost may have created a job already.
        possibly_duplicate=row.possibly_duplicate
        or row.error_type in ("submit_uncertain", DUPLICATE_REQUEST_ID),
        # error and error_type stay until it is sent again: the last attempt's outcome
        # (and what it may have cost) is still the truth until then.
    )
    return row, "asked"


def to_drive(ledger: LedgerStore) -> list[JobRow]:
    """The input's jobs, and those no longer in it that are paid for and not yet fetched: a
    job the provider holds is followed to its end and its video kept, never abandoned."""
    return [
        row
        for row in ledger.jobs()
        if row.in_input or row.status in IN_FLIGHT or refetch(row, set())
    ]


def videos_in(folder: Path, store: ObjectStore | None = None) -> list[str]:
    """Names of the videos in ``folder`` (none if it does not exist yet), or in the store's
    ``videos/`` when there is a store."""
    if store is not None:
        return [name for name in store.names("videos") if name.endswith(".mp4")]
    try:
        return [entry.name for entry in os.scandir(folder) if entry.name.endswith(".mp4")]
    except OSError:
        return []


def refetch(row: JobRow, retry: set[JobStatus]) -> bool:
    """True for a failed job whose video is paid for and still worth fetching from its URL
    (its path may be missing: a ledger rebuilt from the manifest, which names the paths of
    done jobs only, knows the URL; the file is the job's own name in ``videos/``)."""
    if row.status is not S.FAILED or not row.video_url:
        return False
    if row.error_type in (DOWNLOAD, DISK):
        return True
    return row.error_type == VIDEO_REFUSED and S.FAILED in retry


def stored_run(out_dir: Path) -> dict[str, Any]:
    """What an earlier ``batchgen run`` in ``out_dir`` was given, to run it again."""
    path = Path(out_dir)
    if not (path / LEDGER_NAME).is_file():
        raise UsageError(f"{path} holds no earlier run to resume; give the prompt file or spec")
    with Ledger.in_folder(path, readonly=True) as ledger:
        stored = ledger.meta("run")
    if not isinstance(stored, dict) or not stored.get("target"):
        raise UsageError(f"{path} holds no earlier run to resume; give the prompt file or spec")
    return stored
