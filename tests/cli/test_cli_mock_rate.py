"""A --mock run's default rate keeps up with its emulator's clock; a rate the user set wins."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from batchgen.cli import cli

FAST = ["--progress", "none", "--mock-time-scale", "0.001", "--yes"]


def rate_of(out: Path) -> float:
    """The rate the run in ``out`` ran at, as its run.json records it."""
    settings = json.loads((out / "run.json").read_text(encoding="utf-8"))["settings"]
    return float(settings["rate"])


def test_a_fast_mock_run_raises_the_default_rate(tmp_path: Path) -> None:
    """At --mock-time-scale 0.001 (50x the demo's clock) the default 10/s becomes 200/s."""
    (tmp_path / "p.csv").write_text("prompt\na red kite\na blue door\n", encoding="utf-8")
    out = tmp_path / "out"
    done = CliRunner().invoke(cli, ["run", str(tmp_path / "p.csv"), "--out", str(out), *FAST])
    assert done.exit_code == 0, done.output
    assert rate_of(out) == 200


def test_a_rate_from_the_command_line_or_the_spec_wins(tmp_path: Path) -> None:
    """--rate 7 is kept by the run and by its resume; a job spec's run: {rate: 9} is kept."""
    (tmp_path / "p.csv").write_text("prompt\na red kite\n", encoding="utf-8")
    given = tmp_path / "given"
    args = ["run", str(tmp_path / "p.csv"), "--out", str(given), "--rate", "7", *FAST]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert rate_of(given) == 7
    again = CliRunner().invoke(cli, ["run", "--out", str(given), *FAST])
    assert again.exit_code == 0, again.output
    assert rate_of(given) == 7
    spec = tmp_path / "job.yaml"
    spec.write_text("input: p.csv\nrun: {rate: 9}\n", encoding="utf-8")
    specced = tmp_path / "specced"
    done = CliRunner().invoke(cli, ["run", str(spec), "--out", str(specced), *FAST])
    assert done.exit_code == 0, done.output
    assert rate_of(specced) == 9
