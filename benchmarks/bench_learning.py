"""Benchmark (polling that learns): the README's emulator example, with no latency hint, on a
provider far faster than the catalog says and on one slower than it: makespan vs the ideal,
and status looks per job.

    python benchmarks/bench_learning.py [--repeat 5] [--scenario default slow]
        [--max-poll-interval 30]

``default`` is the README's example: ``batchgen mock`` at its default speed (time scale 0.01,
2 jobs running per key), ``batchgen run examples/prompts.csv --provider mock`` in real time:
the catalog says Kling takes ~110 s, the emulator's jobs take ~1.1 s (10 s videos twice that),
100x faster (the emulator's ``inference_time`` is in its own emulated seconds, so the run
learns from its looks alone). ``slow``: client and emulator both at time scale 0.01, the
emulator's jobs taking 330 s instead of the catalog's 110 s, 3x slower (its ``inference_time``
is then true on the run's clock, as fal's is).

The ideal is the emulator's own schedule with nothing to notice: each job's run time (its
``metrics.inference_time``, read back after the run) laid end to end on the account's 2 lanes
in submit order, plus the emulator's pickup delay. The makespan is the run's wall time, from
its start to the last video on disk. A queued job is looked at at least every
``--max-poll-interval`` (30 s of the run's clock), whatever its predicted start.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import shutil
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from common import REPO, emulator, stats

from batchgen.api.providers import Connection
from batchgen.ledger.store import Ledger
from batchgen.plan.build import build_plan
from batchgen.run.runner import Runner
from batchgen.run.timing import Timing

EXAMPLE = REPO / "examples" / "prompts.csv"
LANES = 2  # the emulator's default jobs running per key
PICKUP = 1.0  # the emulator's default --queue-delay, emulated seconds
SCENARIOS = {
    # name: (emulator time scale, its latency, client time scale, what it shows)
    "default": (0.01, 110.0, 1.0, "jobs ~100x faster than the catalog's ~110 s"),
    "slow": (0.01, 330.0, 0.01, "jobs ~3x slower than the catalog's ~110 s"),
}


def ran(base: str, endpoint: str, request_id: str) -> float:
    """The job's running time as the emulator reports it (emulated seconds)."""
    app = "/".join(endpoint.split("/")[:2])  # fal's status route names the app, not the path
    url = f"{base}/{app}/requests/{request_id}/status"
    asked = urllib.request.Request(url, headers={"Authorization": "Key bench"})
    with urllib.request.urlopen(asked) as answer:
        return float(json.load(answer)["metrics"]["inference_time"])


def ideal(times: list[float]) -> float:
    """Makespan of ``times`` run in order on ``LANES`` lanes, all submitted at once."""
    lanes = [0.0] * LANES
    end = 0.0
    for seconds in times:
        start = heapq.heappop(lanes)
        end = max(end, start + seconds)
        heapq.heappush(lanes, start + seconds)
    return end


async def once(scenario: str, ceiling: float) -> tuple[float, float, float, str]:
    """One run: (makespan, ideal, status looks per job, the run's summary)."""
    emulated, latency, client, _ = SCENARIOS[scenario]
    folder = Path(tempfile.mkdtemp(prefix="bench-learn-"))
    try:
        with emulator("--time-scale", str(emulated), "--latency", str(latency)) as base:
            settings = {"provider": "mock", "max_poll_interval": ceiling}
            plan = build_plan(EXAMPLE, output=folder / "out", run=settings)
            connection = Connection("mock", base, "key", "BATCHGEN_MOCK_KEY", "bench")
            started = time.perf_counter()
            result = await Runner(plan, connection, timing=Timing(scale=client)).run()
            makespan = time.perf_counter() - started
            seen = stats(base)
            with Ledger.in_folder(folder / "out", readonly=True) as ledger:
                jobs = sorted(ledger.jobs(), key=lambda row: row.submitted_at or 0.0)
            times = [ran(base, row.endpoint, str(row.request_id)) * emulated for row in jobs]
        looks = sum(seen["status_requests"].values()) / max(1, len(jobs))
        return makespan, ideal(times) + PICKUP * emulated, looks, result.message
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def main(repeat: int, scenarios: list[str], ceiling: float) -> None:
    for scenario in scenarios:
        runs = [await once(scenario, ceiling) for _ in range(repeat)]
        ratios = sorted(m / i for m, i, _, _ in runs)
        looks = sorted(lk for _, _, lk, _ in runs)
        print(
            f"{scenario}: {SCENARIOS[scenario][3]}; {repeat} runs of {EXAMPLE.name}, "
            f"--max-poll-interval {ceiling:g}"
        )
        for makespan, best, per_job, message in runs:
            print(
                f"  makespan {makespan:.2f} s, ideal {best:.2f} s -> {makespan / best:.2f}x, "
                f"{per_job:.2f} status looks/job ({message})"
            )
        print(
            f"  median {statistics.median(ratios):.2f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f}x), "
            f"status looks/job median {statistics.median(looks):.2f} (max {looks[-1]:.2f})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scenario", nargs="+", choices=sorted(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument(
        "--max-poll-interval",
        type=float,
        default=30.0,
        help="the run's ceiling between looks (seconds of its clock; default 30)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.repeat, args.scenario, args.max_poll_interval))
