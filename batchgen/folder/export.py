"""``batchgen export``: the manifest as CSV, JSONL or Parquet, or the videos as a dataset folder.

- ``csv`` and ``jsonl``: the same files as ``DIR/manifest.*`` (see ``batchgen.ledger.manifest``).
- ``parquet``: the manifest rows with typed columns (nullable integers, booleans, UTC
  timestamps); needs pyarrow (``pip install 'batchgen[parquet]'``).
- ``hf``: a folder that Hugging Face ``datasets.load_dataset("videofolder", data_dir=PATH)``
  reads: every done video next to a ``metadata.jsonl`` whose ``file_name`` names it, plus
  ``key``, ``row``, the prompt and parameters, the input's columns, ``request_id`` and
  ``sha256``. Videos are hard-linked when the folder is on the same file system, else copied;
  a folder whose videos are in a store (``--store``) has them copied from there, as has a
  shared batch's video that its worker put in a store (named by its object's URL).
  They are named ``<key>.mp4``: names made from prompts could hold "test" or "valid", which
  ``datasets`` would take for split names. Keys ending in ``_file_name`` or ``file_names`` are
  renamed with a trailing ``_``: ``datasets`` would read them as more video columns. Each
  column keeps one JSON type, as pyarrow infers the metadata's schema from its first rows.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import mimetypes
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pandas.api.extensions import ExtensionDtype

from batchgen.api.objectstore import ObjectStore
from batchgen.errors import DiskError, UsageError
from batchgen.folder.status import open_ledger, store_of
from batchgen.fsnames import JSON_ESCAPE, escaped, has_surrogates
from batchgen.ledger.manifest import Manifest, atomic_open, build_manifest, write_csv, write_jsonl
from batchgen.ledger.shared import SharedBatch, in_store
from batchgen.plan.media import HEAD_BYTES, sniff

FORMATS = ("csv", "jsonl", "parquet", "hf")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".mpeg")
_TIMES = ("submitted_at", "completed_at")
_DTYPES: dict[str, ExtensionDtype] = {
    "row": pd.Int64Dtype(),
    "attempts": pd.Int64Dtype(),
    "bytes": pd.Int64Dtype(),
    "possibly_duplicate": pd.BooleanDtype(),
    "in_input": pd.BooleanDtype(),
    "price_usd": pd.Float64Dtype(),
    "cost_usd": pd.Float64Dtype(),
    "billed_usd": pd.Float64Dtype(),
    "latency_s": pd.Float64Dtype(),
}


@dataclass(slots=True)
class ExportResult:
    """What an export wrote: where, how many rows, and (hf) how videos got there."""

    path: Path
    rows: int
    linked: int = 0
    copied: int = 0
    missing: list[str] = field(default_factory=list)  # keys of done jobs whose file is gone
    missing_inputs: int = 0  # local input files no longer on disk (named None in metadata)


def export(
    out_dir: Path | None, fmt: str, to: Path, *, shared: SharedBatch | None = None
) -> ExportResult:
    """Export the output folder ``out_dir``, or the ``shared`` batch (its videos from the
    workers' folders on this machine), as ``fmt`` (one of FORMATS) to ``to``."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise UsageError(
            "Parquet export needs pyarrow: pip install 'batchgen[parquet]' (from a clone of "
            "the repository: pip install -e '.[parquet]')"
        )
    root = Path(out_dir) if out_dir is not None else Path(to).absolute().parent
    with open_ledger(out_dir, shared=shared) as ledger:
        manifest = build_manifest(ledger, root)
        store = store_of(ledger) if shared is None else None  # a shared job's names its own
    to = Path(to)
    if fmt == "hf":
        return export_hf(manifest, root, to, store)
    to.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        write_csv(manifest, to)
    elif fmt == "jsonl":
        write_jsonl(manifest, to)
    else:
        write_parquet(manifest, to)
    return ExportResult(path=to, rows=len(manifest.records))


def uniform(records: list[dict[str, Any]], columns: list[str]) -> list[dict[str, Any]]:
    """Copies of ``records`` where each column holds one type: ints mixed with floats become
    floats; any other mix (and lists or objects) becomes text (JSON for non-strings)."""
    fixes: dict[str, type] = {}
    for column in columns:
        kinds = {type(r[column]) for r in records if r.get(column) is not None}
        if kinds == {int, float}:
            fixes[column] = float
        elif len(kinds) > 1 or kinds & {list, dict}:
            fixes[column] = str
    if not fixes:
        return records
    out = []
    for record in records:
        record = dict(record)
        for column, kind in fixes.items():
            value = record.get(column)
            if value is None or type(value) is kind:
                continue
            record[column] = float(value) if kind is float else _text(value)
        out.append(record)
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    """A record whose text Arrow takes: a name no encoding holds shown escaped (it is data for
    people and other tools, never a path opened again)."""
    if not any(isinstance(v, str) and has_surrogates(v) for v in record.values()):
        return record
    return {k: escaped(v) if isinstance(v, str) else v for k, v in record.items()}


def write_parquet(manifest: Manifest, to: Path) -> None:
    """The manifest as a Parquet file with typed, nullable columns, written atomically."""
    records = [_shown(r) for r in uniform(manifest.records, manifest.columns)]
    frame = pd.DataFrame.from_records(records, columns=manifest.columns).convert_dtypes()
    for column in manifest.columns:
        if frame[column].isna().all():  # no value to infer from: use what the column holds
            frame[column] = frame[column].astype(_DTYPES.get(column, pd.StringDtype()))
    for column in _TIMES:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    with atomic_open(to, "wb") as handle:
        frame.to_parquet(handle, index=False, engine="pyarrow")


