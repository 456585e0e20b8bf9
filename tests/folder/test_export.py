"""batchgen export: the manifest as CSV/JSONL/Parquet, and a Hugging Face videofolder."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.json as paj
import pytest
import runs
from click.testing import CliRunner
from folders import Folder, make_folder

from batchgen.cli import cli
from batchgen.errors import UsageError
from batchgen.folder.export import export, uniform
from batchgen.ledger.store import Ledger
from batchgen.mock import MockServer

# The split keywords `datasets` looks for in file and folder names (data_files.py).
SPLIT_WORDS = re.compile(r"train|training|validation|valid|dev|val|test|testing|eval")


def sample(tmp_path: Path, header: str = "prompt,duration,notes") -> Folder:
    rows = "a test drive at dusk,5,first\na validation of cats,10,\nthird,5,x\nfourth,10,y\n"
    folder = make_folder(tmp_path, f"{header}\n{rows}")
    a, b, c, _d = folder.keys
    folder.done(a, latency=80)
    folder.done(b, latency=95.5)
    folder.failed(c, "Runner disconnected", error_type="runner_disconnected")
    return folder


def test_csv_and_jsonl_match_the_manifest(tmp_path: Path) -> None:
    """csv and jsonl exports are the manifest's files, written where asked."""
    folder = sample(tmp_path)
    csv_result = export(folder.path, "csv", tmp_path / "x" / "all.csv")
    jsonl_result = export(folder.path, "jsonl", tmp_path / "all.jsonl")
    assert csv_result.rows == jsonl_result.rows == 4
    assert (tmp_path / "x" / "all.csv").read_bytes().startswith(b"\xef\xbb\xbfrow,key,")
    rows = [json.loads(x) for x in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["done", "done", "failed", "pending"]


def test_parquet_has_typed_nullable_columns(tmp_path: Path) -> None:
    """Parquet keeps integers, booleans and floats as such, nulls as nulls, times as UTC."""
    folder = sample(tmp_path)
    export(folder.path, "parquet", tmp_path / "all.parquet")
    frame = pd.read_parquet(tmp_path / "all.parquet")
    assert list(frame["status"]) == ["done", "done", "failed", "pending"]
    assert str(frame["bytes"].dtype) == "Int64"
    assert frame["bytes"].isna().tolist() == [False, False, True, True]
    assert str(frame["possibly_duplicate"].dtype) == "boolean"
    assert str(frame["submitted_at"].dtype).startswith("datetime64")
    assert str(frame["submitted_at"].dt.tz) == "UTC"
    assert frame["latency_s"].iloc[1] == 95.5
    assert str(frame["video_url"].dtype) == "string"
    assert frame["notes"].iloc[1] is pd.NA


def test_parquet_without_pyarrow_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pyarrow, a parquet export is refused with the extra to install."""
    folder = sample(tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name)
    )
    with pytest.raises(UsageError, match=r"pip install 'batchgen\[parquet\]'"):
        export(folder.path, "parquet", tmp_path / "all.parquet")


def test_hf_folder_follows_the_videofolder_convention(tmp_path: Path) -> None:
    """Done videos sit beside metadata.jsonl, whose file_name names each one relative to it."""
    folder = sample(tmp_path)
    target = tmp_path / "dataset"
    result = export(folder.path, "hf", target)
    assert result.rows == 2
    lines = (target / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    meta = [json.loads(line) for line in lines]
    assert sorted(p.name for p in target.iterdir()) == sorted(
        ["metadata.jsonl", *(m["file_name"] for m in meta)]
    )
    first = meta[0]
    assert list(first)[:3] == ["file_name", "key", "row"]
    assert first["prompt"] == "a test drive at dusk"
    assert first["duration"] == "5"
    assert first["notes"] == "first"
    assert first["request_id"] == f"req-{first['key']}"
    for m in meta:
        data = (target / m["file_name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == m["sha256"]
        assert not SPLIT_WORDS.search(m["file_name"])  # no accidental test/validation split


def test_hf_metadata_reads_with_pyarrow_json(tmp_path: Path) -> None:
    """pyarrow's JSON reader (what `datasets` uses) reads the metadata with a string file_name."""
    folder = sample(tmp_path)
    export(folder.path, "hf", tmp_path / "dataset")
    table = paj.read_json(tmp_path / "dataset" / "metadata.jsonl")
    assert table.num_rows == 2
    assert str(table.schema.field("file_name").type) == "string"
    video_columns = [n for n in table.column_names if n.endswith(("file_name", "file_names"))]
    assert video_columns == ["file_name"]


def test_hf_renames_columns_datasets_would_read_as_videos(tmp_path: Path) -> None:
    """Input columns 'file_name' and '*_file_name' are renamed so only one video column exists."""
    folder = sample(tmp_path, header="prompt,duration,source_file_name")
    folder.ledger.set_meta(
        "plan", {**folder.ledger.meta("plan"), "extra_columns": ["source_file_name"]}
    )
    export(folder.path, "hf", tmp_path / "dataset")
    first = json.loads((tmp_path / "dataset" / "metadata.jsonl").read_text().splitlines()[0])
    assert "source_file_name" not in first
    assert first["source_file_name_"] == "first"


def test_hf_links_videos_on_the_same_file_system(tmp_path: Path) -> None:
    """Videos are hard links when possible (no second copy on disk)."""
    folder = sample(tmp_path)
    result = export(folder.path, "hf", tmp_path / "dataset")
    assert (result.linked, result.copied) == (2, 0)
    video = next(p for p in (tmp_path / "dataset").iterdir() if p.suffix == ".mp4")
    assert video.stat().st_nlink == 2


def test_hf_reports_missing_files_and_refuses_full_folder(tmp_path: Path) -> None:
    """A done job whose file is gone is reported; a non-empty target folder is refused."""
    folder = sample(tmp_path)
    gone = folder.ledger.get(folder.keys[0])
    (folder.path / gone.filename).unlink()
    result = export(folder.path, "hf", tmp_path / "dataset")
    assert result.missing == [gone.key]
    assert result.rows == 1
    with pytest.raises(UsageError, match="not an empty folder"):
        export(folder.path, "hf", tmp_path / "dataset")


def test_uniform_gives_each_column_one_type() -> None:
    """Ints mixed with floats become floats; other mixes and lists become text."""
    rows = [{"a": 1, "b": "x", "c": [1]}, {"a": 0.5, "b": 2, "c": None}]
    assert uniform(rows, ["a", "b", "c"]) == [
        {"a": 1.0, "b": "x", "c": "[1]"},
        {"a": 0.5, "b": "2", "c": None},
    ]


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    """Only csv, jsonl, parquet and hf are known."""
    folder = sample(tmp_path)
    with pytest.raises(UsageError, match="unknown export format 'xml'"):
        export(folder.path, "xml", tmp_path / "x.xml")


def test_cli_export(tmp_path: Path) -> None:
    """`batchgen export DIR --format F --to PATH` writes and says how many rows."""
    folder = sample(tmp_path)
    runner = CliRunner()
    out = runner.invoke(
        cli, ["export", str(folder.path), "--format", "jsonl", "--to", str(tmp_path / "a.jsonl")]
    )
    assert out.exit_code == 0, out.output
    assert "wrote 4 rows" in out.output
    hf = runner.invoke(
        cli, ["export", str(folder.path), "--format", "hf", "--to", str(tmp_path / "ds")]
    )
    assert hf.exit_code == 0, hf.output
    assert "wrote 2 videos (2 linked, 0 copied)" in hf.output
    missing = runner.invoke(
        cli, ["export", str(tmp_path / "nope"), "--format", "csv", "--to", str(tmp_path / "b.csv")]
    )
    assert missing.exit_code == 2
    assert "not a batchgen output folder" in missing.output


async def test_hf_export_of_a_real_run(tmp_path: Path) -> None:
    """After a run on the emulator, the dataset holds each served video, byte for byte."""
    out = tmp_path / "out"
    async with MockServer(runs.mock_config()) as server:
        result = await runs.run(runs.plan_for(runs.prompts(tmp_path, 5), out), server)
        served = server.stats()["files"]
    assert result.outcome == "done", result.message
    exported = export(out, "hf", tmp_path / "dataset")
    assert exported.rows == 5
    for line in (tmp_path / "dataset" / "metadata.jsonl").read_text().splitlines():
        meta = json.loads(line)
        video = tmp_path / "dataset" / meta["file_name"]
        assert (
            hashlib.sha256(video.read_bytes()).hexdigest() == served[meta["request_id"]]["sha256"]
        )
        assert meta["notes"].startswith("note ")


async def test_hf_export_loads_with_datasets_videofolder(tmp_path: Path) -> None:
    """`datasets.load_dataset("videofolder", data_dir=...)` reads the export of a real run."""
    pytest.importorskip("datasets")
    out = tmp_path / "out"
    async with MockServer(runs.mock_config()) as server:
        result = await runs.run(runs.plan_for(runs.prompts(tmp_path, 4), out), server)
    assert result.outcome == "done", result.message
    export(out, "hf", tmp_path / "dataset")
    _check_with_datasets(tmp_path / "dataset", out, tmp_path / "hf-home")


def _check_with_datasets(dataset: Path, out: Path, hf_home: Path) -> None:
    # A child process: datasets reads its offline switches at import, and must not touch a hub.
    script = (
        "import json, sys, datasets\n"
        "ds = datasets.load_dataset('videofolder', data_dir=sys.argv[1])['train']\n"
        "ds = ds.cast_column('video', datasets.Video(decode=False))\n"
        "print(json.dumps([{**row, 'video': row['video']['path']} for row in ds]))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(hf_home)}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(dataset)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout.splitlines()[-1])
    ledger = {row.key: row for row in Ledger.in_folder(out, readonly=True).jobs()}
    assert sorted(r["key"] for r in rows) == sorted(ledger)
    for row in rows:
        job = ledger[row["key"]]
        assert row["prompt"] == job.payload["prompt"]
        assert row["request_id"] == job.request_id
        assert row["sha256"] == job.sha256
        assert hashlib.sha256(Path(row["video"]).read_bytes()).hexdigest() == job.sha256


async def test_hf_export_keeps_the_input_images_and_loads_with_datasets(tmp_path: Path) -> None:
    """An image-to-video run's dataset holds each input image once in inputs/ (by content),
    named in metadata by relative path and sha256 beside each video; datasets loads it."""
    pytest.importorskip("datasets")
    out, _ = await runs.image_run(tmp_path, [("a cat", 0), ("a dog", 1), ("the cat again", 0)])
    dataset = tmp_path / "dataset"
    export(out, "hf", dataset)
    rows = [json.loads(line) for line in (dataset / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    assert len(list((dataset / "inputs").iterdir())) == 2
    for row in rows:
        image = dataset / row["image_url.file"]
        assert hashlib.sha256(image.read_bytes()).hexdigest() == row["image_url.sha256"]
    by_prompt = {row["prompt"]: row for row in rows}
    assert by_prompt["a cat"]["image_url.file"] == by_prompt["the cat again"]["image_url.file"]
    _check_with_datasets(dataset, out, tmp_path / "hf-home")


async def test_hf_export_leaves_out_an_input_changed_since_the_run(tmp_path: Path) -> None:
    """An image edited after the run is not passed off as the one sent: it is left out
    (null, its sha256 kept) and counted; the others are copies, never links to the user's
    files."""
    out, (cat, dog) = await runs.image_run(tmp_path, [("a cat", 0), ("a dog", 1)])
    dog.write_bytes(dog.read_bytes() + b"edited")
    result = export(out, "hf", tmp_path / "dataset")
    assert result.missing_inputs == 1
    rows = {
        r["prompt"]: r
        for r in map(json.loads, (tmp_path / "dataset" / "metadata.jsonl").read_text().splitlines())
    }
    assert rows["a dog"]["image_url.file"] is None
    kept = tmp_path / "dataset" / rows["a cat"]["image_url.file"]
    assert kept.read_bytes() == cat.read_bytes()
    assert kept.stat().st_nlink == 1
