"""``DIR/report.html``: one self-contained page to look through a batch, offline.

The header names the endpoint, how many runs the batch took since when and how long they ran in
all, when the last run started and ended and how long it took
(``run.json``), and the parameters every job shares, once. A summary (counts, spend, a latency
histogram drawn here as inline SVG, failures grouped by error, each group a filter) and a
gallery with a playable ``<video>`` per done job (its ``src`` the video's path relative to the
folder), status badges and error text for the others, badges for jobs that may have been
submitted twice or whose row left the input, and filters by status, failure, flag, parameter
and prompt text. The filters live in the URL's fragment (``report.html#status=failed``), so a
filtered view can be linked. The page skeleton, CSS and script live in ``report_page``. When
the folder compares models or matrix variants, ``compare.html`` is written too and linked from
the header (``compare``).

Everything from user data is escaped: text put in the HTML by ``html.escape``, the gallery's
data as JSON with ``<``, ``>`` and ``&`` written as ``\\u`` escapes, so no prompt can close the
script element, and the script shows it with ``textContent`` only.
"""

from __future__ import annotations

import html
import json
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from batchgen.api.objectstore import ObjectStore
from batchgen.folder.compare import Comparison, batch_identity, compare_view, render_compare
from batchgen.folder.pagedata import (
    common_values,
    label,
    natural,
    same_for_every_job,
    script_json,
)
from batchgen.folder.report_page import CSS, JS, PAGE
from batchgen.folder.status import ORDER, Status, duration, open_ledger, store_of, summarize
from batchgen.fsnames import escaped
from batchgen.ledger.manifest import Manifest, atomic_write, build_manifest
from batchgen.ledger.shared import SharedBatch, in_store
from batchgen.plan.build import file_sha256

MAX_FILTER_VALUES = 40  # a column with more distinct values gets no drop-down filter
_COLOURS = {
    "done": "var(--done)",
    "failed": "var(--failed)",
    "cancelled": "var(--cancelled)",
    "pending": "var(--pending)",
}


@dataclass(frozen=True, slots=True)
class Pages:
    """The pages ``write_pages`` wrote: the report, and the comparison when there is one;
    absolute paths, or URLs in the folder's store."""

    report: Path | str
    compare: Path | str | None


def write_pages(
    out_dir: Path,
    *,
    now: float | None = None,
    shared: SharedBatch | None = None,
    store: str | None = None,
) -> Pages:
    """Write ``DIR/report.html`` and, when the folder's jobs compare models or matrix
    variants, ``DIR/compare.html`` (see ``compare``), each atomically. A folder whose videos
    are in a store (``--store``) gets them in the store instead, beside ``videos/``, which
    their relative links name. With ``shared``, the pages of that batch go to ``DIR`` (or to
    ``store``, a worker's), linking each video where its worker put it: a store's object by
    its URL (relative in the pages' own store), a folder on this machine by its path."""
    out_dir = Path(out_dir).absolute()
    now = time.time() if now is None else now
    if shared is not None and store is None:
        out_dir.mkdir(parents=True, exist_ok=True)
    with open_ledger(out_dir, shared=shared) as ledger:
        jobs = ledger.jobs()
        pages_in = store_of(ledger) if shared is None else None
        if store is not None:
            pages_in = ObjectStore.open(store)
        here = "" if pages_in is None else pages_in.url
        manifest = build_manifest(ledger, out_dir, jobs, here=here)
        plan = ledger.meta("plan") or {}
        first = ledger.first_request()

    def put(name: str, page: str) -> Path | str:
        page = escaped(page)  # a name no encoding holds, shown as people can read it
        if pages_in is None:
            atomic_write(out_dir / name, page)
            return out_dir / name
        pages_in.write(name, page.encode())
        return pages_in.url_of(name)

    status = summarize(jobs, folder=out_dir.name, endpoint=plan.get("endpoint"), now=now)
    view = compare_view(jobs, manifest)
    compare = None
    if view is not None:
        identity = batch_identity(first, jobs)
        compare = put(
            "compare.html", render_compare(view, folder=out_dir.name, identity=identity, now=now)
        )
    page = render_report(
        manifest, status, now=now, run=read_run_json(out_dir), compare=view, root=out_dir
    )
    return Pages(report=put("report.html", page), compare=compare)


