"""Benchmark: workers sharing one batch in PostgreSQL, two keys each: jobs/s for 1 and for 3
workers, jobs submitted twice (must be 0), and what happens when one of 3 is killed with
SIGKILL mid-run.

    python benchmarks/bench_workers.py [--jobs 3000] [--latency 0.5] [--concurrency 32]
                                       [--ledger postgresql://...]

Each worker is a `batchgen run --ledger URL --batch NAME` process with its own output folder,
against one emulator (a process of its own) whose jobs take ``--latency`` real seconds and
whose cap is above every worker's concurrency, so the workers' concurrency sets the pace:
the ideal for N workers is jobs x latency / (N x concurrency). Without ``--ledger`` a
throwaway server is started as the tests start theirs (``tests/pgserver.py``). The kill
scenario kills worker 1 once a third of the jobs are done; its leases are 5 s.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, emulator, prompts, stats

sys.path.insert(0, str(REPO / "tests"))  # pgserver: the throwaway server the tests start
import pgserver

from batchgen.ledger.shared import open_shared
from batchgen.ledger.states import JobStatus
from batchgen.mock.stats import payload_digest

LEASE = 5.0


def worker(source: Path, out: Path, base: str, url: str, batch: str, concurrency: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "batchgen",
        "run",
        str(source),
        "--out",
        str(out),
        "--provider",
        "mock",
        "--base-url",
        base,
        "--ledger",
        url,
        "--batch",
        batch,
        "--concurrency",
        str(concurrency),
        "--rate",
        "2000",
        "--progress",
        "none",
        "--yes",
        "--lease",
        str(LEASE),
        "--api-key-env",
        "BENCH_KEY_A,BENCH_KEY_B",  # a key pool of two: submits spread over both
    ]


def done(url: str, batch: str) -> int:
    try:
        with open_shared(url, batch, readonly=True) as ledger:
            return ledger.counts()[JobStatus.DONE]
    except Exception:  # the batch is not made yet
        return 0


def scenario(
    name: str, workers: int, args: argparse.Namespace, url: str, base: str, kill: bool = False
) -> None:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-workers-{name}-"))
    batch = f"{name}-{os.urandom(3).hex()}"
    source = prompts(folder / "in.csv", args.jobs)
    before = stats(base)["submits_by_payload"]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "BENCH_KEY_A": "bench-a",
        "BENCH_KEY_B": "bench-b",
    }
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            worker(source, folder / f"w{i}", base, url, batch, args.concurrency),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(workers)
    ]
    killed_at = None
    if kill:
        while done(url, batch) < args.jobs // 3:
            time.sleep(0.2)
        procs[0].send_signal(signal.SIGKILL)
        killed_at = time.perf_counter() - started
    codes = [proc.wait() for proc in procs]
    took = time.perf_counter() - started
    submits = stats(base)["submits_by_payload"]
    with open_shared(url, batch, readonly=True) as ledger:
        jobs = ledger.jobs()
    counts = {s: sum(j.status is s for j in jobs) for s in JobStatus}
    ours = [submits.get(payload_digest(j.payload), 0) - before.get(payload_digest(j.payload), 0)
            for j in jobs]  # fmt: skip
    twice = sum(n - 1 for n in ours if n > 1)
    flagged = sum(j.possibly_duplicate for j in jobs)
    by_worker = {}
    for job in jobs:
        by_worker[job.video_dir] = by_worker.get(job.video_dir, 0) + 1
    ideal = args.jobs * args.latency / (workers * args.concurrency)
    print(
        f"{name}: {workers} worker(s), {args.jobs} jobs in {took:.1f} s = "
        f"{args.jobs / took:.1f} jobs/s (ideal {ideal:.1f} s); done {counts[JobStatus.DONE]}, "
        f"submitted twice {twice}, flagged possibly_duplicate {flagged}; exit codes {codes}; "
        f"videos per worker folder {sorted(by_worker.values())}"
    )
    if killed_at is not None:
        print(
            f"  worker 1 killed with SIGKILL at {killed_at:.1f} s ({args.jobs // 3} done); "
            f"the others finished the batch {took - killed_at:.1f} s later "
            f"(its leases ran out after {LEASE:g} s)"
        )
    for proc, code in zip(procs, codes, strict=True):
        if code not in (0, -signal.SIGKILL):
            assert proc.stderr is not None
            print(f"  worker exit {code}: {proc.stderr.read()[-500:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=0.5, help="real seconds per job")
    parser.add_argument("--concurrency", type=int, default=32, help="per worker")
    parser.add_argument("--ledger", help="a PostgreSQL URL (default: a throwaway server)")
    args = parser.parse_args()
    server = None
    url = args.ledger
    if url is None:
        server = pgserver.start()
        url = server.url
    try:
        with emulator(
            "--latency",
            str(args.latency),
            "--latency-jitter",
            "0.1",
            "--queue-delay",
            "0",
            "--max-in-progress",
            "100000",
        ) as base:
            scenario("one", 1, args, url, base)
            scenario("three", 3, args, url, base)
            scenario("kill", 3, args, url, base, kill=True)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
