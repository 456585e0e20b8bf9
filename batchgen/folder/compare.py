"""``DIR/compare.html``: the same prompts side by side, one column per model or matrix variant.

When a folder's jobs compare something (a row ran on more than one endpoint, or a matrix gave
it variants), ``batchgen report`` writes this page beside ``report.html`` and links it from
there. One line per input row, its prompt on the left; one column per variant, named by a
short model name plus the parameter values that differ between one row's jobs on one endpoint
(``kling v2.5-turbo pro aspect_ratio=9:16``), and the sample (``#2``) when a spec repeats. A
cell holds the video (a link into the folder), its list price and spent share, and its latency
(submit to completion), or its status and error.

Lines group jobs by input row. When no row compares anything but the folder spans several
endpoints (an ``endpoint`` column naming one model per row), rows with the same prompt make one
line instead. Jobs whose row left the input are left out.

Picks (a winner per line, a tie, or none; a line named by its row and prompt) are kept by the
browser, in ``localStorage`` under the batch's identity (a digest of its first request id: two
folders of the same input never mix), and exported as CSV by the page. The page
(``report_page.HEAD``, then ``compare.html``, ``compare.css`` and ``compare.js`` beside this
module) draws everything from JSON with ``textContent`` only, so a prompt holding markup stays
text.
"""

from __future__ import annotations

import hashlib
import html
import json
import statistics
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from batchgen.folder.pagedata import label, same_for_every_job, script_json
from batchgen.folder.report_page import CSS, HEAD, HELPERS
from batchgen.folder.status import duration
from batchgen.ledger.manifest import Manifest
from batchgen.ledger.states import JobRow

Pair = tuple[JobRow, dict[str, Any]]  # a ledger row and its manifest record
# Path segments that say what kind of endpoint it is, not which model: left out of short names.
_KINDS = frozenset({"text-to-video", "image-to-video", "video-to-video", "reference-to-video"})


@dataclass(frozen=True, slots=True)
class Comparison:
    """What ``compare.html`` shows: its columns and lines, as the page's script reads them."""

    columns: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    endpoints: list[str]
    shared: dict[str, str]  # what every job has: named once, in the header


def compare_view(jobs: list[JobRow], manifest: Manifest) -> Comparison | None:
    """The comparison of a folder's jobs (``manifest`` built from the same ``jobs``, in the
    same order), or None when no line would hold more than one variant."""
    pairs = [(j, r) for j, r in zip(jobs, manifest.records, strict=True) if j.in_input]
    endpoints = list(dict.fromkeys(job.endpoint for job, _ in pairs))
    groups = _groups(pairs, lambda job: job.row)
    if not any(map(_compares, groups)) and len(endpoints) > 1:
        groups = _groups(pairs, lambda job: label(job.payload.get("prompt", "")))
    if not any(map(_compares, groups)):
        return None
    dims = _dimensions(groups, order=list(manifest.params.values()))
    repeats = any(job.repeat for job, _ in pairs)
    idents: dict[tuple[Any, ...], int] = {}
    lines: list[dict[int, Pair]] = []
    for group in groups:
        cells: dict[int, Pair] = {}
        for job, record in group:
            # Exact values: two jobs of one group and endpoint differ in a dimension (else they
            # would be one job, one key), so no two share a cell.
            values = tuple((p, script_json(job.payload[p])) for p in dims if p in job.payload)
            ident = (job.endpoint, values, job.repeat if repeats else None)
            cells[idents.setdefault(ident, len(idents))] = (job, record)
        lines.append(cells)
    names = short_names(endpoints)
    columns = [
        _column(endpoint, values, repeat, names[endpoint], [ln[i] for ln in lines if i in ln])
        for (endpoint, values, repeat), i in idents.items()
    ]
    _unique_ids(columns)
    shared = _shared(pairs)
    return Comparison(
        columns=columns,
        lines=_lines(lines, len(columns), {"prompt", *dims, *shared}),
        endpoints=endpoints,
        shared=shared,
    )


def _groups(pairs: list[Pair], key: Callable[[JobRow], Hashable]) -> list[list[Pair]]:
    """``pairs`` grouped by ``key``, groups in order of first appearance."""
    groups: dict[Hashable, list[Pair]] = {}
    for pair in pairs:
        groups.setdefault(key(pair[0]), []).append(pair)
    return list(groups.values())


def _compares(group: list[Pair]) -> bool:
    """True when the group's jobs differ by more than their sample index."""
    return len({(job.endpoint, script_json(job.payload)) for job, _ in group}) > 1


def _dimensions(groups: list[list[Pair]], order: list[str]) -> list[str]:
    """Parameters whose values differ between one group's jobs on one endpoint: the matrix.
    (Parameters that differ only between endpoints are the endpoints' own defaults.)"""
    found: set[str] = set()
    for group in groups:
        by_endpoint: dict[str, list[JobRow]] = {}
        for job, _ in group:
            by_endpoint.setdefault(job.endpoint, []).append(job)
        for same in by_endpoint.values():
            names = {name for job in same for name in job.payload}
            found |= {
                name
                for name in names
                if len({script_json(job.payload.get(name)) for job in same}) > 1
            }
    return [*[p for p in order if p in found], *sorted(found - set(order))]


def _fields(job: JobRow) -> dict[str, Any]:
    """A job's input columns and parameters by name."""
    return {**job.extra, **job.payload}