def write_report(
    out_dir: Path, *, now: float | None = None, shared: SharedBatch | None = None
) -> Path | str:
    """``write_pages``, returning where the report went."""
    return write_pages(out_dir, now=now, shared=shared).report


def read_run_json(out_dir: Path) -> dict[str, Any]:
    """``DIR/run.json`` as a mapping; empty when it is missing or unreadable."""
    try:
        info = json.loads((Path(out_dir) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def render_report(
    manifest: Manifest,
    status: Status,
    *,
    now: float,
    run: dict[str, Any] | None = None,
    compare: Comparison | None = None,
    root: Path | None = None,
) -> str:
    """The whole page as text; ``run`` is ``run.json``'s content, for the run's times; with
    ``compare``, the header links to ``compare.html``."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now))
    subtitle = f"{status.endpoint or 'unknown endpoint'} · {status.total:,} jobs · report of {when}"
    latencies = [
        r["latency_s"]
        for r in manifest.records
        if r["status"] == "done" and r["latency_s"] is not None
    ]
    summary = _summary_panel(status, manifest) + _latency_panel(latencies, status)
    common = common_values(manifest)
    return PAGE.format(
        title=html.escape(f"batchgen report: {status.folder}"),
        views=_views(compare),
        subtitle=html.escape(subtitle),
        run=html.escape(run_times(run or {})),
        common=html.escape(same_for_every_job(common)),
        summary=summary,
        css=CSS,
        js=JS,
        data=gallery_json(manifest, status, common, root=root),
    )


def _views(compare: Comparison | None) -> str:
    if compare is None:
        return ""
    size = f"{len(compare.lines):,} rows × {len(compare.columns)} columns"
    return (
        '<nav class="views"><b>report</b><a href="compare.html" '
        f'title="{size}">compare side by side</a></nav>'
    )


def run_times(run: dict[str, Any]) -> str:
    """``run started 2025-01-31 12:00:00 UTC · ended 12:14:02 UTC · took 14m02s``, from
    ``run.json`` (the last run of the folder); empty when it has no start. A batch run more
    than once starts with its story: ``4 runs since 2025-01-31 10:00:00 UTC, 23m12s running
    in all · last run started ...``."""
    started, finished = _instant(run.get("started_at")), _instant(run.get("finished_at"))
    if started is None:
        return ""
    runs = [r for r in run.get("runs") or () if isinstance(r, dict)]
    first = _instant(runs[0].get("started_at")) if runs else None
    text = "run started "
    if len(runs) > 1 and first is not None:
        spans = [(_instant(r.get("started_at")), _instant(r.get("finished_at"))) for r in runs]
        running = sum(max(0.0, b - a) for a, b in spans if a is not None and b is not None)
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(first))
        text = (
            f"{len(runs)} runs since {since}, {duration(running)} running in all · "
            "last run started "
        )
    text += time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
    if finished is None:
        return text + " · not finished (still running, or stopped without a word)"
    same_day = time.gmtime(started)[:3] == time.gmtime(finished)[:3]
    end = time.strftime(
        "%H:%M:%S UTC" if same_day else "%Y-%m-%d %H:%M:%S UTC", time.gmtime(finished)
    )
    text += f" · ended {end} · took {duration(max(0.0, finished - started))}"
    outcome = run.get("outcome")
    return text + (f" · outcome: {outcome}" if isinstance(outcome, str) and outcome else "")


_IMAGES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def _unchanged(path: str, sha: Any, hashes: dict[str, str | None]) -> bool:
    """Whether the local file at ``path`` still holds the bytes that were sent (``sha``): a
    card never shows an image edited, or a file gone, since the run."""
    if path not in hashes:
        try:
            hashes[path] = file_sha256(Path(path))
        except OSError:
            hashes[path] = None
    return hashes[path] is not None and hashes[path] == sha


def _instant(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def gallery_json(
    manifest: Manifest,
    status: Status,
    common: dict[str, str] | None = None,
    *,
    root: Path | None = None,
) -> str:
    """The gallery's data, safe to place inside a ``<script>`` element. Columns in ``common``
    are left off the cards (the header shows them once). A local input file shows by its
    name (not the URL it was sent at), and its image, linked relative to ``root`` (the
    report's folder), is on the card."""
    common = common_values(manifest) if common is None else common
    # A comparison's cards name their endpoint, and the endpoint is a filter.
    several = len({r.get("endpoint") for r in manifest.records}) > 1
    shown = [*(["endpoint"] if several else []), *manifest.inputs, *manifest.params]
    group_of = {group.error: i for i, group in enumerate(status.failures)}
    jobs = []
    hashes: dict[str, str | None] = {}  # each input file read once, however many jobs
    local = {
        c.removesuffix(".path"): c for c, (_, part) in manifest.files.items() if part == "path"
    }
    for record in manifest.records:
        values = {c: label(record[c]) for c in shown if record[c] is not None}
        inputs = []
        for column, path_column in local.items():
            path = record.get(path_column)
            if not isinstance(path, str):
                continue
            same = _unchanged(path, record.get(column + ".sha256"), hashes)
            if column in values:  # the file by its name: what the user knows it by
                values[column] = os.path.basename(path) + ("" if same else " (changed since)")
            if same and root is not None and path.lower().endswith(_IMAGES):
                inputs.append(_href(os.path.relpath(path, root)))
        params = [
            (c, values[c])
            for c in [*shown[: int(several)], *manifest.params, *manifest.inputs]
            if c != "prompt" and c in values and c not in common
        ]
        prompt = values.get("prompt", "")
        failed = record["status"] == "failed"
        jobs.append(
            {
                "row": record["row"],
                "key": record["key"],
                "status": record["status"],
                "prompt": prompt,
                "search": prompt.lower(),
                "params": params,
                "values": values,
                "error": record["error"],
                "fail": group_of.get(failure_text(record["error"])) if failed else None,
                "dup": bool(record["possibly_duplicate"]),
                "orphan": not record["in_input"],
                "attempts": record["attempts"],
                "video": _href(record["video_path"]) if record["video_path"] else None,
                "inputs": inputs,
                "latency": None if record["latency_s"] is None else duration(record["latency_s"]),
            }
        )
    filters = []
    for column in shown:
        if column == "prompt":
            continue
        distinct = sorted({j["values"][column] for j in jobs if column in j["values"]}, key=natural)
        if 1 < len(distinct) <= MAX_FILTER_VALUES:
            filters.append({"name": column, "values": distinct})
    present = [name for name, n in status.counts.items() if n]
    flags = {
        "dup": sum(j["dup"] for j in jobs),
        "orphan": sum(j["orphan"] for j in jobs),
    }
    data = {
        "jobs": jobs,
        "filters": filters,
        "statuses": present,
        "counts": status.counts,
        "flags": flags,
    }
    return script_json(data)


def _summary_panel(status: Status, manifest: Manifest) -> str:
    latencies = [
        r["latency_s"]
        for r in manifest.records
        if r["status"] == "done" and r["latency_s"] is not None
    ]
    counts = status.counts
    busy = sum(
        n for name, n in counts.items() if name not in ("done", "failed", "cancelled", "pending")
    )
    tiles = [
        ("jobs", f"{status.total:,}"),
        ("done", f"{counts['done']:,}"),
        ("failed", f"{counts['failed']:,}"),
        ("cancelled", f"{counts['cancelled']:,}"),
        ("in progress", f"{busy:,}"),
        ("pending", f"{counts['pending']:,}"),
        ("spent", f"${status.spent_usd:,.2f}"),
        ("committed", f"${status.committed_usd:,.2f}"),
        ("remaining", f"${status.remaining_usd:,.2f}"),
        # What results said the provider billed, beside the list-price estimates above.
        (f"billed ({status.billed_jobs:,} jobs)", f"${status.billed_usd:,.2f}")
        if status.billed_jobs
        else ("billed (no result said)", "—"),
    ]
    if latencies:
        tiles += [
            ("median latency", duration(percentile(latencies, 50))),
            ("p90 latency", duration(percentile(latencies, 90))),
        ]
    duplicates = sum(bool(r["possibly_duplicate"]) for r in manifest.records)
    if duplicates:
        tiles.append(("possibly duplicate", f"{duplicates:,}"))
    if status.not_in_input:
        tiles.append(("no longer in the input", f"{status.not_in_input:,}"))
    out = ['<div class="panel"><h2>Summary</h2><div class="tiles">']
    out += [f'<div class="tile"><b>{html.escape(v)}</b><span>{k}</span></div>' for k, v in tiles]
    out.append('</div><div class="bar">')
    legend = []
    for name in ORDER:
        n = counts[name.value]
        if n:
            colour = _COLOURS.get(name.value, "var(--busy)")
            share = 100 * n / max(status.total, 1)
            out.append(
                f'<i style="width:{share:.3f}%;background:{colour}" title="{name.value}: {n}"></i>'
            )
            legend.append(f'<span><i style="background:{colour}"></i>{name.value} {n:,}</span>')
    out.append('</div><div class="legend">' + "".join(legend) + "</div>")
    if status.unpriced_jobs:
        out.append(
            f'<p class="sub">{status.unpriced_jobs:,} jobs of unknown price are not '
            "counted in spent or remaining.</p>"
        )
    out.append("</div>")
    return "".join(out)


def _latency_panel(latencies: list[float], status: Status) -> str:
    out = ['<div class="panel"><h2>Latency of done jobs (submit to completion)</h2>']
    out.append(latency_svg(latencies) if latencies else '<p class="sub">No job is done yet.</p>')
    if status.failures:
        out.append('<table class="fail"><tbody>')
        for i, group in enumerate(status.failures[:10]):
            kind = f" [{group.error_type}]" if group.error_type else ""
            out.append(
                f'<tr data-fail="{i}" tabindex="0" title="show these jobs">'
                f'<td class="n">{group.count:,}×</td>'
                f"<td>{html.escape(group.error[:300] + kind)}</td></tr>"
            )
        if len(status.failures) > 10:
            out.append(
                f'<tr><td></td><td class="sub">and {len(status.failures) - 10} '
                "other errors</td></tr>"
            )
        out.append("</tbody></table>")
    out.append("</div>")
    return "".join(out)


def failure_text(error: str | None) -> str:
    """The text failures are grouped by (as ``status`` groups them)."""
    return (error or "").strip() or "(no error message)"


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def histogram(values: list[float], target_bins: int = 16) -> tuple[float, float, list[int]]:
    """Counts of ``values`` in bins of a round width: (start, width, counts)."""
    low, high = min(values), max(values)
    raw = (high - low) / target_bins or 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    width = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / width) * width
    counts = [0] * (int((high - start) // width) + 1)
    for value in values:
        counts[min(int((value - start) // width), len(counts) - 1)] += 1
    return start, width, counts


def _tick(seconds: float, step: float) -> str:
    """An axis label precise enough that bins narrower than a second get distinct labels."""
    if step >= 1:
        return duration(seconds)
    decimals = len(f"{step:g}".partition(".")[2])
    return f"{seconds:.{decimals}f}s"


def latency_svg(values: list[float], width: int = 560, height: int = 180) -> str:
    """An inline SVG bar chart of ``values`` (seconds), axis labels in minutes and seconds."""
    start, step, counts = histogram(values)
    left, bottom, top = 34, 22, 8
    plot_w, plot_h = width - left - 24, height - bottom - top
    peak = max(counts)
    bar_w = plot_w / len(counts)
    parts = [
        f'<svg class="hist" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="latency histogram of {len(values)} jobs">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, n in enumerate(counts):
        h = plot_h * n / peak
        lo, hi = _tick(start + i * step, step), _tick(start + (i + 1) * step, step)
        parts.append(
            f'<rect x="{left + i * bar_w + 1:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}">'
            f"<title>{lo} to {hi}: {n} job{'s' if n != 1 else ''}</title></rect>"
        )
    every = max(1, math.ceil(len(counts) / 6))
    for i in range(0, len(counts) + 1, every):
        parts.append(
            f'<text x="{left + i * bar_w:.1f}" y="{height - 6}" '
            f'text-anchor="middle">{_tick(start + i * step, step)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _href(path: str) -> str:
    """A video's path as a link: a relative path quoted whole; an object's URL (a shared
    batch's video in a store) keeps its scheme."""
    # The bytes of a name the locale cannot encode, as a browser finds the file by them.
    return quote(path.encode("utf-8", "surrogateescape"), safe="/:" if in_store(path) else "/")
