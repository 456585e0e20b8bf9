"""Odd output folders: names with URI characters, and a ledger that is not one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from batchgen.cli import cli


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.output


def prompts(folder: Path) -> Path:
    path = folder / "p.csv"
    path.write_text("prompt\na red kite\na blue door\n", encoding="utf-8")
    return path


def test_folder_named_with_uri_characters_works_everywhere(tmp_path: Path) -> None:
    """An output folder whose name holds '#', '%' and '?' is opened by path: run, status,
    report and export all work on it, and nothing appears outside it."""
    source = prompts(tmp_path)
    out = tmp_path / "take #2 at 50% ?final"
    code, output = invoke("run", str(source), "--out", str(out), "--mock", "--progress", "lines")
    assert code == 0, output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["p.csv", out.name])
    code, output = invoke("status", str(out))
    assert code == 0, output
    assert "done 2" in output
    assert invoke("report", str(out))[0] == 0
    assert (out / "report.html").is_file()
    export = tmp_path / "export.jsonl"
    assert invoke("export", str(out), "--format", "jsonl", "--to", str(export))[0] == 0
    assert len(export.read_text(encoding="utf-8").splitlines()) == 2


def test_garbage_ledger_is_named_by_every_command(tmp_path: Path) -> None:
    """A batchgen.db that is not a database (or not a ledger) makes every command say so,
    exit 2, without a traceback and without sending anything."""
    source = prompts(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    for content in (b"\x00garbage bytes, not SQLite" * 100, _other_sqlite(tmp_path)):
        (out / "batchgen.db").write_bytes(content)
        for args in (
            ("status", str(out)),
            ("report", str(out)),
            ("export", str(out), "--format", "csv", "--to", str(tmp_path / "x.csv")),
            ("cancel", str(out), "--provider", "mock"),
            ("run", "--out", str(out)),
            ("run", str(source), "--out", str(out), "--mock"),
        ):
            code, output = invoke(*args)
            assert code == 2, (args, output)
            assert f"{out / 'batchgen.db'} is not a batchgen ledger" in output, (args, output)


def _other_sqlite(folder: Path) -> bytes:
    """The bytes of an SQLite database of someone else's (no jobs table)."""
    path = folder / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    return path.read_bytes()
