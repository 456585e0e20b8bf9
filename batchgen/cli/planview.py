"""How ``batchgen plan`` shows a plan: the summary, the jobs table, the folder's state."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import click

from batchgen.places import put_at
from batchgen.plan.build import Job, Plan
from batchgen.plan.inputfiles import local_files, megabytes
from batchgen.plan.text import counted

# Longest value shown in the jobs table (``--json`` has every value whole).
SHOWN = 40


def usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.2f}"


def job_rows(plan: Plan) -> list[dict[str, Any]]:
    """The expanded jobs, as ``plan --jobs --json`` lists them."""
    return [
        {
            "row": job.row,
            "line": job.line,
            "repeat": job.repeat,
            "key": job.key,
            "filename": job.filename,
            "cost_usd": job.cost_usd,
            "payload": job.payload,
            "extra": job.extra,
            "files": [dataclasses.asdict(f) for f in job.files],
        }
        for job in plan.jobs
    ]


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > SHOWN:
        return value[: SHOWN - 1] + "…"
    return value


def _shown_payload(job: Job) -> dict[str, Any]:
    """The payload with each local file's name in place of its reference (``sha256:...``)."""
    payload = job.payload
    for file in job.files:
        payload = put_at(payload, file.param, os.path.basename(file.path))
    return payload


def echo_jobs(plan: Plan) -> None:
    """The jobs as a table: row, key, price, file name, payload (long values cut)."""
    rows = [
        (
            str(job.row),
            job.key,
            usd(job.cost_usd),
            job.filename,
            json.dumps({k: _short(v) for k, v in _shown_payload(job).items()}, ensure_ascii=False),
        )
        for job in plan.jobs
    ]
    header = ("row", "key", "price", "file", "payload")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for cells in [header, *rows]:
        left = [
            cells[0].rjust(widths[0]),
            *(c.ljust(w) for c, w in zip(cells[1:4], widths[1:], strict=True)),
        ]
        click.echo("  ".join([*left, cells[4]]).rstrip())


def folder_line(counts: dict[str, int] | None) -> str | None:
    """What the output folder already holds of the plan, in words."""
    if counts is None:
        return None
    parts = [f"{counts['done']:,} done"]
    if counts["unfinished"]:
        parts.append(f"{counts['unfinished']:,} there, not done")
    parts.append(f"{counts['new']:,} new")
    parts.append(f"{counts['left_over']:,} left over (no longer in the input)")
    return ", ".join(parts)


def _records(plan: Plan) -> str:
    """``12 records, 3 in hidden rows``: what of the input the plan holds."""
    text = counted(plan.records, "record")
    if plan.hidden_rows:
        text += f", {plan.hidden_rows:,} in hidden rows"
    if plan.hidden_left_out:
        text += f"; {counted(plan.hidden_left_out, 'hidden row')} left out"
    return text


def echo_summary(plan: Plan, counts: dict[str, int] | None) -> None:
    click.echo(f"endpoint: {plan.endpoint_label}")
    sheet = f", sheet {plan.sheet!r}" if plan.sheet else ""
    click.echo(f"input:    {plan.input_path}{sheet} ({_records(plan)})")
    click.echo(f"jobs:     {len(plan.jobs):,}")
    for group in plan.breakdown():
        label = ", ".join(f"{k}={v}" for k, v in group.items() if k not in ("jobs", "cost_usd"))
        click.echo(f"  {label or 'all'}: {counted(group['jobs'], 'job')}, {usd(group['cost_usd'])}")
    click.echo(f"estimated cost: {usd(plan.estimated_cost)}")
    files = local_files(f for job in plan.jobs for f in job.files)
    if files["count"]:
        total = files["bytes"]
        size = megabytes(total) if total >= 100_000 else f"{total:,} bytes"
        click.echo(f"local files: {counted(files['count'], 'file')}, {size}, to upload")
    click.echo(f"output:   {plan.output_dir}")
    line = folder_line(counts)
    if line is not None:
        click.echo(f"  in the folder: {line}")
