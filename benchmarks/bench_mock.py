"""Benchmark: status polls per second that `batchgen mock` answers. Prints req/s and latencies.

    python benchmarks/bench_mock.py [--jobs 1000] [--requests 40000] [--concurrency 64]

The emulator runs in a child process (`python -m batchgen mock`), so it does not share a
CPU with the load generator. Jobs are created first (most wait IN_QUEUE behind the per-key
cap, as in a real batch), then concurrent keep-alive clients poll random jobs' status until
the request budget or the time limit is spent. Every answer must be a 202 or 200.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter

import aiohttp
from common import emulator

KLING = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
APP = "fal-ai/kling-video"
KEY = "bench-key"


async def create_jobs(session: aiohttp.ClientSession, base: str, count: int) -> list[str]:
    ids = []
    for n in range(count):
        async with session.post(f"{base}/{KLING}", json={"prompt": f"bench {n}"}) as r:
            r.raise_for_status()
            ids.append((await r.json())["request_id"])
    return ids


async def hammer(
    session: aiohttp.ClientSession,
    urls: list[str],
    budget: list[int],
    deadline: float,
    codes: Counter[int],
    latencies: list[float],
    seed: int,
) -> None:
    """One client: poll random status URLs until the shared budget or the time runs out."""
    rng = random.Random(seed)
    clock = time.perf_counter
    while budget[0] > 0 and clock() < deadline:
        budget[0] -= 1
        started = clock()
        async with session.get(rng.choice(urls)) as r:
            await r.read()
            codes[r.status] += 1
        latencies.append(clock() - started)


async def run(args: argparse.Namespace) -> None:
    emulated = emulator(
        "--api-key",
        KEY,
        "--max-in-progress",
        str(args.max_in_progress),
        "--queue-delay",
        "0",
        "--seed",
        "1",
    )
    with emulated as base:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        headers = {"Authorization": f"Key {KEY}"}
        async with aiohttp.ClientSession(base, connector=connector, headers=headers) as session:
            ids = await create_jobs(session, "", args.jobs)
            urls = [f"/{APP}/requests/{rid}/status" for rid in ids]
            codes: Counter[int] = Counter()
            latencies: list[float] = []
            budget = [args.requests]
            started = time.perf_counter()
            deadline = started + args.seconds
            await asyncio.gather(
                *(
                    hammer(session, urls, budget, deadline, codes, latencies, seed)
                    for seed in range(args.concurrency)
                )
            )
            elapsed = time.perf_counter() - started
            async with session.get("/_mock/stats") as r:
                stats = await r.json()
    done = sum(codes.values())
    latencies.sort()
    bad = done - codes[200] - codes[202]
    print(f"emulator:     {base} (child process), {args.jobs} jobs, {stats['jobs']}")
    print(f"clients:      {args.concurrency} concurrent keep-alive connections")
    print(f"requests:     {done} status polls in {elapsed:.2f} s, codes {dict(codes)}")
    print(f"server count: {sum(stats['status_requests'].values())} status polls recorded")
    print(f"latency:      p50 {latencies[done // 2] * 1000:.1f} ms, "
          f"p99 {latencies[int(done * 0.99)] * 1000:.1f} ms")  # fmt: skip
    print(f"throughput:   {done / elapsed:,.0f} status requests/s")
    if bad:
        raise SystemExit(f"{bad} answers were neither 200 nor 202")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs to create first")
    parser.add_argument("--requests", type=int, default=40_000, help="status polls to send")
    parser.add_argument("--seconds", type=float, default=30.0, help="stop after this long")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent connections")
    parser.add_argument("--max-in-progress", type=int, default=2, help="the emulator's cap")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
