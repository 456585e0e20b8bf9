"""Freeze: a run stopped (SIGSTOP, as a closed laptop lid or Ctrl-Z) while submits are in flight,
then continued after longer than its request timeout: submits per job (goal 1.0).

    python benchmarks/bench_freeze.py [--jobs 12] [--concurrency 4] [--frozen 65]
        [--request-timeout 60]

The emulator (its own process, real time) answers every API request after 2 s, so when the run
is stopped its first submits are surely waiting for their answers; those answers arrive while
the process is frozen. Printed: submits, jobs, submits per job, the pause the run reported,
rows flagged ``possibly_duplicate``, and the run's exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, emulator, prompts, stats

SLOW = 2.0  # real seconds every API answer takes


def submits(base: str) -> int:
    return sum(stats(base)["submits_by_payload"].values())


def slowed(base: str) -> int:
    return int(stats(base)["faults"].get("slow", 0))


def until(check: object, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def main(jobs: int, concurrency: int, frozen: float, request_timeout: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-freeze-"))
    slow = ("--fault-slow", "1", "--slow-delay", str(SLOW))
    fast = ("--latency", "1", "--latency-jitter", "0", "--queue-delay", "0")
    try:
        with emulator(*fast, *slow, "--api-key", "bench-key") as base:
            out = folder / "out"
            command = [
                sys.executable,
                "-m",
                "batchgen",
                "run",
                str(prompts(folder / "p.csv", jobs)),
            ]
            command += ["--out", str(out), "--provider", "mock", "--base-url", base]
            command += ["--concurrency", str(concurrency), "--progress", "lines"]
            command += ["--request-timeout", str(request_timeout), "--time-scale", "1"]
            env = {**os.environ, "PYTHONPATH": str(REPO), "BATCHGEN_MOCK_KEY": "bench-key"}
            err = folder / "stderr"
            with err.open("wb") as sink:
                proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink, env=env)
            until(lambda: slowed(base) >= concurrency, "the first submits")
            proc.send_signal(signal.SIGSTOP)
            stopped = time.monotonic()
            time.sleep(frozen)
            proc.send_signal(signal.SIGCONT)
            print(f"stopped for {time.monotonic() - stopped:.1f} s with submits in flight")
            code = proc.wait(600)
            sent = submits(base)
        text = err.read_text(errors="replace")
        paused = [line for line in text.splitlines() if "paused for" in line]
        lines = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines]
        flagged = sum(1 for row in rows if row.get("possibly_duplicate"))
        done = sum(1 for row in rows if row.get("status") == "done")
        print(f"exit {code}; {done}/{jobs} rows done; {flagged} flagged possibly_duplicate")
        print(f"submits {sent} for {jobs} jobs: {sent / jobs:.2f} per job")
        print(f"run said: {paused[0].strip() if paused else '(nothing about a pause)'}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--frozen", type=float, default=65.0)
    parser.add_argument("--request-timeout", type=float, default=60.0)
    args = parser.parse_args()
    main(args.jobs, args.concurrency, args.frozen, args.request_timeout)
