"""A provider far faster than the catalog says: the run learns its speed from its own jobs.

The emulator runs 100x faster than the client's clock (as ``batchgen mock`` at its default
time scale does for a client on real time): its jobs take 20 ms real, and the ``inference_time``
it reports is its own emulated 2,000 s, which the client reads as 2 s: a run time longer than
the job has existed is not believed."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from runs import FAST, assert_all_verified, mock_config, plan_for, prompts, rows, run

from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer

JOBS = 16
CATALOG = 2000.0  # seconds (client clock) to expect: the catalog's figure, 100x the truth
CAP = 3000.0  # --max-poll-interval: a look aimed on the catalog would sleep this long
EMULATOR = {"time_scale": 0.00001, "latency": 2000.0, "latency_jitter": 0.0}  # 20 ms real


async def test_jobs_100x_faster_than_the_catalog_are_found_by_what_the_run_learned(
    tmp_path: Path,
) -> None:
    """16 jobs of 20 ms, 4 running at a time, told to expect 2 s: once a job completed,
    no look waits on the catalog's figure (queued jobs' starts are predicted again), and
    every job is found done within 4 status looks."""
    requested: list[tuple[float, float]] = []  # (when, seconds) of every wait asked for

    async def sleep(seconds: float) -> None:
        requested.append((time.time(), seconds))
        await asyncio.sleep(seconds)

    timing = dataclasses.replace(FAST, sleep=sleep)
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, JOBS), out, expect_latency=CATALOG, max_poll_interval=CAP)
    async with MockServer(mock_config(**EMULATOR)) as server:
        result = await run(plan, server, timing=timing)
        stats = server.stats()
    assert result.counts.get(JobStatus.DONE.value) == JOBS
    assert_all_verified(out, stats)
    first_done = min(r.completed_at for r in rows(out) if r.completed_at is not None)
    long_waits = [s for when, s in requested if when > first_done + 0.05 and s >= 0.5]
    assert long_waits == []  # a quarter of the catalog's figure, 25x the truth
    assert stats["requests"]["status"]["200"] == JOBS
    assert sum(stats["requests"]["status"].values()) <= 4 * JOBS
