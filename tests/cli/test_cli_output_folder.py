"""An output folder that cannot be written: exit 2 from plan and run, before anything is sent.

Read-only is tested two ways. Permission bits (chmod 555) hold only for an ordinary user, since
root passes them all; that test runs when not root. A read-only mount cannot be made in a test,
so ``os.access`` (what batchgen asks, and what reports a read-only mount even to root) is made
to answer "no" for one folder; that test runs everywhere.
"""

from __future__ import annotations

import os
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


@pytest.mark.skipif(os.geteuid() == 0, reason="root passes every permission bit")
def test_read_only_folder_by_permission_bits(tmp_path: Path, prompts: Path) -> None:
    """A folder without write permission, or one to be created inside it, is refused."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for out, reason in (
            (locked, "is not writable"),
            (locked / "new", f"cannot be created: {locked} is not writable"),
        ):
            for code, output in _both(prompts, out):
                assert code == 2
                assert f"--out: output folder {out} {reason}" in output
    finally:
        locked.chmod(0o755)


def test_read_only_folder_as_access_reports_it(
    tmp_path: Path, prompts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder os.access calls not writable (a read-only mount) is refused by plan and run."""
    mount = tmp_path / "mount"
    mount.mkdir()
    real = os.access

    def access(path: object, mode: int, **kwargs: object) -> bool:
        if Path(str(path)) == mount and mode & os.W_OK:
            return False
        return real(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    expected = (
        f"--out: output folder {mount} is not writable (read-only or permission denied)\n{ONE}"
    )
    assert _both(prompts, mount) == [(2, expected), (2, expected)]
    assert not list(mount.iterdir())
