"""The manifest of an output folder: one line per job, ``DIR/manifest.csv`` and ``.jsonl``.

Both files are rewritten whole from the ledger and replaced atomically (temp file in ``DIR``,
fsync, ``os.replace``), so a reader never sees half a manifest. Lines follow input order. A
process killed mid-write leaves its temp file (``.manifest.csv.1a2b3c4d.tmp``) behind;
``remove_stale_temps`` clears them when the next run starts.

Columns, in order: ``row``, ``key``, ``endpoint``, the input's own columns, the parameters sent
(a file parameter ``P`` holds the URL its last submit sent, a data URI described as
``data:<mime>;base64 (N bytes)``, or the planned ``sha256:<hex>`` before any submit; ``P.path``
and ``P.sha256`` of its local file follow it), then ``status error error_type request_id
api_key_id attempts possibly_duplicate in_input video_path video_url bytes sha256 price_usd
cost_usd billed_usd submitted_at completed_at latency_s``. ``api_key_id`` names the key that
submitted the job by its variable and fingerprint, never the key. ``in_input`` is false for a
job whose row left the input (edited or deleted) after it was submitted: it is still listed,
with its video. An input column whose name is one of ours is written as ``input.<name>`` (a
parameter as ``param.<name>``): our columns keep their meaning whatever the spreadsheet holds.
``video_path`` (relative to ``DIR``; in a shared batch, see ``video_path`` below) is set for
``done`` jobs only; times are ISO 8601 UTC;
``price_usd`` is the job's list price and ``cost_usd`` what it spent (its price once the
provider ran it, else 0: ``batchgen.ledger.money``), so the column sums to the spend ``status``
shows; ``billed_usd`` is what the provider billed (its billable units x unit price), empty when
its result did not say.

``manifest.jsonl`` holds the exact values with JSON types (numbers, booleans, null).
``manifest.csv`` is meant for spreadsheets:

- UTF-8 *with* a byte-order mark: Excel needs it to read UTF-8 on double-click; LibreOffice,
  Google Sheets and pandas skip it.
- CRLF line ends and RFC 4180 quoting (commas, quotes and newlines in cells are quoted).
- Text cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
  ``@``, tab or CR) get a leading ``'``, as OWASP advises against CSV injection. That includes
  prompts that start with "-": a spreadsheet shows the apostrophe, but it would otherwise turn
  "-zoom in" into ``#NAME?`` or run "-2+3|cmd". Plain numbers such as ``-0.5`` are left alone.
  The exact text is in ``manifest.jsonl`` (and ``batchgen export --format jsonl|parquet``).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from batchgen.fsnames import ESCAPE, JSON_ESCAPE, json_text
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.money import share
from batchgen.ledger.shared import in_store
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.places import get_at, put_at

LEAD = ("row", "key", "endpoint")
TAIL = (
    "status",
    "error",
    "error_type",
    "request_id",
    "api_key_id",
    "attempts",
    "possibly_duplicate",
    "in_input",
    "video_path",
    "video_url",
    "bytes",
    "sha256",
    "price_usd",
    "cost_usd",
    "billed_usd",
    "submitted_at",
    "completed_at",
    "latency_s",
)
_TRIGGERS = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_FILE_PARTS = ("path", "sha256")
_TEMP = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")  # what atomic_open names its temp files
# A live writer touches its temp file all the time; one untouched this long has no writer.
STALE_AFTER = 60.0
log = logging.getLogger("batchgen.ledger")


@dataclass(frozen=True, slots=True)
class Manifest:
    """The manifest's column names and one record per job (native values), in input order."""

    columns: list[str]
    records: list[dict[str, Any]]
    inputs: dict[str, str]  # manifest column -> the input column it holds
    params: dict[str, str]  # manifest column -> the parameter it holds
    # manifest column -> the file parameter and what of its local file it holds (path, sha256)
    files: dict[str, tuple[str, str]] = field(default_factory=dict)


# -- atomic files ----------------------------------------------------------------------------


