"""Output folders in any state, built straight on the ledger: no network, no engine.

Shared by the tests of the commands that read an output folder (manifest, status, report,
export, cancel). Times are fixed Unix seconds so nothing depends on the wall clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import yaml

from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
from batchgen.mock import h264
from batchgen.mock.mp4 import encode
from batchgen.plan.build import Plan, build_plan
from batchgen.run.progress import Reporter

S = JobStatus
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@dataclass
class Folder:
    """An output folder with its ledger open for writing and the plan it was synced from."""

    path: Path
    ledger: Ledger
    plan: Plan
    videos: str = ""  # the subfolder videos go in ("videos" as a run has it; "" the folder)
    requests: str = "req-"  # request ids are this and the job's key

    @property
    def keys(self) -> list[str]:
        return [job.key for job in self.plan.jobs]

    def done(
        self,
        key: str,
        *,
        latency: float = 60.0,
        submitted: float = T0,
        content: bytes | None = None,
    ) -> Path:
        """Run ``key`` to ``done`` with a small fake MP4 on disk; returns the file."""
        job = self.ledger.get(key)
        data = content if content is not None else fake_mp4(key)
        relative = f"{self.videos}/{job.filename}" if self.videos else job.filename
        video = self.path / relative
        video.parent.mkdir(exist_ok=True)
        video.write_bytes(data)
        self.queued(key, submitted=submitted)
        self.ledger.transition(key, S.RUNNING, started_at=submitted + 1)
        self.ledger.transition(
            key,
            S.COMPLETED,
            completed_at=submitted + latency,
            video_url=f"https://cdn.example/{key}.mp4",
        )
        self.ledger.transition(key, S.DOWNLOADING)
        self.ledger.transition(
            key,
            S.DONE,
            video_path=relative,
            bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        return video

    def queued(self, key: str, *, submitted: float = T0, position: int | None = 0) -> None:
        """Submit ``key``: it gets request id ``req-<key>`` (``requests`` + key) and waits in
        the queue."""
        self.ledger.transition(key, S.SUBMITTING, attempts=1)
        self.ledger.transition(
            key,
            S.QUEUED,
            request_id=f"{self.requests}{key}",
            submitted_at=submitted,
            queue_position=position,
        )

    def running(self, key: str, *, submitted: float = T0) -> None:
        self.queued(key, submitted=submitted)
        self.ledger.transition(key, S.RUNNING, started_at=submitted + 1, queue_position=None)

    def failed(self, key: str, error: str, *, error_type: str = "model_error") -> None:
        self.queued(key)
        self.ledger.transition(
            key, S.FAILED, error=error, error_type=error_type, completed_at=T0 + 30
        )


def mp4_bytes(body: bytes) -> bytes:
    """A structurally whole MP4 (ftyp, moov, then ``body`` in an mdat box); not playable."""
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    moov = struct.pack(">I4s", 16, b"moov") + bytes(8)
    return ftyp + moov + struct.pack(">I4s", 8 + len(body), b"mdat") + body


def playable_mp4(seed: str, seconds: int = 10) -> bytes:
    """A real, playable H.264 MP4 of 64x64 pixels and ``seconds`` frames, one a second, each
    of one colour drawn from ``seed``: long enough to watch a row play together."""
    digest = hashlib.sha256(seed.encode()).digest()
    frames = [
        h264.idr_picture(
            [h264.flat_macroblock(16 + digest[i % 32] * 219 // 255, 128, 128 + i % 2)] * 16,
            idr_pic_id=i % 2,
        )
        for i in range(seconds)
    ]
    return encode(frames, 4, 4, fps=1)


def fake_mp4(seed: str, size: int = 64) -> bytes:
    """A whole MP4 (see ``mp4_bytes``) whose content is unique per ``seed``."""
    body = hashlib.sha256(seed.encode()).digest() * (size // 32 + 1)
    return mp4_bytes(body[:size])


# Two more models, as small endpoint specs (flat prices from /work/shared's reference table).
VEO_FAST = """id: fal-ai/veo3.1/fast
typical_latency_s: 60
parameters:
  prompt: {type: string, required: true, max_length: 20000}
  duration: {type: string, enum: ["4s", "6s", "8s"], default: "8s"}
  aspect_ratio: {type: string, enum: ["16:9", "9:16"], default: "16:9"}
  generate_audio: {type: boolean, default: true}
