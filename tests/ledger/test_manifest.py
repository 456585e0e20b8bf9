"""The manifest: columns and order, spreadsheet-safe CSV, typed JSONL, atomic files."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from folders import T0, make_folder

from batchgen.ledger.manifest import (
    LEAD,
    TAIL,
    atomic_open,
    atomic_write,
    build_manifest,
    remove_stale_temps,
    spreadsheet_cell,
    write_manifest,
    write_run_json,
)

PARAMS = ["prompt", "duration", "aspect_ratio", "negative_prompt", "cfg_scale"]


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_columns_follow_the_documented_order(tmp_path: Path) -> None:
    """row, key, input columns, parameters sent, then batchgen's own columns."""
    folder = make_folder(tmp_path, "notes,prompt,shot\nfirst,a cat,wide\n")
    write_manifest(folder.ledger, folder.path)
    with (folder.path / "manifest.csv").open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == [*LEAD, "notes", "shot", *PARAMS, *TAIL]
    assert list(read_jsonl(folder.path / "manifest.jsonl")[0]) == header


def test_one_line_per_job_in_input_order_with_state(tmp_path: Path) -> None:
    """Each job is one line in input order, with its status, times, latency and file."""
    folder = make_folder(tmp_path, "prompt\nc\na\nb\nd\n")
    c, a, b, d = folder.keys
    folder.done(a, latency=95.5)
    folder.failed(b, "content policy violation")
    folder.queued(c)
    write_manifest(folder.ledger, folder.path)
    rows = read_jsonl(folder.path / "manifest.jsonl")
    assert [r["key"] for r in rows] == [c, a, b, d]
    assert [r["status"] for r in rows] == ["queued", "done", "failed", "pending"]
    done = rows[1]
    assert done["row"] == 2
    assert done["video_path"] == folder.ledger.get(a).filename
    assert (folder.path / str(done["video_path"])).is_file()
    assert done["submitted_at"] == "2023-11-14T22:13:20Z"
    assert done["completed_at"] == "2023-11-14T22:14:55Z"
    assert done["latency_s"] == 95.5
    assert done["request_id"] == f"req-{a}"
    assert rows[2]["error"] == "content policy violation"
    assert rows[2]["video_path"] is None
    assert rows[3]["submitted_at"] is None


def test_jsonl_keeps_native_types(tmp_path: Path) -> None:
    """JSONL cells are numbers, booleans and null, not text."""
    folder = make_folder(tmp_path, "prompt\na\nb\n")
    folder.done(folder.keys[0])
    write_manifest(folder.ledger, folder.path)
    done, pending = read_jsonl(folder.path / "manifest.jsonl")
    assert done["bytes"] == (folder.path / str(done["video_path"])).stat().st_size
    assert isinstance(done["attempts"], int)
    assert done["possibly_duplicate"] is False
    assert done["cost_usd"] == 0.35
    assert done["cfg_scale"] == 0.5
    assert done["duration"] == "5"
    assert pending["bytes"] is None
    assert pending["latency_s"] is None


def test_input_column_named_like_ours_is_prefixed(tmp_path: Path) -> None:
    """An input column called 'status' or 'key' becomes 'input.status' / 'input.key'."""
    folder = make_folder(tmp_path, "prompt,status,key\na,approved,K1\n")
    write_manifest(folder.ledger, folder.path)
    (row,) = read_jsonl(folder.path / "manifest.jsonl")
    assert row["input.status"] == "approved"
    assert row["input.key"] == "K1"
    assert row["status"] == "pending"
    assert row["key"] == folder.keys[0]


def test_columns_derived_from_jobs_without_plan_meta(tmp_path: Path) -> None:
    """With no 'plan' meta, input columns and parameters come from the jobs themselves."""
    folder = make_folder(tmp_path, "prompt,notes\na,x\n", meta=False)
    manifest = build_manifest(folder.ledger, folder.path)
    assert "notes" in manifest.columns
    assert set(PARAMS) <= set(manifest.columns)
    assert manifest.records[0]["notes"] == "x"


def test_csv_has_bom_crlf_and_quotes_awkward_cells(tmp_path: Path) -> None:
    """UTF-8 BOM, CRLF line ends; commas, quotes, newlines and unicode survive a round trip."""
    prompt = 'a "red" fox, at dusk\nslow pan — 狐'
    folder = make_folder(tmp_path, 'prompt\n"' + prompt.replace('"', '""') + '"\n')
    write_manifest(folder.ledger, folder.path)
    raw = (folder.path / "manifest.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfrow,key,")
    assert raw.count(b"\r\n") == 2  # header and one record; the newline inside is quoted
    table = pd.read_csv(
        folder.path / "manifest.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False
    )
    assert list(table["prompt"]) == [prompt]
    assert list(table["status"]) == ["pending"]


