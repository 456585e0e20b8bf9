"""How a run ended: its outcome, a one-line message, counts, money, and what to do next.

``run_result`` reads the ledger's counts (the input's jobs only, not those left over from an
earlier input) and what the engine saw. ``next_steps`` turns them into lines that each end with
the command to type: resume, ``--retry-failed`` (``all`` for refusals and for answers that broke
the protocol, which are never called refusals), ``batchgen cancel``; a command that submits
jobs again says so, and what that costs at list price.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from batchgen.errors import RESULT_TOO_LARGE
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.plan.durations import spoken
from batchgen.run.download import VIDEO_GONE
from batchgen.run.engine import Engine
from batchgen.run.resume import BROKE, resubmit_cost, retryable

S = JobStatus


@dataclass(slots=True)
class RunResult:
    """How a run ended. ``outcome``: done, failed, fatal or interrupted."""

    outcome: str
    counts: dict[str, int]
    total: int
    spent_usd: float
    committed_usd: float
    message: str
    orphaned: list[str] = field(default_factory=list)
    held_by_cost: int = 0
    not_submitted: int = 0
    next_steps: list[str] = field(default_factory=list)  # what to do now, each a line


def run_result(
    ledger: LedgerStore,
    engine: Engine,
    orphaned: list[str],
    folder: str | Path,
    interrupted: bool,
    aborted: bool,
    *,
    in_process: bool = False,
) -> RunResult:
    """How the run ended, from the ledger and the engine: outcome, one-line message, counts,
    money and the next steps. ``interrupted``: Ctrl-C or a signal; ``aborted``: stopped now."""
    in_input = ledger.counts()
    counts = {str(k): v for k, v in in_input.items() if v}
    for key in orphaned:  # usually none: cheaper than reading every row again
        in_input[ledger.get(key).status] -= 1
    total = sum(in_input.values())
    done, failed = in_input[S.DONE], in_input[S.FAILED]
    parts = [f"{done} of {total} done"]
    if failed:
        parts.append(f"{failed} failed")
    if in_input[S.CANCELLED]:
        parts.append(f"{in_input[S.CANCELLED]} cancelled")
    if engine.held_by_cost:
        parts.append(f"{engine.held_by_cost} not submitted (--max-cost reached)")
    if engine.not_submitted:
        parts.append(f"{engine.not_submitted} not submitted (the API kept refusing)")
    if engine.stranded:
        parts.append(f"{engine.stranded} left in flight (their key was refused)")
    if engine.unshown:
        parts.append(
            f"{engine.unshown.total()} left in flight (submitted with another key, which they "
            "cannot be read without)"
        )
    if engine.downloads_left:
        parts.append(f"{engine.downloads_left} left to download (the file host did not answer)")
    if engine.fatal is not None:
        outcome = "fatal"
        parts.insert(0, str(engine.fatal))
    elif engine.stopped is not None:
        outcome = "failed"
        parts.insert(0, engine.stopped)
    elif interrupted:
        outcome = "interrupted"
    else:
        outcome = "done" if done == total else "failed"
    where = " on the emulator, nothing billed" if in_process else ""
    parts.append(f"spent ${engine.spent:,.2f}{where} (committed ${engine.committed:,.2f})")
    return RunResult(
        outcome,
        counts,
        total,
        engine.spent,
        engine.committed,
        "; ".join(parts),
        orphaned,
        engine.held_by_cost,
        engine.not_submitted,
        next_steps(ledger, in_input, engine, folder, aborted, in_process),
    )


def next_steps(
    ledger: LedgerStore,
    in_input: dict[JobStatus, int],
    engine: Engine,
    folder: str | Path,
    aborted: bool,
    in_process: bool = False,
) -> list[str]:
    """What the user can do now, with the command to type (``in_process``: the run's own
    emulator served it, and its jobs in flight end with it)."""
    out = shlex.quote(str(folder))
    again = f"batchgen run --out {out}"
    steps = []
    at_provider = sum(in_input[s] for s in (S.QUEUED, S.RUNNING, S.COMPLETED, S.CANCELLING))
    if at_provider and (aborted or engine.fatal or engine.stopped) and in_process:
        steps.append(
            f"{at_provider} job(s) were in flight in this run's emulator, which ends with it: "
            f"{again} submits them again (free)"
        )
    elif at_provider and (aborted or engine.fatal or engine.stopped):
        steps.append(
            f"{at_provider} job(s) still at the provider (billed if they run): "
            f"batchgen cancel {out} to stop them, or {again} to collect them"
        )
    elif engine.stranded:
        steps.append(
            f"{engine.stranded} job(s) still at the provider, their key refused: {again} "
            "collects them once that key works again (their request ids need it)"
        )
    if engine.unshown:
        whose = ", ".join(f"{n} with {key_id}" for key_id, n in engine.unshown.most_common())
        steps.append(
            f"{engine.unshown.total()} job(s) were submitted ({whose}) and may be paid, but the "
            "provider will not show them to this run's key: set the variable to the key that "
            f"submitted them (the fingerprint after ':' names it) and {again} to fetch their "
            "videos; with that key gone for good they cannot be read (nothing is sent again)"
        )
    waiting = in_input[S.PENDING] + in_input[S.SUBMIT_UNCERTAIN] + in_input[S.SUBMITTING]
    if waiting and engine.stopped:  # an interrupt's own last line says how to resume
        steps.append(f"{waiting} not submitted (stopped): resume with {again}")
    elif engine.held_by_cost:
        steps.append(
            f"{engine.held_by_cost} held by --max-cost: {again} --max-cost USD, with a higher USD"
        )
    if engine.downloads_left:
        patience = spoken(engine.download_patience)
        steps.append(
            f"{engine.downloads_left} paid video(s) not downloaded (the file host did not "
            f"answer for {patience}): {again} fetches them, paying nothing again"
        )
    failed = [row for row in ledger.jobs([S.FAILED]) if row.in_input]
    gone = [row for row in failed if row.error_type == VIDEO_GONE]
    if gone:
        prices = [row.cost_usd for row in gone]
        price = "" if None in prices else f" (${sum(p or 0.0 for p in prices):,.2f})"
        steps.append(
            f"{len(gone)} paid video(s) gone for good (the provider no longer has their "
            f"results): {again} --retry-failed generates them again, paid again{price}"
        )
        failed = [row for row in failed if row.error_type != VIDEO_GONE]
    unread = [row for row in failed if row.error_type == RESULT_TOO_LARGE]
    if unread:
        steps.append(
            f"{len(unread)} paid job(s) whose result answer was too large to read (see "
            "batchgen.log): their videos were made and paid; nothing batchgen can do fetches "
            f"them. Ask the provider for a smaller result; --retry-failed all pays again"
            f"{resubmit_cost(unread)}"
        )
        failed = [row for row in failed if row.error_type != RESULT_TOO_LARGE]
    if failed:
        steps += _failed_steps(failed, again)
    return steps


def _failed_steps(failed: list[JobRow], again: str) -> list[str]:
    """The advice for failed jobs: retry the retryable ones; the others are answers that broke
    the protocol, or refusals by the provider. Each command that submits says what it pays
    (``--retry-failed all`` sends every failed job: the retryable ones too)."""
    retry = [row for row in failed if retryable(row)]
    broke = [row for row in failed if not retryable(row) and row.error_type in BROKE]
    refused = [row for row in failed if not retryable(row) and row.error_type not in BROKE]
    steps = []
    if retry:
        steps.append(
            f"{len(failed)} failed ({len(retry)} retryable): {again} --retry-failed"
            f"{resubmit_cost(retry)}"
        )
    if broke:
        steps.append(
            f"{len(broke)} failed on answers that broke the protocol (not refused by the "
            "provider, which may have run them; batchgen.log quotes the answers): check "
            f"--base-url and --follow, or {again} --retry-failed all{resubmit_cost(failed)}"
        )
    if refused:
        steps.append(
            f"{len(refused)} refused by the provider (validation, content policy): fix "
            f"those rows, or {again} --retry-failed all{resubmit_cost(failed)}"
        )
    return steps