def export_hf(
    manifest: Manifest, out_dir: Path, to: Path, store: ObjectStore | None = None
) -> ExportResult:
    """Write the done videos (from ``out_dir``, or ``store``) and ``metadata.jsonl`` to the
    new or empty folder ``to``."""
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise UsageError(f"{to} exists and is not an empty folder; choose a new one")
    to.mkdir(parents=True, exist_ok=True)
    result = ExportResult(path=to, rows=0)
    names = _metadata_names(manifest)
    rows = []
    opened: dict[str, ObjectStore] = {}
    placed: dict[str, str | None] = {}  # an input's sha256 -> where it is in the dataset
    for record in manifest.records:
        if record["status"] != "done" or not record["video_path"]:
            continue
        source = out_dir / record["video_path"]
        suffix = source.suffix.lower() if source.suffix.lower() in VIDEO_SUFFIXES else ".mp4"
        name = f"{record['key']}{suffix}"
        video, its_store = _stored(record["video_path"], store, opened)
        if not _fetched(video, source, to / name, its_store, result):
            result.missing.append(record["key"])
            continue
        row = {"file_name": name}
        row.update({target: record[column] for column, target in names.items()})
        row.update(_inputs(manifest, record, to, result, placed))
        rows.append(row)
    columns = list(rows[0]) if rows else []
    metadata = to / "metadata.jsonl"
    with atomic_open(metadata, "w", encoding="utf-8", errors=JSON_ESCAPE, newline="\n") as handle:
        for row in uniform(rows, columns):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    result.rows = len(rows)
    return result


def _inputs(
    manifest: Manifest,
    record: dict[str, Any],
    to: Path,
    result: ExportResult,
    placed: dict[str, str | None],
) -> dict[str, Any]:
    """The job's local input files copied into the dataset (``inputs/<sha256><ext>``,
    each content once) and named in its metadata by place: the relative path
    (``image_url.file``) and the sha256 (``image_url.sha256``). An input no longer on disk,
    or changed since the run, is left out (its file null) and counted in
    ``missing_inputs``."""
    found: dict[str, Any] = {}
    for column, (place, part) in manifest.files.items():
        sha = record.get(column.removesuffix(".path") + ".sha256")
        local = record.get(column)
        if part != "path" or not isinstance(local, str) or not isinstance(sha, str):
            continue
        source = Path(local)
        if sha not in placed:
            target = to / "inputs" / f"{sha}{_suffix(source)}"
            # Gone, or changed since the run: left out, not passed off as what was sent.
            placed[sha] = f"inputs/{target.name}" if _copied(source, target, sha) else None
            result.missing_inputs += placed[sha] is None
        found.update({f"{place}.file": placed[sha], f"{place}.sha256": sha})
    return found


def _suffix(source: Path) -> str:
    """The extension an input keeps in the dataset: its own, else its bytes' kind's."""
    if source.suffix:
        return source.suffix.lower()
    try:
        with source.open("rb") as handle:
            media = sniff(handle.read(HEAD_BYTES))
    except OSError:
        return ""
    return (mimetypes.guess_extension(media.mime) or "") if media is not None else ""


def _copied(source: Path, target: Path, sha: str) -> bool:
    """Copy ``source`` to ``target`` if its bytes still hash to ``sha`` (a copy, never a
    link: the user may edit their image later, and the dataset must keep what was sent)."""
    digest = hashlib.sha256()
    temp = target.with_name(f".{target.name}.part")
    try:
        target.parent.mkdir(exist_ok=True)
        with source.open("rb") as reader, temp.open("wb") as writer:
            for block in iter(lambda: reader.read(1 << 20), b""):
                digest.update(block)
                writer.write(block)
    except OSError:
        temp.unlink(missing_ok=True)
        return False
    if digest.hexdigest() != sha:
        temp.unlink(missing_ok=True)
        return False
    os.replace(temp, target)
    return True


def _metadata_names(manifest: Manifest) -> dict[str, str]:
    """Manifest column -> metadata key, in metadata order; none clashes with ``file_name``."""
    wanted = ["key", "row", *manifest.params, *manifest.inputs, "request_id", "sha256"]
    taken = {"file_name"}
    names = {}
    for column in wanted:
        name = column
        while name in taken or name.endswith(("_file_name", "file_names")):
            name = name + "_" if name.endswith(("file_name", "file_names")) else "input." + name
        taken.add(name)
        names[column] = name
    return names


def _stored(
    video_path: str, store: ObjectStore | None, opened: dict[str, ObjectStore]
) -> tuple[str, ObjectStore | None]:
    """The video's name in the store it is in, and that store (``store``, or for an object's
    URL the store of its folder, opened once in ``opened``); a file's path and None."""
    if not in_store(video_path):
        return video_path, store
    folder, _, name = video_path.rpartition("/")
    if folder not in opened:
        opened[folder] = ObjectStore.open(folder)
    return name, opened[folder]


def _fetched(
    video_path: str, source: Path, target: Path, store: ObjectStore | None, result: ExportResult
) -> bool:
    """Put the video at ``target``: from the store, else from ``source``; False if missing."""
    if store is None:
        if not source.is_file():
            return False
        _link_or_copy(source, target, result)
        return True
    try:
        store.get(video_path, target)
    except DiskError as exc:
        if exc.errno != errno.ENOENT:
            raise
        return False
    result.copied += 1
    return True


def _link_or_copy(
    source: Path, target: Path, result: ExportResult, *, counted: bool = True
) -> None:
    """Hard-link ``source`` at ``target`` (a copy across file systems); ``counted``: a video,
    in the result's counts."""
    try:
        os.link(source, target)
        result.linked += counted
    except OSError:
        shutil.copy2(source, target)
        result.copied += counted
