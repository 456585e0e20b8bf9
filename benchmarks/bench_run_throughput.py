"""Benchmark (a): 2,000 jobs at zero latency, concurrency 64: jobs/s and client CPU per job.

    python benchmarks/bench_run_throughput.py [--jobs 2000] [--concurrency 64]

The emulator runs in its own process (no latency, no cap that binds); the client runs here,
so ``time.process_time()`` is the client's CPU alone (ledger commits and downloads included).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import INSTANT, cpu_seconds, emulator, main_thread_cpu, prompts, stats

from batchgen.api.providers import Connection
from batchgen.ledger.writer import SWITCH_INTERVAL
from batchgen.plan.build import build_plan
from batchgen.run.runner import Runner
from batchgen.run.timing import Timing


async def main(jobs: int, concurrency: int, poll: str, downloads: int = 4) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-a-"))
    try:
        with emulator(*INSTANT) as base:
            plan = build_plan(
                prompts(folder / "in.csv", jobs),
                output=folder / "out",
                run={
                    "provider": "mock",
                    "concurrency": concurrency,
                    "rate": 1_000_000,
                    "expect_latency": 0.01,
                    "poll": poll,
                    "download_concurrency": downloads,
                },
            )
            connection = Connection("mock", base, "key", "BATCHGEN_MOCK_KEY", "bench")
            # Zero-latency jobs: let the poll floor be small, or it alone sets the pace.
            runner = Runner(plan, connection, timing=Timing(min_poll_interval=0.005))
            served = cpu_seconds(base)
            wall, cpu, loop = time.perf_counter(), time.process_time(), main_thread_cpu()
            result = await runner.run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            loop = main_thread_cpu() - loop
            served = cpu_seconds(base) - served
            seen = stats(base)
        per_job = list(seen["status_requests"].values()) or [0]
        print(
            f"jobs={jobs} concurrency={concurrency} downloads={downloads} poll={poll} "
            f"outcome={result.outcome} "
            f"({result.message})"
        )
        print(f"wall {wall:.2f} s -> {jobs / wall:.0f} jobs/s")
        print(
            f"client CPU {cpu:.2f} s -> {cpu / jobs * 1000:.2f} ms per job "
            f"(event loop {loop / jobs * 1000:.2f}, other threads {(cpu - loop) / jobs * 1000:.2f})"
        )
        print(f"emulator CPU {served:.2f} s -> {served / jobs * 1000:.2f} ms per job")
        print(
            f"status requests per job: median {statistics.median(per_job):.0f}, max {max(per_job)}"
        )
        logged = (folder / "out" / "batchgen.log").read_text(encoding="utf-8")
        commits = re.search(r"ledger: (\d+) moves in (\d+) transactions", logged)
        fsyncs = re.search(r"videos: (\d+) folder fsyncs", logged)
        if commits:
            moves, transactions = int(commits[1]), int(commits[2])
            print(
                f"ledger: {moves} moves in {transactions} commits ({moves / transactions:.1f} each)"
            )
        if fsyncs:
            print(f"videos: {jobs} in {fsyncs[1]} folder fsyncs")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--poll", choices=["adaptive", "stream"], default="adaptive")
    parser.add_argument("--download-concurrency", type=int, default=4)
    args = parser.parse_args()
    sys.setswitchinterval(SWITCH_INTERVAL)  # as batchgen run does
    asyncio.run(main(args.jobs, args.concurrency, args.poll, args.download_concurrency))
