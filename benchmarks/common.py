"""Shared pieces of the run benchmarks: an emulator in its own process, inputs, RSS sampling.

The emulator runs in a separate process so that its CPU time is not counted as the client's.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


# An emulator that finishes every job at once and never queues: the client is all that is timed.
INSTANT = (
    "--latency",
    "0",
    "--latency-jitter",
    "0",
    "--queue-delay",
    "0",
    "--max-in-progress",
    "100000",
)


# The emulator process serving each base URL ``emulator`` yielded (see ``cpu_seconds``).
_PROCESSES: dict[str, subprocess.Popen[str]] = {}


@contextmanager
def emulator(*args: str) -> Iterator[str]:
    """Start ``batchgen mock`` with ``args`` on a free port; yield its base URL."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        # Real time unless the caller says otherwise (the CLI's default is 0.01, for trying).
        [sys.executable, "-m", "batchgen", "mock", "--port", "0", "--time-scale", "1", *args],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if "serving on" not in line:
            raise RuntimeError(f"emulator did not start: {line}")
        base = line.split("serving on ", 1)[1].split()[0]
        _PROCESSES[base] = proc
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def cpu_seconds(base_url: str) -> float:
    """CPU time (user + system) the emulator at ``base_url`` has used so far (Linux)."""
    with open(f"/proc/{_PROCESSES[base_url].pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base_url}/_mock/stats") as answer:
        data: dict[str, Any] = json.load(answer)
        return data


def prompts(path: Path, count: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt"])
        writer.writerows([f"benchmark shot {i}: a lighthouse in a storm"] for i in range(count))
    return path


def rss_mb() -> float:
    """Resident set size of this process now, in MB (Linux)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1000
    return float("nan")


async def sample_rss(into: list[float], every: float = 0.05) -> None:
    """Append this process's RSS to ``into`` every ``every`` seconds until cancelled."""
    while True:
        into.append(rss_mb())
        await asyncio.sleep(every)


def main_thread_cpu() -> float:
    """CPU seconds (user + system) of this process's main thread: its event loop (Linux)."""
    with open(f"/proc/self/task/{os.getpid()}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