def _shared(pairs: list[Pair]) -> dict[str, str]:
    """Parameters and input columns (not the prompt) holding one same value in every job: the
    header names them once, so lines leave them out."""
    if not pairs:
        return {}
    return {
        name: label(value)
        for name, value in _fields(pairs[0][0]).items()
        if name != "prompt"
        and value is not None
        and all(_fields(job).get(name) == value for job, _ in pairs[1:])
    }


def _column(
    endpoint: str,
    values: tuple[tuple[str, str], ...],
    repeat: int | None,
    name: str,
    cells: list[Pair],
) -> dict[str, Any]:
    shown = [(p, label(json.loads(v))) for p, v in values]
    parts = [name, *(f"{p}={v}" for p, v in shown)]
    if repeat is not None:
        parts.append(f"#{repeat + 1}")
    done = [record for _, record in cells if record["status"] == "done"]
    latencies = [r["latency_s"] for r in done if r["latency_s"] is not None]
    spent = sum(r["cost_usd"] or 0.0 for _, r in cells)
    stats = [f"{len(done)}/{len(cells)} done", f"spent {usd(spent)}"]
    if latencies:
        stats.append(f"median {duration(statistics.median(latencies))}")
    return {
        "id": " ".join(parts),
        "label": " ".join(parts),
        "endpoint": endpoint,
        "values": [list(v) for v in shown],
        "stats": " · ".join(stats),
    }


def _unique_ids(columns: list[dict[str, Any]]) -> None:
    """Give columns whose labels coincide (values that print alike), or name a verdict the
    page keeps beside column ids, distinct ids."""
    seen = {"tie", "none"}
    for column in columns:
        base, n = column["id"], 1
        while column["id"] in seen:
            n += 1
            column["id"] = column["label"] = f"{base} ({n})"
        seen.add(column["id"])


def _lines(lines: list[dict[int, Pair]], width: int, skip: set[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for cells in lines:
        pairs = [cells[i] for i in sorted(cells)]
        rows = sorted({job.row for job, _ in pairs})
        first = pairs[0][0]
        params = [
            [name, label(value)]
            for name, value in _fields(first).items()
            if name not in skip
            and value is not None
            and all(_fields(job).get(name) == value for job, _ in pairs)
        ]
        prompt = label(first.payload.get("prompt", ""))
        # Picks are kept by this id: a row whose prompt changed starts afresh, never inherits
        # another prompt's pick.
        check = hashlib.sha256(prompt.encode()).hexdigest()[:8]
        out.append(
            {
                "id": f"{rows[0]}-{check}",
                "row": rows[0],
                "rows": rows,
                "prompt": prompt,
                "params": params,
                "cells": [_cell(*cells[i]) if i in cells else None for i in range(width)],
            }
        )
    return out


def _cell(job: JobRow, record: dict[str, Any]) -> dict[str, Any]:
    price, spent = record["price_usd"], record["cost_usd"]
    money = "price unknown" if price is None else f"est. {usd(price)}"
    if spent:
        money += f" · spent {usd(spent)}"
    latency = record["latency_s"]
    return {
        "key": job.key,
        "row": job.row,
        "status": record["status"],
        "file": record["video_path"],
        "money": money,
        "latency": None if latency is None else duration(latency),
        "error": record["error"],
        "attempts": record["attempts"],
    }


def usd(amount: float) -> str:
    return f"${amount:,.2f}"


def short_name(endpoint: str) -> str:
    """A model's name in few words: ``fal-ai/kling-video/v2.5-turbo/pro/text-to-video`` is
    ``kling v2.5-turbo pro``, ``fal-ai/veo3.1/fast`` is ``veo3.1 fast``."""
    parts = [p for p in endpoint.split("/") if p] or [endpoint]
    if len(parts) > 1:
        parts = parts[1:]  # the owner
    core = [p for p in parts if p not in _KINDS] or parts
    core[0] = core[0].removesuffix("-video") or core[0]
    return " ".join(core)


def short_names(endpoints: list[str]) -> dict[str, str]:
    """Each endpoint's short name; endpoints whose short names clash keep their whole id."""
    names = {e: short_name(e) for e in endpoints}
    clashing = {n for n in names.values() if list(names.values()).count(n) > 1}
    return {e: e if n in clashing else n for e, n in names.items()}


def batch_identity(first_request: tuple[str, str] | None, jobs: list[JobRow]) -> str:
    """Names the batch where the browser keeps picks: its first request (key and request id),
    unique to the folder; before anything was sent, its job keys."""
    if first_request is not None:
        basis = "request:" + "|".join(first_request)
    else:
        basis = "keys:" + ",".join(sorted(job.key for job in jobs))
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def render_compare(view: Comparison, *, folder: str, identity: str, now: float) -> str:
    """The whole ``compare.html`` as text."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now))
    subtitle = (
        f"{len(view.lines):,} rows × {len(view.columns)} columns · "
        f"{', '.join(view.endpoints)} · report of {when}"
    )
    data = {
        "folder": folder,
        "identity": identity,
        "columns": view.columns,
        "lines": view.lines,
    }
    return (HEAD + _asset("compare.html")).format(
        title=html.escape(f"batchgen compare: {folder}"),
        subtitle=html.escape(subtitle),
        common=html.escape(same_for_every_job(view.shared)),
        css=CSS + _asset("compare.css"),
        js=HELPERS + _asset("compare.js"),
        data=script_json(data),
    )


def _asset(name: str) -> str:
    return resources.files("batchgen.folder").joinpath(name).read_text(encoding="utf-8")
