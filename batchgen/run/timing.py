"""Every wait of a run in one object, so tests (and the ``--mock`` demo) can compress them.

``scale`` multiplies the durations that come from settings (job timeout, expected latency, poll
cap, download patience) and the internal ones here (poll floor, backoff, stream silence): a run
against an emulator on a thousandfold-compressed clock keeps its proportions. A server's
``Retry-After`` is real time and is not scaled. ``sleep`` and ``wall`` are injectable.

``clock`` is the time the process ran (``batchgen.api.clock``): job timeouts, the cancel's grace
and the latencies the poll policy learns are measured on it, so a night with the laptop shut
times out nothing. ``wall`` stamps what is recorded (submitted at, completed at).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from batchgen.api.backoff import Backoff
from batchgen.api.clock import PROCESS, RunClock


@dataclass(frozen=True, slots=True)
class Timing:
    """The waits of a run, in seconds before ``scale`` is applied (see ``s``)."""

    scale: float = 1.0
    min_poll_interval: float = 0.1  # fal-client polls this often; ours is only a floor
    stream_silence: float = 20.0  # fal sends a keep-alive every 15 s: allow some slack
    cancel_grace: float = 120.0  # how long a cancelled job is followed before it is overdue
    # A job asked to stop holds its --concurrency slot until the provider says it ended, at
    # most this many times its --job-timeout after its submit (then the slot is freed).
    stuck_after: float = 3.0
    # How long after a lost submit fal's request log is trusted to list it (batchgen.run.reconcile).
    reconcile_settle: float = 5.0
    request_timeout: float = 60.0  # real seconds, not scaled
    download_read_timeout: float = 60.0  # real seconds, not scaled
    manifest_every: float = 5.0  # real seconds, not scaled
    progress_every: float = 1.0  # real seconds between redraws of the progress clock
    unreachable_after: float = 25.0  # real seconds: an API never reached stops the run
    # Real seconds an uploaded input file is reused before it is uploaded again: under the 7
    # days fal storage keeps a file at least.
    upload_retention: float = 6 * 86400.0
    # Workers sharing a batch (a PostgreSQL ledger), real seconds: how long a worker's claim
    # on a job holds without a heartbeat (so how soon a dead worker's jobs move on), and how
    # often a worker beats, and looks for jobs to take over once it has none to submit.
    lease: float = 60.0
    heartbeat: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)
    # Waits between tries of a failing download: growing from 0.5 s to 30 s, with jitter, for
    # as long as the run's --download-patience (scaled too) lasts; its attempts are not used.
    download_backoff: Backoff = field(default_factory=lambda: Backoff(base=0.5, cap=30.0))
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    wall: Callable[[], float] = time.time
    clock: RunClock = PROCESS

    def s(self, seconds: float) -> float:
        """``seconds`` of run time, in real seconds."""
        return seconds * self.scale
