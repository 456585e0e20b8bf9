"""The folder's runs, as ``run.json`` keeps them: when each started and ended, and how; and
what it says of the plan.

Each run writes ``run.json`` whole; ``runs`` carries the earlier runs' ``{started_at,
finished_at, outcome}`` on (a ``run.json`` from before batchgen kept them counts as one run),
at most ``KEPT`` of them, the oldest dropped first, so a report can tell the batch's story.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from batchgen.plan.model import Plan

KEPT = 1000
_FIELDS = ("started_at", "finished_at", "outcome")


def earlier_runs(out: Path) -> list[dict[str, Any]]:
    """The runs ``out``'s ``run.json`` records (none when it has none or cannot be read)."""
    try:
        info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(info, dict):
        return []
    runs = info.get("runs")
    if isinstance(runs, list):
        return [
            {k: r.get(k) for k in _FIELDS}
            for r in runs[-KEPT:]
            if isinstance(r, dict) and isinstance(r.get("started_at"), str)
        ]
    if isinstance(info.get("started_at"), str):
        return [{k: info.get(k) for k in _FIELDS}]
    return []


def with_this_run(
    earlier: list[dict[str, Any]], started: str | None, finished: str | None, outcome: str | None
) -> list[dict[str, Any]]:
    """``earlier`` and this run, within ``KEPT``."""
    this = {"started_at": started, "finished_at": finished, "outcome": outcome}
    return [*earlier, this][-KEPT:]


def plan_info(plan: Plan) -> dict[str, Any]:
    """What ``run.json`` says of the plan: the endpoints and their specs, the input, jobs."""
    return {
        "endpoint": plan.endpoint.id,
        "endpoint_spec_source": plan.endpoint.source,
        "endpoint_spec_digest": plan.endpoint.digest,
        # Every spec a job of the plan was checked against (a comparison has several).
        "endpoints": {
            i: {"title": ep.title, "source": ep.source, "digest": ep.digest}
            for i, ep in (plan.endpoints or {plan.endpoint.id: plan.endpoint}).items()
        },
        "input_path": plan.input_path,
        "input_sha256": plan.input_sha256,
        "jobs": len(plan.jobs),
        "estimated_cost_usd": plan.estimated_cost,
    }
