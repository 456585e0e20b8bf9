"""Enough file descriptors: the soft limit raised toward the hard one, else a lower concurrency
with one warning; out of descriptors, no traceback and no "disk" in the words."""

from __future__ import annotations

import errno
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from runs import prompts, rows, subprocess_env

from batchgen.errors import DiskError
from batchgen.ledger.states import JobStatus
from batchgen.run.descriptors import fit, needed


def recorder() -> tuple[list[tuple[int, int]], Callable[[int, int], None]]:
    calls: list[tuple[int, int]] = []
    return calls, lambda soft, hard: calls.append((soft, hard))


def test_a_limit_high_enough_is_left_alone() -> None:
    """A soft limit above the need: nothing raised, nothing lowered, no warning."""
    calls, setlimit = recorder()
    room = fit(8, 4, limits=(1024, 4096), setlimit=setlimit)
    assert (room.concurrency, room.downloads, room.limit, room.warning) == (8, 4, 1024, None)
    assert calls == []


def test_the_soft_limit_is_raised_toward_the_hard_one() -> None:
    """A soft limit below the need is raised to it (the hard limit allowing): no warning."""
    calls, setlimit = recorder()
    want = needed(200, 4, emulator=True)
    room = fit(200, 4, emulator=True, limits=(256, 65536), setlimit=setlimit)
    assert calls == [(want, 65536)]
    assert (room.concurrency, room.downloads, room.limit, room.warning) == (200, 4, want, None)


def test_a_hard_limit_too_low_lowers_the_concurrency_with_one_warning() -> None:
    """Raised to the hard limit and still short: the concurrency drops to what fits, and the
    warning says how far and which `ulimit -n` would give the full concurrency."""
    calls, setlimit = recorder()
    room = fit(200, 4, emulator=True, limits=(64, 128), setlimit=setlimit)
    assert calls == [(128, 128)]
    assert room.downloads == 4
    assert 1 <= room.concurrency < 200
    assert needed(room.concurrency, 4, emulator=True) <= 128
    assert needed(room.concurrency + 1, 4, emulator=True) > 128
    assert room.warning is not None
    assert "only 128 files may be open at once" in room.warning
    assert f"--concurrency 200 to {room.concurrency}" in room.warning
    assert f"ulimit -n {needed(200, 4, emulator=True)}" in room.warning
    assert "disk" not in room.warning


def test_a_tiny_limit_lowers_downloads_too_and_a_refused_raise_is_survived() -> None:
    """When raising is refused and one job does not fit beside the downloads, downloads are
    lowered too, never below one job and one download."""

    def refuse(soft: int, hard: int) -> None:
        raise ValueError("not allowed")

    room = fit(50, 8, limits=(44, 4096), setlimit=refuse)
    assert (room.concurrency, room.limit) == (1, 44)
    assert 1 <= room.downloads < 8
    assert room.warning is not None
    assert f"--download-concurrency 8 to {room.downloads}" in room.warning
    least = fit(50, 8, limits=(10, 10), setlimit=refuse)
    assert (least.concurrency, least.downloads) == (1, 1)


def test_too_many_open_files_is_not_called_a_disk_problem() -> None:
    """EMFILE from a file that cannot be opened names the limit and `ulimit -n`."""
    error = DiskError.from_os("videos/a.mp4", OSError(errno.EMFILE, "Too many open files"))
    assert error.open_files
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert str(error) == (
        f"cannot open videos/a.mp4: too many open files (the limit is {soft}: raise it with "
        "ulimit -n)"
    )


def limited(soft: int, hard: int) -> Callable[[], None]:
    """A preexec_fn giving the child these limits of open files."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def run_under(folder: Path, soft: int, hard: int) -> subprocess.CompletedProcess[str]:
    """`batchgen run --mock --concurrency 200` of 40 jobs in a child with these limits."""
    source = prompts(folder, 40)
    args = [sys.executable, "-m", "batchgen", "run", str(source), "--mock"]
    args += ["--out", str(folder / "out"), "--concurrency", "200", "--yes"]
    args += ["--progress", "lines", "--time-scale", "0.001", "--rate", "5000"]
    args += ["--job-timeout", "100000", "--expect-latency", "20", "--max-poll-interval", "30"]
    return subprocess.run(
        args,
        env=subprocess_env(),
        preexec_fn=limited(soft, hard),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("soft", "hard", "warned"), [(64, 64, True), (64, 4096, False)])
def test_a_run_with_few_descriptors_finishes_without_a_traceback(
    tmp_path: Path, soft: int, hard: int, warned: bool
) -> None:
    """`ulimit -n 64` and --mock --concurrency 200: with room under the hard limit the run
    raises its own limit silently; without, it warns once and runs fewer at once; either
    way every job is done and no traceback or "too many open files" is printed."""
    done = run_under(tmp_path, soft, hard)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "too many open files" not in done.stderr.lower()
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    if warned:
        assert len(warnings) == 1, warnings
        assert "only 64 files may be open at once" in warnings[0]
    else:
        assert warnings == []
    assert {job.status for job in rows(tmp_path / "out")} == {JobStatus.DONE}


ACCEPT = r"""
import asyncio, os, resource, socket, sys
from batchgen.mock import MockServer
from batchgen.mock.server import quiet_accept_errors

async def main():
    if sys.argv[1] == "quiet":
        quiet_accept_errors(asyncio.get_running_loop(), lambda m: print("said:", m, flush=True))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    async with MockServer() as server:
        clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
        held = []
        try:  # take every descriptor left: the server cannot accept the clients
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        for _ in range(5):
            await asyncio.sleep(0)
        for fd in held:
            os.close(fd)
        for client in clients:
            client.close()
    print("stopped", flush=True)

asyncio.run(main())
"""


@pytest.mark.parametrize("mode", ["quiet", "plain"])
def test_the_emulator_accept_loop_prints_no_traceback(mode: str) -> None:
    """Out of descriptors, the emulator's accept loop says once that it turns connections
    away (EMFILE named, the limit given); without the handler asyncio prints a traceback."""
    child = subprocess.run(
        [sys.executable, "-c", ACCEPT, mode],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines()[-1] == "stopped"
    if mode == "quiet":
        assert "Traceback" not in child.stderr, child.stderr
        said = [line for line in child.stdout.splitlines() if line.startswith("said:")]
        assert said == [
            "said: the emulator turns connections away: too many open files (the limit is "
            "64: raise it with ulimit -n)"
        ]
    else:
        assert "socket.accept() out of system resource" in child.stderr
        assert "Traceback" in child.stderr
