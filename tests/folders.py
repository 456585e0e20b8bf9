"""Output folders in any state, built straight on the ledger: no network, no engine.

Shared by the tests of the commands that read an output folder (manifest, status, report,
export, cancel). Times are fixed Unix seconds so nothing depends on the wall clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
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
        video = self.path / job.filename
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
            video_path=job.filename,
            bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        return video

    def queued(self, key: str, *, submitted: float = T0, position: int | None = 0) -> None:
        """Submit ``key``: it gets request id ``req-<key>`` and waits in the queue."""
        self.ledger.transition(key, S.SUBMITTING, attempts=1)
        self.ledger.transition(
            key, S.QUEUED, request_id=f"req-{key}", submitted_at=submitted, queue_position=position
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


def fake_mp4(seed: str, size: int = 64) -> bytes:
    """A whole MP4 (see ``mp4_bytes``) whose content is unique per ``seed``."""
    body = hashlib.sha256(seed.encode()).digest() * (size // 32 + 1)
    return mp4_bytes(body[:size])


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
