"""Benchmark: plan a generated 100,000-row CSV. Prints wall time and peak memory.

    python benchmarks/bench_plan.py [--rows 100000]

The plan runs in a child process (`python -m batchgen plan --json`), so the peak resident
memory printed is that of the real command, interpreter and imports included.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "fox",
    "snow",
    "dawn",
    "harbor",
    "neon",
    "rain",
    "robot",
    "bonsai",
    "waves",
    "lens",
    "drone",
    "macro",
    "golden",
    "hour",
    "street",
    "東京",
    "café",
    "🌱",
    "slow",
    "motion",
)


def generate(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["id", "prompt", "duration", "aspect_ratio", "cfg_scale", "notes"])
        for i in range(rows):
            prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40)))
            writer.writerow(
                [
                    f"R{i:06d}",
                    f"{prompt}, shot {i}",
                    rng.choice(["5", "10", ""]),
                    rng.choice(["16:9", "9:16", "1:1", ""]),
                    rng.choice(["", "0.5", "0.70"]),
                    rng.choice(["", 'needs review, see "notes"', "line one\nline two"]),
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        generate(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "batchgen", "plan", "--json", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        elapsed = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    summary = json.loads(proc.stdout)
    print(f"input: {args.rows} rows, {size_mb:.1f} MB CSV")
    print(f"jobs planned: {summary['jobs']}, estimated cost ${summary['estimated_cost_usd']:,.2f}")
    print(f"wall time: {elapsed:.2f} s (whole command, interpreter start included)")
    print(f"peak memory (max RSS): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
