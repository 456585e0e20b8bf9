"""Any locale: file and folder names no encoding holds (UTF-8 mode off under LC_ALL=C, or a
byte that is not UTF-8) never raise; the ledger keeps them, messages and pages show them
escaped."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from media_files import png
from runs import subprocess_env

from batchgen.cli import cli
from batchgen.fsnames import (
    argument_text,
    escaped,
    install_output_escapes,
    json_escaped,
    json_text,
)
from batchgen.ledger.store import Ledger

FOLDER = b"caf\xc3\xa9-\xff"  # an é in UTF-8, then a byte that is UTF-8 nowhere
FAST = ["--mock", "--mock-time-scale", "0.001", "--progress", "lines", "--yes"]
I2V = "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"


def c_locale(args: list[str | bytes], cwd: bytes) -> subprocess.CompletedProcess[bytes]:
    """``python -m batchgen ARGS`` with UTF-8 mode off in the C locale, as some servers run."""
    env = subprocess_env(PYTHONUTF8="0", LC_ALL="C", PYTHONIOENCODING="")
    env.pop("LANG", None)
    return subprocess.run(
        [sys.executable, "-m", "batchgen", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_json_text_reads_back_the_very_name() -> None:
    """JSON with lone surrogates is valid UTF-8 and loads back to the same text."""
    name = "caf\udcc3\udca9-\udcff"
    text = json_text(json.dumps({"path": name}, ensure_ascii=False))
    assert text == '{"path": "caf\\udcc3\\udca9-\\udcff"}'
    text.encode("utf-8")
    assert json.loads(text) == {"path": name}


def test_escaped_shows_utf8_as_text_and_other_bytes_as_hex() -> None:
    """The bytes of é (stand-ins under LC_ALL=C) show as é; a byte that is no UTF-8 as \\xff,
    inside JSON text too (for pages)."""
    assert escaped("caf\udcc3\udca9-\udcff") == "café-\\xff"
    assert escaped("café-\udcff") == "café-\\xff"
    assert escaped("plain") == "plain"
    assert json.loads(json_escaped('{"in": "caf\udcc3\udca9-\udcff"}')) == {"in": "café-\\xff"}


def test_an_argument_is_the_utf8_its_bytes_spell() -> None:
    """A typed café arrives as stand-ins in the C locale and is read as café; other bytes are
    refused by name."""
    assert argument_text("caf\udcc3\udca9") == "café"
    with pytest.raises(ValueError, match=r"'caf\\xff' is not UTF-8 text"):
        argument_text("caf\udcff")


def test_standard_streams_escape_what_they_cannot_encode(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ASCII stream writes UTF-8 (as click does) and shows undecodable bytes escaped; a
    UTF-8 stream shows them escaped too, instead of raising."""
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    utf8_err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", ascii_out)
    monkeypatch.setattr(sys, "stderr", utf8_err)
    install_output_escapes()
    for stream in (ascii_out, utf8_err):
        stream.write("caf\udcc3\udca9-\udcff \u2019")
        stream.flush()
        assert stream.buffer.getvalue() == "café-\\xff \u2019".encode()  # type: ignore[attr-defined]


def test_a_run_in_the_c_locale_with_names_it_cannot_encode(tmp_path: Path) -> None:
    """Under PYTHONUTF8=0 LC_ALL=C, a prompt file and its folder named with non-ASCII bytes run,
    resume and report status without a traceback; the ledger keeps the very path; messages
    show the names escaped."""
    folder = os.fsencode(tmp_path) + b"/" + FOLDER
    os.mkdir(folder)
    with open(folder + b"/shots-\xc3\xa9\xfe.csv", "w", encoding="utf-8") as handle:
        handle.write("prompt\na fox in the \u00e9t\u00e9 dawn\na cat\n")
    done = c_locale(["run", b"shots-\xc3\xa9\xfe.csv", *FAST], folder)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
    assert b"2 of 2 done" in done.stderr
    assert b"output in out/shots-\xc3\xa9\\xfe" in done.stderr
    out = folder + b"/out/shots-\xc3\xa9\xfe"
    with Ledger.in_folder(Path(os.fsdecode(out)), readonly=True) as ledger:
        assert os.fsencode(ledger.meta("plan")["input_path"]) == b"shots-\xc3\xa9\xfe.csv"
    again = c_locale(["run", "--out", out, *FAST], folder)
    assert again.returncode == 0, again.stderr
    assert b"2 of 2 done" in again.stderr
    status = c_locale(["status", out], folder)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(os.fsencode(escaped(os.fsdecode(out))) + b": 2 jobs")


def test_images_named_with_undecodable_bytes_run_report_and_export(tmp_path: Path) -> None:
    """Images whose names hold a byte that is not UTF-8 are uploaded and run; the ledger keeps
    their very paths; the manifest, log, report and exports show them escaped."""
    photos = Path(os.fsdecode(os.fsencode(tmp_path) + b"/" + FOLDER))
    photos.mkdir()
    for shade, name in enumerate((b"a-\xc3\xa9.png", b"b-\xff.png")):
        Path(os.fsdecode(os.fsencode(photos) + b"/" + name)).write_bytes(png(shade * 40))
    out = tmp_path / "out-\udcfe"
    runner = CliRunner()
    args = ["run", str(photos), "--endpoint", I2V, "--set", "prompt=slow push-in"]
    done = runner.invoke(cli, [*args, "--out", str(out), *FAST])
    assert done.exit_code == 0, done.output
    assert f"output in {tmp_path}/out-\\xfe" in done.output
    with Ledger.in_folder(out, readonly=True) as ledger:
        paths = sorted(job.files["image_url"]["path"] for job in ledger.jobs() if job.files)
    assert [os.fsencode(p).rsplit(b"/", 1)[1] for p in paths] == [b"a-\xc3\xa9.png", b"b-\xff.png"]
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["image_url.path"] for r in records) == paths
    assert "/b-\\xff.png," in (out / "manifest.csv").read_text(encoding="utf-8-sig")
    assert "/b-\\xff.png (73 bytes" in (out / "batchgen.log").read_text(encoding="utf-8")
    assert runner.invoke(cli, ["report", str(out)]).exit_code == 0
    assert "<h1>batchgen report: out-\\xfe</h1>" in (out / "report.html").read_text("utf-8")
    for fmt in ("csv", "jsonl", "parquet", "hf"):
        to = tmp_path / f"export-{fmt}-\udcff"
        exported = runner.invoke(cli, ["export", str(out), "--format", fmt, "--to", str(to)])
        assert exported.exit_code == 0, exported.output
    frame = pd.read_parquet(io.BytesIO((tmp_path / "export-parquet-\udcff").read_bytes()))
    assert sorted(frame["image_url.path"].str.rsplit("/", n=1).str[1]) == ["a-é.png", "b-\\xff.png"]


def test_a_bad_name_or_argument_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    """A plan problem names its file escaped; an argument whose bytes are not UTF-8 is a usage
    error naming it (exit 2)."""
    sheet = tmp_path / "shots-\udcff.csv"
    sheet.write_text("prompt,duration\na fox,7\n")
    runner = CliRunner()
    bad = runner.invoke(cli, ["plan", str(sheet)])
    assert bad.exit_code == 2
    assert bad.output.startswith(f"{tmp_path}/shots-\\xff.csv:2: column 'duration': '7'")
    wrong = runner.invoke(cli, ["plan", str(sheet), "--set", "negative_prompt=caf\udcff"])
    assert wrong.exit_code == 2
    assert "Invalid value for '--set': 'negative_prompt=caf\\xff' is not UTF-8 text" in wrong.output
