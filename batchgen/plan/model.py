"""A plan and its jobs, as data: what ``build_plan`` makes and a run consumes.

Each ``Job`` has a stable ``key``: a hash of the endpoint id, the canonical JSON of the exact
payload and the repeat index, so the same input gives the same keys on any machine, in any row
order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchgen.plan.endpoint import EndpointSpec
from batchgen.plan.inputfiles import InputFile, local_files
from batchgen.plan.settings import RunSettings


@dataclass(frozen=True, slots=True)
class Job:
    """One generation to run: what is sent, where it came from, where its video goes."""

    key: str
    row: int
    line: int | None  # None for a record with no line (an image of a folder input)
    repeat: int
    payload: dict[str, Any]
    extra: dict[str, Any]
    filename: str
    cost_usd: float | None
    # The endpoint id this job runs on (a plan may compare several).
    endpoint: str = ""
    # Local files behind ``type: file`` parameters; the payload holds ``sha256:<hex>`` for
    # each, replaced by the uploaded URL (or a data: URI) when the job is submitted.
    files: tuple[InputFile, ...] = ()


@dataclass(slots=True)
class Plan:
    """Every job of a batch, in input order, with what is needed to run and report it."""

    endpoint: EndpointSpec
    jobs: list[Job]
    input_path: str
    input_sha256: str
    extra_columns: list[str]
    output_dir: Path
    settings: RunSettings
    filename_template: str
    records: int = 0
    # XLSX: records read from hidden rows, and hidden rows left out (see ``Table``).
    hidden_rows: int = 0
    sheet: str | None = None  # the XLSX sheet read
    # The rows name their endpoints (an endpoint column, a matrix endpoint axis).
    rows_name_endpoints: bool = False
    hidden_left_out: int = 0
    warnings: list[str] = field(default_factory=list)
    # True when no --out and no spec ``output`` named the folder: it is out/<input name>.
    default_output: bool = False
    # Every endpoint a job runs on, by id, in first-use order (``endpoint`` is the first).
    endpoints: dict[str, EndpointSpec] = field(default_factory=dict)
    # The endpoints the user's spec files (--endpoint-spec) describe, in the order given.
    described: list[EndpointSpec] = field(default_factory=list)
    # The run settings the job spec or the command line set (the others are defaults).
    given: frozenset[str] = frozenset()

    @property
    def estimated_cost(self) -> float | None:
        """Total estimated spend in USD, or None when any job's price is unknown."""
        return _total(self.jobs)

    @property
    def params(self) -> list[str]:
        """Every parameter a job of the plan may send, in spec order (payload order for
        endpoints without a spec)."""
        names: dict[str, None] = {}
        for ep in self.endpoints.values() or [self.endpoint]:
            if not ep.passthrough:
                names.update(dict.fromkeys(ep.params))
        if any(ep.passthrough for ep in self.endpoints.values() or [self.endpoint]):
            for job in self.jobs:
                names.update(dict.fromkeys(job.payload))
        return list(names)

    @property
    def endpoint_label(self) -> str:
        """The endpoint's id, or ``3 endpoints (a, b, c)`` for a comparison."""
        if len(self.endpoints) <= 1:
            return self.endpoint.id
        return f"{len(self.endpoints)} endpoints ({', '.join(self.endpoints)})"

    @property
    def typical_latency_s(self) -> float | None:
        """The shortest typical latency of the plan's endpoints (a first look aims at it)."""
        known = [
            ep.typical_latency_s
            for ep in self.endpoints.values() or [self.endpoint]
            if ep.typical_latency_s is not None
        ]
        return min(known) if known else None

    def breakdown(self) -> list[dict[str, Any]]:
        """Job counts and costs grouped by endpoint (when several) and by the parameters that
        drive each endpoint's price."""
        several = len(self.endpoints) > 1
        groups: dict[tuple[str, tuple[tuple[str, Any], ...]], list[Job]] = {}
        for job in self.jobs:
            ep = self.endpoints.get(job.endpoint, self.endpoint)
            drivers = ep.price.drivers if not ep.passthrough else ()
            values = tuple((d, job.payload.get(d)) for d in drivers)
            groups.setdefault((job.endpoint, values), []).append(job)
        order = list(self.endpoints)
        out = []
        for (endpoint, values), jobs in sorted(
            groups.items(),
            key=lambda kv: (
                order.index(kv[0][0]) if kv[0][0] in order else len(order),
                _sort_key(tuple(v for _, v in kv[0][1])),
            ),
        ):
            head = {"endpoint": endpoint} if several else {}
            out.append({**head, **dict(values), "jobs": len(jobs), "cost_usd": _total(jobs)})
        return out

    def summary(self) -> dict[str, Any]:
        """What ``batchgen plan --json`` prints."""
        return {
            "endpoint": self.endpoint.id,
            "endpoints": list(self.endpoints) or [self.endpoint.id],
            "input": self.input_path,
            "records": self.records,
            "sheet": self.sheet,
            "hidden_rows": self.hidden_rows,
            "hidden_rows_left_out": self.hidden_left_out,
            "jobs": len(self.jobs),
            "estimated_cost_usd": self.estimated_cost,
            "breakdown": self.breakdown(),
            "local_files": local_files(f for job in self.jobs for f in job.files),
            "output": str(self.output_dir),
            "warnings": self.warnings,
        }


def _total(jobs: list[Job]) -> float | None:
    """The summed price of ``jobs`` in USD, or None when any price is unknown (never 0)."""
    total = 0.0
    for job in jobs:
        if job.cost_usd is None:
            return None
        total += job.cost_usd
    return round(total, 6)


def _sort_key(values: tuple[Any, ...]) -> tuple[tuple[int, float, str], ...]:
    """Numbers in numeric order ("5" before "10"), then text."""
    keys = []
    for value in values:
        try:
            keys.append((0, float(value), ""))
        except (TypeError, ValueError):
            keys.append((1, 0.0, str(value)))
    return tuple(keys)


def canonical_json(payload: dict[str, Any]) -> str:
    """The one JSON spelling of a payload: sorted keys, no spaces, unicode kept."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def job_key(endpoint_id: str, payload: dict[str, Any], repeat: int) -> str:
    """The stable key of a job (16 hex digits)."""
    text = f"{endpoint_id}\n{canonical_json(payload)}\n{repeat}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