@contextmanager
def atomic_open(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temp file beside ``path``; on clean exit fsync it and move it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, mode.replace("w", "x"), **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def remove_stale_temps(
    folder: Path, *, older_than: float = STALE_AFTER, now: float | None = None
) -> list[Path]:
    """Remove the temp files ``atomic_open`` left in ``folder`` (run.json, manifest, report)
    when a process died mid-write; return them. Only files untouched for ``older_than``
    seconds go: another process writing into the folder (a report, a second run) keeps its
    own temp file fresh. One that cannot be removed is left, silently: it harms nothing."""
    removed: list[Path] = []
    now = time.time() if now is None else now
    with suppress(OSError):
        for entry in os.scandir(folder):
            with suppress(OSError):
                if (
                    _TEMP.fullmatch(entry.name)
                    and entry.is_file(follow_symlinks=False)
                    and now - entry.stat(follow_symlinks=False).st_mtime >= older_than
                ):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    if removed:
        names = ", ".join(p.name for p in removed)
        log.info("removed %d temp file(s) a stopped run left: %s", len(removed), names)
    return removed


def fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); where folders cannot be opened, skip."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) so no reader sees a part."""
    if isinstance(data, str):
        with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(data)
    else:
        with atomic_open(path, "wb") as handle:
            handle.write(data)


def write_run_json(out_dir: Path, info: dict[str, Any]) -> None:
    """Atomically write ``DIR/run.json``: ``info`` as pretty JSON (unknown types as text)."""
    text = json_text(json.dumps(info, indent=2, ensure_ascii=False, default=str)) + "\n"
    atomic_write(Path(out_dir) / "run.json", text)


# -- building ---------------------------------------------------------------------------------


def build_manifest(
    ledger: LedgerStore, out_dir: Path, jobs: list[JobRow] | None = None, *, here: str = ""
) -> Manifest:
    """Every job of ``ledger`` (or ``jobs``, read from it already) as a manifest record, with
    the column layout described above; ``here``: the store URL the records are for, if any
    (see ``video_path``)."""
    jobs = ledger.jobs() if jobs is None else jobs
    layout = _layout(ledger, jobs)
    root = Path(out_dir).resolve()
    records = [_record(job, layout, root, here) for job in jobs]
    return Manifest(
        columns=layout.columns,
        records=records,
        inputs=layout.inputs,
        params=layout.params,
        files=layout.files,
    )


@dataclass(frozen=True, slots=True)
class _Layout:
    columns: list[str]
    inputs: dict[str, str]  # column -> input column
    params: dict[str, str]  # column -> parameter
    files: dict[str, tuple[str, str]]  # column -> (parameter, "path" or "sha256")


def _layout(ledger: LedgerStore, jobs: Iterable[JobRow]) -> _Layout:
    """The columns, from the run's plan, else from ``jobs``; a file parameter's ``.path`` and
    ``.sha256`` columns follow its own."""
    plan = ledger.meta("plan") or {}
    extra = plan.get("extra_columns")
    params = plan.get("param_columns")
    if extra is None or params is None:
        extra_seen: dict[str, None] = {}
        params_seen: dict[str, None] = {}
        for job in jobs:
            extra_seen.update(dict.fromkeys(job.extra))
            params_seen.update(dict.fromkeys(job.payload))
        extra = list(extra_seen) if extra is None else extra
        params = list(params_seen) if params is None else params
    with_files = ledger.file_params()
    taken = set(LEAD) | set(TAIL)
    inputs = {_free(name, "input.", taken): name for name in extra}
    sent: dict[str, str] = {}
    files: dict[str, tuple[str, str]] = {}
    columns = [*LEAD, *inputs]
    for name in params:
        column = _free(name, "param.", taken)
        sent[column] = name
        columns.append(column)
        # A file inside a list or object has its own columns (``image_urls.2.path``).
        for at in (f for f in with_files if f == name or f.startswith(name + ".")):
            where = column + at.removeprefix(name)
            for part in _FILE_PARTS:
                files[_free(f"{where}.{part}", "param.", taken)] = (at, part)
                columns.append(f"{where}.{part}")
    return _Layout([*columns, *TAIL], inputs, sent, files)


def _free(name: str, prefix: str, taken: set[str]) -> str:
    while name in taken:
        name = prefix + name
    taken.add(name)
    return name


def _record(job: JobRow, layout: _Layout, root: Path, here: str = "") -> dict[str, Any]:
    record: dict[str, Any] = {"row": job.row, "key": job.key, "endpoint": job.endpoint}
    for column, name in layout.inputs.items():
        record[column] = job.extra.get(name)
    for column, name in layout.params.items():
        record[column] = sent_value(job, name)
    for column, (name, part) in layout.files.items():
        record[column] = job.files.get(name, {}).get(part)
    latency = None
    if job.submitted_at is not None and job.completed_at is not None:
        latency = round(job.completed_at - job.submitted_at, 3)
    record.update(
        status=job.status.value,
        error=job.error,
        error_type=job.error_type,
        request_id=job.request_id,
        api_key_id=job.key_id,
        attempts=job.attempts,
        possibly_duplicate=job.possibly_duplicate,
        in_input=job.in_input,
        video_path=video_path(job, root, here) if job.status is JobStatus.DONE else None,
        video_url=job.video_url,
        bytes=job.bytes,
        sha256=job.sha256,
        price_usd=job.cost_usd,
        cost_usd=share(job)[1] if job.cost_usd is not None else None,
        billed_usd=job.billed_usd,
        submitted_at=iso_utc(job.submitted_at),
        completed_at=iso_utc(job.completed_at),
        latency_s=latency,
    )
    return record


