"""`batchgen cancel` on the command line: key prefixes, rows, a summary, exit codes."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from click.testing import CliRunner
from folders import make_folder

from batchgen.cli import cli
from batchgen.ledger.states import JobStatus

S = JobStatus
TWENTY = "prompt\n" + "".join(f"shot {i}\n" for i in range(20))


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["cancel", *args], env={"FAL_KEY": None})
    return result.exit_code, result.output


def test_key_prefixes_name_jobs_and_bad_ones_are_named(tmp_path: Path) -> None:
    """--keys takes the 8 characters file names show; an ambiguous or unknown prefix is
    named (exit 2) and nothing is cancelled."""
    folder = make_folder(tmp_path, TWENTY)
    by_first: dict[str, list[str]] = defaultdict(list)
    for key in folder.keys:  # 20 keys over 16 hex digits: two share a first character
        by_first[key[0]].append(key)
    shared = next(first for first, keys in by_first.items() if len(keys) > 1)
    code, output = invoke(str(folder.path), "--keys", f"{shared},zzzz")
    assert code == 2
    assert "no job has a key starting 'zzzz'" in output
    assert f"more than one job has a key starting '{shared}'" in output
    assert all(job.status is S.PENDING for job in folder.ledger.jobs())
    one = folder.keys[3]
    code, output = invoke(str(folder.path), "--keys", one[:8].upper())
    assert (code, output) == (0, f"{folder.path}: 1 job\n  1 cancelled before submit\n")
    assert [job.key for job in folder.ledger.jobs([S.CANCELLED])] == [one]


def test_rows_cancel_the_jobs_of_those_rows(tmp_path: Path) -> None:
    """--rows 2,4-5 cancels the jobs of those rows only; -v adds a line per job."""
    folder = make_folder(tmp_path, TWENTY)
    code, output = invoke(str(folder.path), "--rows", "2,4-5", "-v")
    assert code == 0, output
    lines = output.splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [["row", "2"], ["row", "4"], ["row", "5"]]
    assert lines[3:] == [f"{folder.path}: 3 jobs", "  3 cancelled before submit"]
    assert [job.row for job in folder.ledger.jobs([S.CANCELLED])] == [2, 4, 5]


def test_bad_rows_exit_2(tmp_path: Path) -> None:
    """A row the input does not have, or a malformed --rows, is a usage error (exit 2)."""
    folder = make_folder(tmp_path, TWENTY)
    code, output = invoke(str(folder.path), "--rows", "3,99")
    assert code == 2
    assert "no job at row 99 (the input has rows 1 to 20)" in output
    code, output = invoke(str(folder.path), "--rows", "three")
    assert code == 2
    assert "--rows takes row numbers" in output
    assert all(job.status is S.PENDING for job in folder.ledger.jobs())


def test_in_flight_leaves_pending_jobs(tmp_path: Path) -> None:
    """--in-flight cancels only jobs at the provider: with none, nothing is cancelled."""
    folder = make_folder(tmp_path, TWENTY)
    assert invoke(str(folder.path), "--in-flight") == (0, "nothing to cancel\n")
    assert all(job.status is S.PENDING for job in folder.ledger.jobs())