def test_csv_defuses_formulas_but_keeps_numbers(tmp_path: Path) -> None:
    """Text starting with = + - @ gets a leading apostrophe in CSV; JSONL keeps it exact."""
    prompts = ['=HYPERLINK("http://x","y")', "-zoom in on a cat", "+1 cat", "@cat"]
    text = "prompt,notes\n" + "".join(
        f'"{p.replace(chr(34), 2 * chr(34))}",-0.5\n' for p in prompts
    )
    folder = make_folder(tmp_path, text)
    write_manifest(folder.ledger, folder.path)
    with (folder.path / "manifest.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["prompt"] for r in rows] == ["'" + p for p in prompts]
    assert {r["notes"] for r in rows} == {"-0.5"}
    exact = read_jsonl(folder.path / "manifest.jsonl")
    assert [r["prompt"] for r in exact] == prompts


def test_spreadsheet_cell_rules() -> None:
    """Blanks for None, true/false, JSON for lists, numbers untouched, tab/CR defused."""
    assert spreadsheet_cell(None) == ""
    assert spreadsheet_cell(True) == "true"
    assert spreadsheet_cell(-3) == -3
    assert spreadsheet_cell("-12.5e3") == "-12.5e3"
    assert spreadsheet_cell("\tcmd") == "'\tcmd"
    assert spreadsheet_cell(["=a", 1]) == '["=a", 1]'
    assert spreadsheet_cell("plain") == "plain"


def test_absolute_video_path_is_made_relative(tmp_path: Path) -> None:
    """A video path stored absolute is written relative to the output folder."""
    folder = make_folder(tmp_path, "prompt\na\n")
    key = folder.keys[0]
    video = folder.done(key)
    folder.ledger.update(key, video_path=str(video.resolve()))
    assert build_manifest(folder.ledger, folder.path).records[0]["video_path"] == video.name


def test_rewrite_replaces_whole_files_and_leaves_no_temp(tmp_path: Path) -> None:
    """A second write replaces both files; no temp files are left in the folder."""
    folder = make_folder(tmp_path, "prompt\na\n")
    write_manifest(folder.ledger, folder.path)
    folder.done(folder.keys[0])
    write_manifest(folder.ledger, folder.path)
    assert read_jsonl(folder.path / "manifest.jsonl")[0]["status"] == "done"
    assert not [p for p in folder.path.iterdir() if p.name.endswith(".tmp")]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    """An error while writing leaves the previous file whole and removes the temp file."""
    target = tmp_path / "manifest.csv"
    atomic_write(target, "old\n")

    def interrupted_write() -> None:
        with atomic_open(target, "w", encoding="utf-8") as handle:
            handle.write("half of the new")
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        interrupted_write()
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.csv"]


def test_stale_temp_files_are_removed_and_nothing_else(tmp_path: Path) -> None:
    """Temp files of atomic writes untouched for a minute go; a fresh one (a live writer),
    other hidden files, .part downloads and subfolders stay."""
    now = time.time()
    names = [
        ".manifest.csv.1a2b3c4d.tmp",
        ".run.json.00ff00ff.tmp",
        ".manifest.jsonl.deadbeef.tmp",  # fresh: another process may be writing it
        ".notes.tmp",
        ".report.html.NOTAHEX1.tmp",
        "video.mp4.part",
        "manifest.csv",
    ]
    for name in names:
        (tmp_path / name).write_text("x")
        if name != ".manifest.jsonl.deadbeef.tmp":
            os.utime(tmp_path / name, (now - 120, now - 120))
    (tmp_path / ".sub.12345678.tmp").mkdir()
    removed = remove_stale_temps(tmp_path, now=now)
    assert sorted(p.name for p in removed) == [
        ".manifest.csv.1a2b3c4d.tmp",
        ".run.json.00ff00ff.tmp",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names[2:], ".sub.12345678.tmp"])
    assert remove_stale_temps(tmp_path / "missing") == []


def test_atomic_write_takes_bytes_or_text(tmp_path: Path) -> None:
    """Bytes are written as they are, text as UTF-8."""
    atomic_write(tmp_path / "a.bin", b"\x00\xff")
    atomic_write(tmp_path / "b.txt", "é")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\xff"
    assert (tmp_path / "b.txt").read_bytes() == "é".encode()


def test_run_json_is_pretty_json(tmp_path: Path) -> None:
    """run.json holds the info as indented JSON; paths and the like become text."""
    write_run_json(tmp_path, {"endpoint": "x", "out": tmp_path, "started_at": T0})
    text = (tmp_path / "run.json").read_text(encoding="utf-8")
    assert text.startswith("{\n  ")
    assert json.loads(text) == {"endpoint": "x", "out": str(tmp_path), "started_at": T0}
