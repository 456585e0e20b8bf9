"""Where a batch stands: counts, spend, jobs in flight and failures, read from its ledger.

``read_status`` opens the ledger read-only, so it is safe while a run is writing to it (SQLite
WAL lets readers in beside the writer): each call reads the jobs' states as they are at that
moment (``as_of``), and says whether a run is live on the folder (``live_run``), or for a
shared batch (PostgreSQL) which workers are live, from any machine. ``render`` turns the
result into text for a terminal.

Money is the endpoint's list price of each job, defined once in ``batchgen.ledger.money``:
*spent* (the provider ran it to an output) and *committed* (submitted and not known to be
unbilled), the same figures the run shows. *remaining* is the list price of the input's jobs
not yet committed and not finished: what finishing the batch may still cost.

Jobs whose row left the input (``not_in_input``) are still counted and listed: one the
provider holds is followed to its end by the next run.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from batchgen.api.objectstore import ObjectStore
from batchgen.errors import UsageError
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.leases import Leases
from batchgen.ledger.lock import LOCK_NAME
from batchgen.ledger.money import committed, tally
from batchgen.ledger.opener import open_shared
from batchgen.ledger.shared import SharedBatch
from batchgen.ledger.states import IN_FLIGHT, JobRow, JobStatus
from batchgen.ledger.store import LEDGER_NAME, Ledger

S = JobStatus
_REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
# The order counts are shown in: outcomes first, then work under way, then work not started.
ORDER = (
    S.DONE,
    S.FAILED,
    S.CANCELLED,
    S.DOWNLOADING,
    S.COMPLETED,
    S.RUNNING,
    S.QUEUED,
    S.CANCELLING,
    S.SUBMIT_UNCERTAIN,
    S.SUBMITTING,
    S.PENDING,
)


@dataclass(frozen=True, slots=True)
class InFlight:
    """A job the provider holds or may hold. ``age_s``: seconds since it was submitted."""

    key: str
    row: int
    status: str
    request_id: str | None
    age_s: float | None
    queue_position: int | None


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Failed jobs sharing one error message, with their most common error type."""

    error: str
    error_type: str | None
    count: int
    rows: list[int]
    keys: list[str]


@dataclass(frozen=True, slots=True)
class Status:
    """A snapshot of one output folder."""

    folder: str
    endpoint: str | None
    total: int
    counts: dict[str, int]
    spent_usd: float
    committed_usd: float
    remaining_usd: float
    billed_usd: float  # what results said the provider billed, over ``billed_jobs`` jobs
    billed_jobs: int
    unpriced_jobs: int  # jobs whose price is unknown, left out of both sums
    not_in_input: int  # jobs whose row was edited or deleted since they were planned
    in_flight: list[InFlight]
    failures: list[FailureGroup]
    as_of: float = 0.0  # Unix seconds: when the ledger was read
    live_run: str | None = None  # "PID 12 on host, since ...": a run is going on the folder
    # Per endpoint (a comparison has several): jobs, done, failed, spent_usd.
    by_endpoint: dict[str, dict[str, Any]] = field(default_factory=dict)
    store: str | None = None  # the URL the videos went to (--store), else they are in folder
    # A shared batch's done videos by where they are: a worker's store URL or host:/folder.
    videos_in: dict[str, int] = field(default_factory=dict)
    emulator: bool = False  # the folder's runs went to the emulator: nothing was billed

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (what ``batchgen status --json`` prints)."""
        return asdict(self)


def open_ledger(
    out_dir: Path | None, *, readonly: bool = True, shared: SharedBatch | None = None
) -> LedgerStore:
    """The ledger of ``out_dir``, or the ``shared`` batch's; a UsageError naming the folder
    when it has none (or the batch, when it is not there)."""
    if shared is not None:
        return open_shared(shared.url, shared.name, readonly=readonly)
    path = Path(out_dir or ".") / LEDGER_NAME
    if not path.is_file():
        raise UsageError(f"{out_dir} is not a batchgen output folder: it has no {LEDGER_NAME}")
    return Ledger(path, readonly=readonly)


def store_of(ledger: LedgerStore) -> ObjectStore | None:
    """The object store the folder's last run put its videos in (``--store``), or None."""
    url = ledger.meta("store")
    return ObjectStore.open(url) if isinstance(url, str) and url else None


def read_status(
    out_dir: Path | None, *, now: float | None = None, shared: SharedBatch | None = None
) -> Status:
    """The status of ``out_dir``, or of the ``shared`` batch, as of ``now`` (Unix seconds;
    default: the current time)."""
    with open_ledger(out_dir, shared=shared) as ledger:
        jobs = ledger.jobs()
        plan = ledger.meta("plan") or {}
        store = ledger.meta("store") if shared is None else None  # a shared job says, each
        run = ledger.meta("run") if shared is None else None
        live = live_workers(ledger) if isinstance(ledger, Leases) else live_run(out_dir)
    status = summarize(
        jobs,
        folder=str(out_dir) if shared is None else str(shared),
        endpoint=plan.get("endpoint"),
        now=time.time() if now is None else now,
        live_run=live,
    )
    status = replace(status, emulator=on_emulator(run))
    return replace(status, store=store) if isinstance(store, str) else status


