"""Benchmark: reading odd result answers with bounds (batchgen.api.bounded). Prints, per
answer, its size, the time to read it in 64 KiB chunks as the client does, the size kept and
what was left out; and the time ``loads`` adds to an ordinary fal result.

    python benchmarks/bench_bounded.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batchgen.api.bounded import Pruner, loads

VIDEO = b'"video":{"url":"https://v3.fal.media/files/x/output.mp4","file_size":4404019}'
CHUNK = 64 * 1024


def deep(levels: int) -> bytes:
    return b'{"debug":' + b'{"a":' * levels + b"1" + b"}" * levels + b"," + VIDEO + b"}"


def logs(size: int) -> bytes:
    line = json.dumps({"message": "step done " + "x" * 80, "level": "INFO"}).encode()
    items = b",".join([line] * (size // (len(line) + 1)))
    return b'{"logs":[' + items + b"]," + VIDEO + b"}"


def one_string(size: int) -> bytes:
    return b'{"trace":"' + b"x" * size + b'",' + VIDEO + b"}"


def best(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    answers = {
        "nested 100,000 deep": deep(100_000),
        "logs list, 20 MB": logs(20 * 1024 * 1024),
        "one 50 MB string": one_string(50 * 1024 * 1024),
    }
    print("answer | bytes | read s (best of runs) | MB/s | kept bytes | parts left out")
    for name, body in answers.items():

        def read(body: bytes = body) -> Pruner:
            p = Pruner()
            for at in range(0, len(body), CHUNK):
                p.feed(body[at : at + CHUNK])
            return p

        took = best(args.repeat, read)
        pruner = read()
        assert json.loads(pruner.text())["video"]["file_size"] == 4404019
        mb_s = len(body) / took / 1e6
        print(
            f"{name} | {len(body):,} | {took:.3f} | {mb_s:.0f} | {len(pruner.text()):,} | "
            f"{pruner.dropped}"
        )
    ordinary = b"{" + VIDEO + b"}"
    n = 100_000
    plain = best(args.repeat, lambda: [json.loads(ordinary) for _ in range(n)]) / n
    bounded = best(args.repeat, lambda: [loads(ordinary) for _ in range(n)]) / n
    print(
        f"an ordinary result ({len(ordinary)} bytes): json.loads {plain * 1e6:.2f} us, "
        f"bounded loads {bounded * 1e6:.2f} us"
    )


if __name__ == "__main__":
    main()
