"""Before spending: what a run is about to do, what it may cost and how long it may take.

``preview`` reads the plan and, when the folder has a ledger, what it holds already (read-only):
jobs still to submit, their list price beside what the folder has committed, and a duration
from the concurrency and the endpoint's typical latency. ``run`` shows it and asks on a
terminal (not for the free emulator, not with ``--yes``, not when stdin is no terminal); a
``--max-cost`` that covers only part of what is left is warned about either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import click

from batchgen.api.providers import load_presets
from batchgen.ledger.money import committed, tally
from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import LEDGER_NAME, Ledger
from batchgen.plan.build import Plan
from batchgen.run.progress import clock_text
from batchgen.run.resume import refetch, retryable


@dataclass(frozen=True, slots=True)
class Preview:
    """What a run of ``plan`` would submit."""

    jobs: int  # the plan's jobs
    done: int  # done already in the folder
    to_submit: int  # not submitted yet (or to be submitted again)
    cost: float | None  # list price of those, None when a price is unknown
    committed: float  # what the folder has committed already
    seconds: float | None  # a rough duration, None without a latency
    api: str  # the provider and the base URL the jobs go to

    def lines(self, plan: Plan) -> list[str]:
        """The preview as lines for a terminal, with a warning if --max-cost cuts it short."""
        settings = plan.settings
        head = f"about to run {self.jobs} job(s) on {plan.endpoint_label} via {self.api}"
        if self.done:
            head += f" ({self.done} done already)"
        lines = [head]
        cost = "unknown" if self.cost is None else f"${self.cost:,.2f}"
        lines.append(
            f"  {self.to_submit} to submit, estimated {cost} at list price"
            + (f" (committed so far: ${self.committed:,.2f})" if self.committed else "")
        )
        if self.seconds is not None:
            latency = plan.settings.expect_latency or plan.typical_latency_s
            lines.append(
                f"  estimated time: ~{clock_text(self.seconds)} ({settings.concurrency} at a "
                f"time, ~{latency:g} s each)"
            )
        limit = settings.max_cost
        if limit is not None and self.cost is not None and self.committed + self.cost > limit:
            share = max(0, math.floor((limit - self.committed) / self.cost * self.to_submit))
            lines.append(
                f"warning: --max-cost ${limit:,.2f} covers about {share} of these "
                f"{self.to_submit} job(s) (${self.committed + self.cost:,.2f} in all)"
            )
        return lines


def preview(
    plan: Plan, *, retry: frozenset[JobStatus] = frozenset(), all_failed: bool = False
) -> Preview:
    """What running ``plan`` in its folder would submit (see the module docstring); ``retry``
    the statuses put back in line (--retry-failed, --retry-cancelled), ``all_failed`` for
    --retry-failed all."""
    held = {}
    spent_before = 0.0
    path = plan.output_dir / LEDGER_NAME
    if path.is_file():
        with Ledger(path, readonly=True) as ledger:
            rows = ledger.jobs()
        held = {row.key: row for row in rows}
        spent_before = tally(rows).committed

    def submits(key: str) -> bool:
        row = held.get(key)
        if row is None:
            return True
        if row.status is JobStatus.PENDING:
            return not committed(row)
        if row.status not in retry or refetch(row, set(retry)):
            return False  # a paid video is fetched again, not paid again
        return row.status is not JobStatus.FAILED or all_failed or retryable(row)

    to_submit = [job for job in plan.jobs if submits(job.key)]
    prices = [job.cost_usd for job in to_submit]
    cost = None if any(p is None for p in prices) else round(sum(p or 0.0 for p in prices), 6)
    latency = plan.settings.expect_latency or plan.typical_latency_s
    preset = load_presets().get(plan.settings.provider)
    base = plan.settings.base_url or (preset.base_url if preset else "?")
    waves = math.ceil(len(to_submit) / max(1, plan.settings.concurrency))
    return Preview(
        jobs=len(plan.jobs),
        done=sum(
            1 for job in plan.jobs if job.key in held and held[job.key].status is JobStatus.DONE
        ),
        to_submit=len(to_submit),
        cost=cost,
        committed=spent_before,
        seconds=None if latency is None else waves * latency,
        api=f"{plan.settings.provider} ({base})",
    )


def go_ahead(plan: Any, retry: set[Any], all_failed: bool, *, ask: bool) -> bool:
    """Show what the run will submit, cost and take, and ask on a terminal (not for the free
    emulator); a --max-cost that covers only part of it is warned about either way."""
    shown = preview(plan, retry=frozenset(retry), all_failed=all_failed)
    lines = shown.lines(plan)
    ask = ask and shown.to_submit > 0 and plan.settings.provider != "mock"
    for line in lines if ask else [line for line in lines if line.startswith("warning:")]:
        click.echo(line, err=True)
    return not ask or click.confirm("Continue?", default=True, err=True)
