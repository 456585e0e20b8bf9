"""Before spending: `run` says what it will submit, cost and take, and asks on a terminal."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
from pathlib import Path

from runs import KEY, REPO, mock_config, subprocess_env

from batchgen.mock import MockServer


def prompts(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "p.csv"
    path.write_text("prompt,duration\na red kite,5\na blue door,10\na green field,5\n")
    return path


def args(folder: Path, base_url: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "batchgen",
        "run",
        str(prompts(folder)),
        "--out",
        str(folder / "out"),
        "--provider",
        "fal",
        "--base-url",
        base_url,
        "--progress",
        "lines",
        "--time-scale",
        "0.001",
        *extra,
    ]


def on_a_terminal(command: list[str], answer: bytes) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as stdin, stdout and stderr; type ``answer``."""
    main, child = pty.openpty()
    env = subprocess_env(FAL_KEY=KEY, COLUMNS="80")
    proc = subprocess.Popen(command, stdin=child, stdout=child, stderr=child, env=env, cwd=REPO)
    os.close(child)
    seen = b""
    sent = False
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if not sent and b"Continue?" in seen:
            os.write(main, answer)
            sent = True
    os.close(main)
    return proc.wait(60), seen.decode(errors="replace")


async def test_terminal_run_asks_and_a_no_sends_nothing(tmp_path: Path) -> None:
    """On a terminal, `run` shows jobs, estimated cost and duration, and asks; 'n' sends
    nothing and exits 0."""
    async with MockServer(mock_config()) as server:
        code, output = await asyncio.to_thread(
            on_a_terminal, args(tmp_path, server.base_url), b"n\n"
        )
        assert server.stats()["requests"] == {}
    assert code == 0, output
    assert "about to run 3 job(s) on fal-ai/kling-video/v2.5-turbo/pro/text-to-video" in output
    assert "3 to submit, estimated $1.40 at list price" in output
    assert "estimated time: ~1:50 (8 at a time, ~110 s each)" in output
    assert "nothing was sent" in output


async def test_yes_or_no_terminal_runs_without_asking(tmp_path: Path) -> None:
    """`--yes` on a terminal, or stdin that is not a terminal, runs without a question; a
    --max-cost that covers part of the plan is warned about either way."""
    async with MockServer(mock_config()) as server:
        base = server.base_url
        code, output = await asyncio.to_thread(
            on_a_terminal, args(tmp_path / "a", base, "--yes"), b""
        )
        assert code == 0, output
        assert "Continue?" not in output
        done = await asyncio.to_thread(
            subprocess.run,
            args(tmp_path / "b", base, "--max-cost", "1"),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=subprocess_env(FAL_KEY=KEY),
            timeout=60,
        )
    assert "Continue?" not in done.stderr
    assert (
        "warning: --max-cost $1.00 covers about 2 of these 3 job(s) ($1.40 in all)" in done.stderr
    )


def test_on_finish_runs_a_command_with_the_outcome_and_no_key(tmp_path: Path) -> None:
    """--on-finish runs the user's command when the run ends, with the outcome, counts and
    spend in its environment, and without the API key's variable."""
    seen = tmp_path / "seen.txt"
    command = [
        *args(tmp_path, "unused")[:5],
        "--out",
        str(tmp_path / "out"),
        "--mock",
        "--mock-time-scale",
        "0.001",
        "--on-finish",
        f"env > {seen}",
    ]
    done = subprocess.run(
        command, env=subprocess_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    env = dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)
    assert env["BATCHGEN_OUTCOME"] == "done"
    assert (env["BATCHGEN_DONE"], env["BATCHGEN_FAILED"]) == ("3", "0")
    assert env["BATCHGEN_SPENT_USD"] == "1.40"
    assert env["BATCHGEN_OUT"] == str(tmp_path / "out")
    assert "BATCHGEN_MOCK_KEY" not in env


async def test_retry_failed_asks_before_paying_again(tmp_path: Path) -> None:
    """`--retry-failed all` on a terminal counts the failed jobs it would send again, names
    where they go, and asks; 'n' sends nothing."""
    async with MockServer(mock_config(policy_word="kite")) as server:
        first = await asyncio.to_thread(
            subprocess.run,
            args(tmp_path, server.base_url),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=subprocess_env(FAL_KEY=KEY),
            timeout=60,
        )
        assert first.returncode == 1, first.stderr  # the kite was refused
        before = server.stats()["requests"]["submit"]
        command = [*args(tmp_path, server.base_url), "--retry-failed", "all"]
        code, output = await asyncio.to_thread(on_a_terminal, command, b"n\n")
        assert server.stats()["requests"]["submit"] == before
        base = server.base_url
    assert code == 0, output
    assert f"via fal ({base})" in output
    assert "1 to submit, estimated $0.35 at list price" in output
    assert "nothing was sent" in output
