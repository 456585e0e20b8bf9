"""Benchmark (b): 200 jobs of 1 s, emulator cap 8 IN_PROGRESS: makespan vs the ideal 25 s,
and status requests per job.

    python benchmarks/bench_run_makespan.py [--jobs 200] [--concurrency 16] [--rate 50]
        [--latency 1] [--jitter 0] [--cap 8]

Kling-like latencies, time-scaled 1:100 (110 s +/- 30 %): ``--latency 1.1 --jitter 0.3``.

The ideal is jobs x latency / cap: the emulator's cap, not the client, should set the pace.
``--concurrency`` above the cap keeps jobs waiting IN_QUEUE at the provider, as fal allows, so
a slot never idles while the client notices a completion. ``--expect-latency 1`` is what a user
who knows the endpoint would pass (the default seed is the Kling spec's 110 s).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import emulator, prompts, stats

from batchgen.api.providers import Connection
from batchgen.plan.build import build_plan
from batchgen.run.runner import Runner


async def main(
    jobs: int,
    concurrency: int,
    rate: float,
    jitter: str,
    poll: str,
    latency: float = 1.0,
    cap: int = 8,
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-b-"))
    try:
        with emulator(
            "--latency",
            str(latency),
            "--latency-jitter",
            jitter,
            "--queue-delay",
            "0",
            "--max-in-progress",
            str(cap),
        ) as base:
            plan = build_plan(
                prompts(folder / "in.csv", jobs),
                output=folder / "out",
                run={
                    "provider": "mock",
                    "concurrency": concurrency,
                    "rate": rate,
                    "expect_latency": latency,
                    "poll": poll,
                },
            )
            connection = Connection("mock", base, "key", "BATCHGEN_MOCK_KEY", "bench")
            started = time.perf_counter()
            result = await Runner(plan, connection).run()
            makespan = time.perf_counter() - started
            seen = stats(base)
        ideal = jobs * latency / cap
        per_job = sorted(seen["status_requests"].values()) or [0]
        requests = {route: sum(codes.values()) for route, codes in seen["requests"].items()}
        print(
            f"jobs={jobs} latency={latency}s jitter={jitter} cap={cap} "
            f"concurrency={concurrency} rate={rate}/s poll={poll}: {result.message}"
        )
        print(f"makespan {makespan:.2f} s, ideal {ideal:.0f} s -> {makespan / ideal:.3f}x")
        print(
            f"status requests per job: median {statistics.median(per_job):.1f}, "
            f"p90 {per_job[int(0.9 * len(per_job))]}, max {per_job[-1]}"
        )
        print(f"requests by route: {requests}")
        api = sum(requests.get(route, 0) for route in ("submit", "status", "result"))
        print(f"API requests per job (submit + status + result): {api / jobs:.2f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--jitter", default="0", help="emulator latency jitter (0.2 = ±20%%)")
    parser.add_argument("--poll", choices=["adaptive", "stream"], default="adaptive")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per job")
    parser.add_argument("--cap", type=int, default=8, help="the emulator's IN_PROGRESS cap")
    args = parser.parse_args()
    asyncio.run(
        main(
            args.jobs,
            args.concurrency,
            args.rate,
            args.jitter,
            args.poll,
            args.latency,
            args.cap,
        )
    )