def on_emulator(run: Any) -> bool:
    """Whether a folder's stored run (its ledger's ``run`` meta) went to the emulator:
    ``--mock``, or the mock provider at a base URL."""
    if not isinstance(run, dict):
        return False
    given = run.get("options")
    options: dict[str, Any] = given if isinstance(given, dict) else {}
    return bool(run.get("mock")) or options.get("provider") == "mock"


# A worker not heard of for this long is taken for gone (the default lease).
GONE_AFTER_S = 60.0


def live_workers(ledger: Leases) -> str | None:
    """The workers of a shared batch heard of lately ("2 workers: PID 12 on host (folder),
    ..."), or None."""
    live = [w for w in ledger.workers() if not w.ended and w.seen_s < GONE_AFTER_S]
    if not live:
        return None
    each = ", ".join(f"PID {w.pid} on {w.host} ({w.folder})" for w in live)
    return f"{len(live)} worker{'s' if len(live) != 1 else ''}: {each}"


def live_run(out_dir: Path | None) -> str | None:
    """Who runs ``out_dir`` now ("PID 12 on host, since 2025-01-31T12:00:00+00:00"), or None.

    Read without taking the lock (a reader must never make a starting run think the folder
    busy): the lock file names its last holder, who is live when its process exists on this
    host and ``run.json`` has no end yet.
    """
    if out_dir is None:
        return None
    folder = Path(out_dir)
    holder = _json_file(folder / LOCK_NAME)
    run = _json_file(folder / "run.json")
    pid = holder.get("pid")
    if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
        return None
    if run.get("finished_at") is not None or not run.get("started_at"):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:
        pass  # it exists, owned by another user
    return f"PID {pid} on {holder['host']}, since {holder.get('started_at', '?')}"


def _json_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def summarize(
    jobs: list[JobRow],
    *,
    folder: str,
    endpoint: str | None,
    now: float,
    live_run: str | None = None,
) -> Status:
    """The status of ``jobs``: counts, spend, in-flight jobs (oldest first), failures."""
    counts = Counter(job.status for job in jobs)
    money = tally(jobs)
    remaining = 0.0
    unpriced = money.unpriced
    for job in jobs:
        if job.status.final or not job.in_input or committed(job):
            continue
        if job.cost_usd is None:
            unpriced += 1
        else:
            remaining += job.cost_usd
    flying = [
        InFlight(
            key=job.key,
            row=job.row,
            status=job.status.value,
            request_id=job.request_id,
            age_s=_age(job, now),
            queue_position=job.queue_position,
        )
        for job in jobs
        if job.status in IN_FLIGHT
    ]
    flying.sort(key=lambda f: -(f.age_s or 0.0))
    by_endpoint = _by_endpoint(jobs)
    places = Counter(job.video_dir for job in jobs if job.status is S.DONE and job.video_dir)
    if len(by_endpoint) > 1:
        endpoint = f"{len(by_endpoint)} endpoints"
    return Status(
        folder=folder,
        endpoint=endpoint or (jobs[0].endpoint if jobs else None),
        total=len(jobs),
        counts={s.value: counts.get(s, 0) for s in ORDER},
        spent_usd=money.spent,
        committed_usd=money.committed,
        remaining_usd=round(remaining, 6),
        billed_usd=money.billed,
        billed_jobs=money.billed_jobs,
        unpriced_jobs=unpriced,
        not_in_input=sum(not job.in_input for job in jobs),
        in_flight=flying,
        failures=_failures(jobs),
        as_of=now,
        live_run=live_run,
        by_endpoint=by_endpoint,
        videos_in=dict(places.most_common()),
    )


def _by_endpoint(jobs: list[JobRow]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[JobRow]] = defaultdict(list)
    for job in jobs:
        groups[job.endpoint].append(job)
    return {
        endpoint: {
            "jobs": len(members),
            "done": sum(j.status is S.DONE for j in members),
            "failed": sum(j.status is S.FAILED for j in members),
            "spent_usd": tally(members).spent,
        }
        for endpoint, members in groups.items()
    }


def _age(job: JobRow, now: float) -> float | None:
    since = job.submitted_at if job.submitted_at is not None else job.updated_at
    return round(max(0.0, now - since), 1)