price: {flat_usd: 1.2}
"""
SORA = """id: fal-ai/sora-2/text-to-video
typical_latency_s: 90
parameters:
  prompt: {type: string, required: true, max_length: 5000}
  duration: {type: string, enum: ["4", "8", "12"], default: "4"}
  aspect_ratio: {type: string, enum: ["16:9", "9:16"], default: "16:9"}
price: {flat_usd: 0.4}
"""
KLING = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"


def make_compare_folder(
    tmp_path: Path,
    prompts: list[str],
    endpoints: list[str],
    *,
    matrix: dict[str, list[str]] | None = None,
    name: str = "out",
) -> Folder:
    """A folder whose rows ran on each of ``endpoints`` (a built-in id, or the text of an
    endpoint spec) and each ``matrix`` combination, as a multi-endpoint run leaves it: one
    ledger, each job naming its endpoint, jobs in input order (row by row).

    Built with today's API, one plan per endpoint synced in turn; a real two-endpoint run can
    take its place once plans span endpoints.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    spec = tmp_path / "compare.yaml"
    spec.write_text(
        yaml.safe_dump({"rows": [{"prompt": p} for p in prompts], "matrix": matrix or {}}),
        encoding="utf-8",
    )
    out = tmp_path / name
    plans = []
    for i, endpoint in enumerate(endpoints):
        if endpoint.startswith("id:"):
            spec_file = tmp_path / f"endpoint-{i}.yaml"
            spec_file.write_text(endpoint, encoding="utf-8")
            plans.append(build_plan(spec, output=out, endpoint_spec=spec_file))
        else:
            plans.append(build_plan(spec, output=out, endpoint=endpoint))
    ledger = Ledger.in_folder(out)
    for n, plan in enumerate(plans, start=1):
        # Ledger.sync stores one endpoint for the jobs it adds: add each plan's jobs in turn,
        # every call listing all jobs so far so none is taken for one left out of the input.
        jobs = sorted((j for p in plans[:n] for j in p.jobs), key=lambda j: j.row)
        ledger.sync(jobs, plan.endpoint.id)
    params = list(dict.fromkeys(param for plan in plans for param in plan.endpoint.params))
    ledger.set_meta(
        "plan",
        {
            "endpoint": plans[0].endpoint.id,
            "input_path": plans[0].input_path,
            "extra_columns": plans[0].extra_columns,
            "param_columns": params,
        },
    )
    merged = dataclasses.replace(plans[0], jobs=jobs)
    # Request ids unique to the folder, as a provider's are: two folders of one input differ.
    unique = hashlib.sha256(str(out.absolute()).encode()).hexdigest()[:8]
    return Folder(path=out, ledger=ledger, plan=merged, videos="videos", requests=f"req-{unique}-")


def make_folder(tmp_path: Path, csv_text: str, *, meta: bool = True, name: str = "out") -> Folder:
    """Plan ``csv_text`` (a prompt CSV) and sync it into a fresh ledger in ``tmp_path/name``."""
    source = tmp_path / "prompts.csv"
    source.write_text(csv_text, encoding="utf-8")
    out = tmp_path / name
    plan = build_plan(source, output=out)
    ledger = Ledger.in_folder(out)
    ledger.sync(plan.jobs, plan.endpoint.id)
    if meta:  # as the runner stores it
        ledger.set_meta(
            "plan",
            {
                "endpoint": plan.endpoint.id,
                "input_path": plan.input_path,
                "extra_columns": plan.extra_columns,
                "param_columns": list(plan.endpoint.params),
            },
        )
    return Folder(path=out, ledger=ledger, plan=plan)


class SubmitWatch(Reporter):
    """A reporter that lets a test wait, without sleeping, until ``n`` submits were answered."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.seen = 0
        self.reached = asyncio.Event()

    def moved(self, before: JobStatus, after: JobStatus) -> None:
        super().moved(before, after)
        if before is JobStatus.SUBMITTING and after is not JobStatus.SUBMIT_UNCERTAIN:
            self.seen += 1
            if self.seen >= self.n:
                self.reached.set()
