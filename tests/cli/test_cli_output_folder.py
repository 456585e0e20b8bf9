"""An output folder that cannot be written: exit 2 from plan and run, before anything is sent.

Read-only is a real read-only mount when the tests run as root (root passes every permission
bit), a chmod 555 folder otherwise (the ``read_only_dir`` fixture).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from batchgen.cli import cli

ONE = "1 problem found; nothing was sent.\n"


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.output


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "p.csv"
    path.write_text("prompt\na cat\n")
    return path


def _both(prompts: Path, out: Path) -> list[tuple[int, str]]:
    """plan and run (against a closed port: a request would fail differently) on ``out``."""
    run = (
        "run",
        str(prompts),
        "--out",
        str(out),
        "--provider",
        "mock",
        "--base-url",
        "http://127.0.0.1:9",
    )
    return [_invoke("plan", str(prompts), "--out", str(out)), _invoke(*run)]


def test_output_folder_that_is_a_file(tmp_path: Path, prompts: Path) -> None:
    """An existing file as output folder: plan and run exit 2 naming it."""
    out = tmp_path / "out"
    out.write_text("not a folder")
    expected = f"--out: output folder {out} is a file, not a folder\n{ONE}"
    assert _both(prompts, out) == [(2, expected), (2, expected)]


def test_output_folder_under_a_file(tmp_path: Path, prompts: Path) -> None:
    """A folder that would lie under a file cannot be created: said before anything is sent."""
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    out = blocker / "sub" / "out"
    expected = (
        f"--out: output folder {out} cannot be created: {blocker} is a file, not a folder\n{ONE}"
    )
    assert _both(prompts, out) == [(2, expected), (2, expected)]


def test_output_folder_from_a_spec_is_reported_at_its_line(tmp_path: Path) -> None:
    """A spec's unusable output folder is reported at the spec's line, with the rows' problems."""
    (tmp_path / "taken").write_text("")
    spec = tmp_path / "job.yaml"
    spec.write_text("rows:\n  - prompt: a\n    duration: 7\noutput: taken\n")
    code, output = _invoke("plan", str(spec))
    assert code == 2
    assert f"{spec}:3: column 'duration'" in output
    out = tmp_path / "taken"
    assert f"{spec}:4: field 'output': output folder {out} is a file, not a folder" in output
    assert "2 problems found" in output


def test_read_only_folder_is_refused(read_only_dir: Path, prompts: Path) -> None:
    """A folder that cannot be written in, or one to be created inside it, is refused by plan
    and run alike, and nothing is written there."""
    for out, reason in (
        (read_only_dir, "is not writable (read-only or permission denied)"),
        (read_only_dir / "new", f"cannot be created: {read_only_dir} is not writable"),
    ):
        for code, output in _both(prompts, out):
            assert code == 2
            assert f"--out: output folder {out} {reason}" in output
    assert not list(read_only_dir.iterdir())
