"""`batchgen status --watch`: a look every --interval, redrawn in place on a terminal."""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from folders import T0, make_folder

import batchgen
import batchgen.cli.folder as cli_folder
from batchgen.cli import cli
from batchgen.cli.folder import redraw
from batchgen.folder.status import read_status, render

REPO = Path(batchgen.__file__).resolve().parent.parent
THREE = "prompt\na\nb\nc\n"


def test_status_says_as_of_when_and_whether_a_run_is_going(tmp_path: Path) -> None:
    """The first line ends with the local time of the look and keeps within 80 columns
    (the endpoint on a line of its own when it would not); then: no run is going."""
    folder = make_folder(tmp_path, THREE)
    lines = render(read_status(folder.path, now=T0)).splitlines()
    assert lines[0].endswith(f", as of {time.strftime('%H:%M:%S', time.localtime(T0))}")
    assert lines[1] == "endpoint: fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
    assert lines[2] == "no run is going"
    short = dataclasses.replace(read_status(folder.path, now=T0), folder="out")
    first, then = render(short).splitlines()[:2]
    assert first.startswith("out: 3 jobs on fal-ai/kling-video/v2.5-turbo/pro/text-to-video")
    assert len(first) <= 80
    assert then == "no run is going"


def test_watch_prints_a_new_block_per_look_off_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off a terminal each look prints a new block, read afresh from the ledger: a job done
    between two looks is counted in the second."""
    folder = make_folder(tmp_path, THREE)
    pauses: list[float] = []

    def pause(seconds: float) -> None:  # the run moves on between two looks
        pauses.append(seconds)
        folder.done(folder.keys[0])

    monkeypatch.setattr(cli_folder, "_pause", pause)
    args = ["status", str(folder.path), "--watch", "--interval", "5", "--count", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    first, second = result.output.split("\n\n")
    assert "  pending 3" in first
    assert "  done 1 · pending 2" in second
    assert pauses == [5.0]
    assert "\x1b[" not in result.output


def test_watch_json_prints_one_line_per_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--watch --json` prints a JSON object per line, with its counts and when it was read."""
    folder = make_folder(tmp_path, THREE)
    monkeypatch.setattr(cli_folder, "_pause", lambda _s: folder.done(folder.keys[1]))
    args = ["status", str(folder.path), "--watch", "--json", "--count", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    looks = [json.loads(line) for line in result.output.splitlines()]
    assert [look["counts"]["done"] for look in looks] == [0, 1]
    assert all(look["as_of"] > T0 for look in looks)


def test_ctrl_c_ends_watch_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C is the way out of --watch: exit 0, not 130."""
    folder = make_folder(tmp_path, THREE)

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_folder, "_pause", interrupt)
    result = CliRunner().invoke(cli, ["status", str(folder.path), "--watch"])
    assert result.exit_code == 0, result.output
    assert result.output.count("as of") == 1


def test_redraw_writes_over_the_previous_frame() -> None:
    """The first frame clears the screen; later ones start top-left, clear each line's end
    and what lies below, so a shorter frame leaves nothing of a longer one."""
    assert redraw("a\nb", first=True) == "\x1b[2J\x1b[Ha\x1b[K\nb\x1b[K\n\x1b[J"
    assert redraw("a", first=False) == "\x1b[Ha\x1b[K\n\x1b[J"


def test_watch_redraws_in_place_on_a_real_terminal(tmp_path: Path) -> None:
    """On a terminal (a pty here) --watch draws each look over the last, with a footer."""
    folder = make_folder(tmp_path, THREE)
    folder.ledger.close()
    master, slave = pty.openpty()
    command = [sys.executable, "-m", "batchgen", "status", str(folder.path), "--watch"]
    command += ["--interval", "0", "--count", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(command, stdout=slave, stderr=subprocess.PIPE, env=env) as proc:
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other end closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
    os.close(master)
    screen = b"".join(chunks).decode()
    assert screen.startswith("\x1b[2J\x1b[H")
    assert screen.count("\x1b[H") == 2
    assert screen.count("as of") == 2
    assert "every 0s; Ctrl-C to stop" in screen