def sent_value(job: JobRow, name: str) -> Any:
    """Parameter ``name`` of ``job`` as its last submit sent it: each local file by its URL
    (or data: URI summary), else as planned (``sha256:...``)."""
    value = job.payload.get(name)
    for at, url in job.sent.items():
        if at == name:
            return url
        if at.startswith(name + ".") and get_at(job.payload, at) is not None:
            value = put_at({name: value}, at, url)[name]
    return value


def iso_utc(seconds: float | None) -> str | None:
    """Unix seconds as ISO 8601 UTC (``2025-01-31T12:00:00Z``), None kept."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def video_path(job: JobRow, root: Path, here: str = "") -> str | None:
    """Where ``job``'s video is, relative to ``root``. A shared batch's video is where its
    worker put it (``job.video_dir``): in a store, the object's URL
    (``s3://bucket/prefix/videos/NAME.mp4``; relative to the store when that is ``here``, the
    store a page is written to); in the worker's folder, on this machine, the path to it; on
    another, ``host:/folder/videos/NAME.mp4``."""
    if job.video_dir is None or not job.video_path:
        return _relative(job.video_path, root)
    if in_store(job.video_dir):
        return job.video_path if job.video_dir == here else f"{job.video_dir}/{job.video_path}"
    host, _, folder = job.video_dir.partition(":")
    if host == socket.gethostname():
        return _relative(os.path.join(folder, job.video_path), root)
    return f"{job.video_dir}/{job.video_path}"


def _relative(path: str | None, root: Path) -> str | None:
    if not path:
        return None
    target = Path(path)
    if target.is_absolute():
        target = Path(os.path.relpath(target, root))
    return target.as_posix()


# -- writing ----------------------------------------------------------------------------------


def write_manifest(ledger: LedgerStore, out_dir: Path) -> None:
    """Rewrite ``DIR/manifest.csv`` and ``DIR/manifest.jsonl`` from ``ledger``, atomically.

    One pass over the ledger writes both files row by row: memory stays flat for any number of
    jobs (the run rewrites the manifest now and then, beside 100,000 jobs in flight).
    """
    out = Path(out_dir)
    layout = _layout(ledger, ledger.iter_jobs())
    columns = layout.columns
    root = out.resolve()
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    with (
        # A name no encoding holds is shown escaped (it is never opened from here).
        atomic_open(
            out / "manifest.csv", "w", encoding="utf-8-sig", errors=ESCAPE, newline=""
        ) as table,
        atomic_open(
            out / "manifest.jsonl", "w", encoding="utf-8", errors=JSON_ESCAPE, newline="\n"
        ) as lines,
    ):
        writer = csv.writer(table, lineterminator="\r\n")
        writer.writerow([spreadsheet_cell(c) for c in columns])
        for job in ledger.iter_jobs():
            record = _record(job, layout, root)
            writer.writerow([spreadsheet_cell(record[c]) for c in columns])
            lines.write(dumps(record) + "\n")


def write_csv(manifest: Manifest, path: Path) -> None:
    """``manifest`` as spreadsheet-safe CSV (see the module docstring), atomically."""
    with atomic_open(path, "w", encoding="utf-8-sig", errors=ESCAPE, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow([spreadsheet_cell(c) for c in manifest.columns])
        columns = manifest.columns
        writer.writerows([spreadsheet_cell(r[c]) for c in columns] for r in manifest.records)


def write_jsonl(manifest: Manifest, path: Path) -> None:
    """``manifest`` as JSON lines with native types, columns in manifest order, atomically."""
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    with atomic_open(path, "w", encoding="utf-8", errors=JSON_ESCAPE, newline="\n") as handle:
        handle.writelines(dumps(record) + "\n" for record in manifest.records)


def spreadsheet_cell(value: Any) -> Any:
    """One value as a CSV cell: blank for None, true/false, JSON for lists and objects, and
    text a spreadsheet would evaluate as a formula defused with a leading apostrophe."""
    kind = type(value)
    if kind is str:
        if value and value[0] in _TRIGGERS and not _NUMBER.fullmatch(value):
            return "'" + value
        return value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return value
    return spreadsheet_cell(json.dumps(value, ensure_ascii=False))
