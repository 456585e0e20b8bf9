"""Benchmark (c): peak memory of a 100,000-job run, and memory growth while downloading a
1 GB file.

    python benchmarks/bench_run_memory.py jobs [--jobs 100000]
    python benchmarks/bench_run_memory.py bigfile [--gigabytes 1]

``jobs`` runs every job end to end (zero latency) and reports the client's peak RSS (VmHWM:
planning, ledger, engine, manifest rewrites, downloads). ``bigfile`` runs one job whose video is
padded to the given size and reports the RSS growth seen while it downloads. The emulator
runs in its own process; its memory is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
from pathlib import Path

from common import INSTANT, emulator, peak_rss_mb, prompts, rss_mb, sample_rss

from batchgen.api.providers import Connection
from batchgen.plan.build import build_plan
from batchgen.run.runner import Runner
from batchgen.run.timing import Timing


async def run_jobs(jobs: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-c-"))
    try:
        with emulator(*INSTANT) as base:
            before = rss_mb()
            started = time.perf_counter()
            plan = build_plan(
                prompts(folder / "in.csv", jobs),
                output=folder / "out",
                run={
                    "provider": "mock",
                    "concurrency": 64,
                    "rate": 1_000_000,
                    "expect_latency": 0.01,
                },
            )
            planned = rss_mb()
            connection = Connection("mock", base, "key", "BATCHGEN_MOCK_KEY", "bench")
            samples: list[float] = []
            sampler = asyncio.create_task(sample_rss(samples, 0.5))
            result = await Runner(plan, connection, timing=Timing(min_poll_interval=0.005)).run()
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            took = time.perf_counter() - started
        print(f"jobs={jobs}: {result.message} in {took:.0f} s")
        print(
            f"RSS at start {before:.0f} MB, after planning {planned:.0f} MB, "
            f"max sampled {max(samples):.0f} MB; peak (VmHWM) {peak_rss_mb():.0f} MB"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def big_file(gigabytes: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-c-big-"))
    size = int(gigabytes * 1e9)
    try:
        with emulator("--latency", "0", "--queue-delay", "0", "--video-bytes", str(size)) as base:
            plan = build_plan(
                prompts(folder / "in.csv", 1),
                output=folder / "out",
                run={"provider": "mock", "rate": 100, "expect_latency": 0.01},
            )
            connection = Connection("mock", base, "key", "BATCHGEN_MOCK_KEY", "bench")
            runner = Runner(plan, connection, timing=Timing(min_poll_interval=0.005))
            samples: list[float] = []
            baseline = rss_mb()
            sampler = asyncio.create_task(sample_rss(samples, 0.05))
            started = time.perf_counter()
            result = await runner.run()
            took = time.perf_counter() - started
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        videos = list((folder / "out" / "videos").glob("*.mp4"))
        got = videos[0].stat().st_size if videos else 0
        print(
            f"one job, video {got / 1e9:.2f} GB: {result.message} in {took:.1f} s "
            f"({got / 1e6 / took:.0f} MB/s)"
        )
        print(
            f"RSS before {baseline:.0f} MB, max during {max(samples):.0f} MB -> growth "
            f"{max(samples) - baseline:.1f} MB ({len(samples)} samples)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("jobs").add_argument("--jobs", type=int, default=100_000)
    sub.add_parser("bigfile").add_argument("--gigabytes", type=float, default=1.0)
    args = parser.parse_args()
    if args.what == "jobs":
        asyncio.run(run_jobs(args.jobs))
    else:
        asyncio.run(big_file(args.gigabytes))