def _failures(jobs: list[JobRow]) -> list[FailureGroup]:
    """Failed jobs grouped by message; the request id a message names is left out of the
    grouping (each job's own is in its row), so "request X is unknown" groups as one."""
    groups: dict[str, list[JobRow]] = defaultdict(list)
    for job in jobs:
        if job.status is S.FAILED:
            message = (job.error or "").strip() or "(no error message)"
            groups[_REQUEST_ID.sub("<id>", message)].append(job)
    out = []
    for error, members in groups.items():
        types = Counter(j.error_type for j in members if j.error_type)
        out.append(
            FailureGroup(
                error=error,
                error_type=types.most_common(1)[0][0] if types else None,
                count=len(members),
                rows=[j.row for j in members],
                keys=[j.key for j in members],
            )
        )
    out.sort(key=lambda g: -g.count)
    return out


_WIDTH = 80  # a terminal's columns that the first line keeps within where it can


def render(status: Status, *, limit: int = 15) -> str:
    """``status`` as lines of text for a terminal; long lists are cut at ``limit``."""
    jobs = f"{status.total} job{'s' if status.total != 1 else ''}"
    when = f", as of {time.strftime('%H:%M:%S', time.localtime(status.as_of))}"
    first = f"{status.folder}: {jobs}" + (f" on {status.endpoint}" if status.endpoint else "")
    lines = [first + when]
    if len(lines[0]) > _WIDTH and status.endpoint:  # 80 columns: the endpoint on its own line
        lines = [f"{status.folder}: {jobs}{when}", f"endpoint: {status.endpoint}"]
    lines.append(f"run going: {status.live_run}" if status.live_run else "no run is going")
    if status.store:
        lines.append(f"videos in: {status.store}")
    elif status.videos_in:
        places = ", ".join(f"{place} ({n})" for place, n in status.videos_in.items())
        lines.append(f"videos in: {places}")
    shown = [f"{name} {n}" for name, n in status.counts.items() if n]
    lines.append("  " + (" · ".join(shown) or "no jobs"))
    stopping = status.counts.get(str(S.CANCELLING), 0)
    if stopping:
        lines.append(
            f"  {stopping} cancelling: asked to stop, not yet ended at the provider; until "
            "they end they may still run and be billed"
        )
    unknown = (
        f" ({status.unpriced_jobs} jobs of unknown price not counted)"
        if status.unpriced_jobs
        else ""
    )
    lines.append(
        f"spent:     ${status.spent_usd:,.2f} (the provider ran them; list price){unknown}"
        if not status.emulator
        else f"spent:     ${status.spent_usd:,.2f} at list price, on the emulator: nothing was "
        f"billed{unknown}"
    )
    lines.append(f"committed: ${status.committed_usd:,.2f} (submitted, not known to be unbilled)")
    lines.append(f"remaining: ${status.remaining_usd:,.2f} (not yet submitted)")
    if status.emulator:  # its results say a bill, at list price; nobody was billed
        lines.append("billed:    nothing (the emulator bills no one)")
    else:
        lines.append(billed_line(status.billed_usd, status.billed_jobs))
    if len(status.by_endpoint) > 1:
        lines.append("by endpoint:")
        for endpoint, part in status.by_endpoint.items():
            lines.append(
                f"  {endpoint}: {part['done']}/{part['jobs']} done"
                + (f", {part['failed']} failed" if part["failed"] else "")
                + f", spent ${part['spent_usd']:,.2f}"
            )
    if status.not_in_input:
        lines.append(
            f"no longer in the input: {status.not_in_input} (kept; those in flight are "
            "followed to their end)"
        )
    if status.in_flight:
        lines.append(f"in flight ({len(status.in_flight)}):")
        for job in status.in_flight[:limit]:
            where = f"position {job.queue_position}" if job.queue_position is not None else ""
            lines.append(
                f"  row {job.row:<6} {job.status:<16} {duration(job.age_s):>8}  "
                f"{job.request_id or '-'}  {where}".rstrip()
            )
        if len(status.in_flight) > limit:
            lines.append(f"  … and {len(status.in_flight) - limit} more")
    if status.failures:
        lines.append(f"failures ({sum(g.count for g in status.failures)}):")
        for group in status.failures[:limit]:
            rows = ", ".join(map(str, group.rows[:8])) + (", …" if len(group.rows) > 8 else "")
            kind = f" [{group.error_type}]" if group.error_type else ""
            label = "row" if len(group.rows) == 1 else "rows"
            lines.append(f"  {group.count}× {_one_line(group.error)}{kind}  ({label} {rows})")
        if len(status.failures) > limit:
            lines.append(f"  … and {len(status.failures) - limit} other errors")
    return "\n".join(lines)


def billed_line(usd: float, jobs: int) -> str:
    """``billed: $1.75 (5 jobs: what their results said the provider billed)``."""
    if not jobs:
        return "billed:    no job's result said what it was billed"
    return (
        f"billed:    ${usd:,.2f} ({jobs} job{'s' if jobs != 1 else ''}: billed per their results)"
    )


def duration(seconds: float | None) -> str:
    """``95`` -> ``1m35s``; ``3700`` -> ``1h01m``; ``90000`` -> ``1d01h``; None -> ``-``."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _one_line(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
