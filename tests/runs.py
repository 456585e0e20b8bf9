"""Helpers for the run engine's tests: fast emulator and client timings, prompt files, one run.

Every duration is compressed a thousandfold on both sides (emulator and client), so a 20 s
job takes 20 ms and a 30 s poll cap 30 ms: runs of dozens of jobs take well under a second.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from batchgen.api.backoff import Backoff
from batchgen.api.providers import Connection, Storage
from batchgen.ledger.states import JobRow
from batchgen.ledger.store import Ledger
from batchgen.mock import MockConfig, MockServer
from batchgen.plan.build import Plan, build_plan
from batchgen.run.outcome import RunResult
from batchgen.run.runner import Runner
from batchgen.run.timing import Timing

REPO = Path(__file__).resolve().parent.parent
SCALE = 0.001
KEY = "test-key"

FAST = Timing(
    scale=SCALE,
    min_poll_interval=2.0,  # 2 ms
    stream_silence=300.0,  # 0.3 s: far above the emulator's 15 ms keep-alive, even when busy
    request_timeout=10.0,
    manifest_every=0.05,
    backoff=Backoff(base=2.0, cap=50.0, attempts=12),
    # Waits of 2 to 50 ms, for as long as --download-patience (900 s: 0.9 s real) lasts.
    download_backoff=Backoff(base=2.0, cap=50.0),
)

SETTINGS: dict[str, Any] = {
    "provider": "mock",
    "concurrency": 8,
    "rate": 5000,
    "job_timeout": 100_000,  # 100 s real: never reached unless a test wants it
    "expect_latency": 20,
    "max_poll_interval": 30,
}


def mock_config(**overrides: Any) -> MockConfig:
    """20 emulated seconds per job (20 ms), no pickup delay, 4 running per key, seeded."""
    values: dict[str, Any] = {
        "time_scale": SCALE,
        "latency": 20.0,
        "latency_jitter": 0.2,
        "queue_delay": 0.0,
        "max_in_progress": 4,
        "seed": 11,
        "api_keys": (KEY,),
    }
    values.update(overrides)
    return MockConfig(**values)


def prompts(folder: Path, count: int, *, word: str = "", start: int = 0) -> Path:
    """A CSV of ``count`` distinct prompts (``word`` in every 5th one, if given)."""
    path = folder / "prompts.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "duration", "notes"])
        for i in range(start, start + count):
            text = f"shot {i}: a lighthouse in a storm"
            if word and i % 5 == 0:
                text += f" {word}"
            writer.writerow([text, "10" if i % 3 == 0 else "5", f"note {i}"])
    return path


def plan_for(source: Path, out: Path, **settings: Any) -> Plan:
    return build_plan(source, output=out, run={**SETTINGS, **settings})


def connection(server: MockServer | str, key: str = KEY, follow: str = "status") -> Connection:
    """The mock preset's connection: the API, and its storage, at ``server``."""
    base = server if isinstance(server, str) else server.base_url
    storage = Storage("fal", base, "BATCHGEN_MOCK_KEY", key)
    return Connection("mock", base, "key", "BATCHGEN_MOCK_KEY", key, follow=follow, storage=storage)


async def run(
    plan: Plan,
    server: MockServer | str,
    *,
    key: str = KEY,
    timing: Timing = FAST,
    follow: str = "status",
    **kwargs: Any,
) -> RunResult:
    """One in-process run of ``plan`` against ``server``."""
    runner = Runner(plan, connection(server, key, follow), timing=timing, **kwargs)
    return await runner.run()


def rows(out: Path) -> list[JobRow]:
    with Ledger.in_folder(out, readonly=True) as ledger:
        return ledger.jobs()


def manifest(out: Path) -> list[dict[str, Any]]:
    lines = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_all_verified(out: Path, stats: dict[str, Any]) -> None:
    """Every job done, its file in place and equal (sha256, size) to what the emulator served;
    no ``.part`` file left."""
    jobs = rows(out)
    assert jobs
    for job in jobs:
        assert job.status == "done", (job.key, job.status, job.error)
        assert job.video_path is not None
        assert job.request_id is not None
        path = out / job.video_path
        served = stats["files"][job.request_id]
        assert (sha256(path), path.stat().st_size) == (served["sha256"], served["size"])
        assert job.sha256 == served["sha256"]
    assert not list(out.rglob("*.part"))


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for ``python -m batchgen`` from this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["BATCHGEN_MOCK_KEY"] = KEY
    env.update(extra)
    return env


def cli_args(source: Path, out: Path, base_url: str, **settings: Any) -> list[str]:
    """``python -m batchgen run`` arguments for a fast run against an emulator."""
    values = {**SETTINGS, **settings}
    args = [
        sys.executable,
        "-m",
        "batchgen",
        "run",
        str(source),
        "--out",
        str(out),
        "--base-url",
        base_url,
        "--progress",
        "lines",
        "--time-scale",
        str(SCALE),
    ]
    for name, value in values.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args


async def image_run(folder: Path, rows: list[tuple[str, int]]) -> tuple[Path, list[Path]]:
    """An image-to-video batch run to done on the emulator: ``rows`` of (prompt, index of
    its image among distinct PNGs made in ``folder``); the output folder and the images."""
    from media_files import png_files

    from batchgen.mock import MockServer

    images = png_files(folder, 1 + max(i for _, i in rows))
    source = folder / "shots.csv"
    source.write_text("prompt,image_url\n" + "".join(f"{p},{images[i]}\n" for p, i in rows))
    out = folder / "out"
    endpoint = "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"
    plan = build_plan(source, endpoint=endpoint, output=out, run=SETTINGS)
    async with MockServer(mock_config()) as server:
        result = await run(plan, server)
    assert result.outcome == "done", result.message
    return out, images


class Clock:
    """A clock a test moves by hand: ``clock.now += 5``."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now
