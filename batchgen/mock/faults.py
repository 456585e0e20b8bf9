"""Seeded fault injection: which request fails, and how, reproducibly under a seed.

Each kind of decision has its own generator (API answers, submit drops, job outcomes,
downloads, latencies, request ids), and every decision draws the same count of numbers
whatever it turns out to be.
So the outcome of the n-th submit does not depend on how many status polls came before it,
and a run with the same seed and the same request order gets the same faults.
"""

from __future__ import annotations

import enum
import random
import uuid
from dataclasses import dataclass

from batchgen.mock.config import MockConfig


class ApiFault(enum.Enum):
    """What the "ingress" does to an API request instead of passing it on."""

    RESET = "reset"
    INGRESS_503 = "503"
    RATE_LIMIT_RETRY_AFTER = "429_retry_after"
    RATE_LIMIT = "429"


class JobFault(enum.Enum):
    """How a job that ran ends, when not normally."""

    RUNNER_DISCONNECTED = "runner_disconnected"
    REQUEST_TIMEOUT = "request_timeout"


@dataclass(frozen=True, slots=True)
class ApiDecision:
    """The verdict for one API request: an optional fault, and whether to answer slowly."""

    fault: ApiFault | None
    slow: bool


_NONE = ApiDecision(None, False)


class Faults:
    """The dice of one emulator. ``reseed()`` starts every sequence again."""

    __slots__ = ("_api", "_config", "_drops", "_files", "_jobs", "_latency")

    def __init__(self, config: MockConfig) -> None:
        self._config = config
        self.reseed()

    def reseed(self) -> None:
        seed = self._config.seed

        def make(stream: str) -> random.Random:
            # String seeds hash the same way in every process (PYTHONHASHSEED plays no part).
            return random.Random(None if seed is None else f"{seed}:{stream}")

        self._api = make("api")
        self._drops = make("drops")
        self._jobs = make("jobs")
        self._files = make("files")
        self._latency = make("latency")

    def api(self) -> ApiDecision:
        """Decide one submit/status/stream/result/cancel request."""
        c = self._config
        draw = self._api.random
        reset, ingress, limited_ra, limited, slow = draw(), draw(), draw(), draw(), draw()
        fault = None
        if reset < c.fault_reset:
            fault = ApiFault.RESET
        elif ingress < c.fault_503:
            fault = ApiFault.INGRESS_503
        elif limited_ra < c.fault_429_retry_after:
            fault = ApiFault.RATE_LIMIT_RETRY_AFTER
        elif limited < c.fault_429:
            fault = ApiFault.RATE_LIMIT
        is_slow = slow < c.fault_slow
        return _NONE if fault is None and not is_slow else ApiDecision(fault, is_slow)

    def submit_drop(self) -> bool:
        """Whether a submit that created its job loses its answer."""
        return self._drops.random() < self._config.fault_submit_drop

    def job(self) -> JobFault | None:
        """The transient failure a new job will end with, if any."""
        disconnected, timed_out = self._jobs.random(), self._jobs.random()
        if disconnected < self._config.fault_runner_disconnected:
            return JobFault.RUNNER_DISCONNECTED
        if timed_out < self._config.fault_request_timeout:
            return JobFault.REQUEST_TIMEOUT
        return None

    def cancel_ignored(self) -> bool:
        """Whether a running job's runner ignores a cancel signal."""
        return self._jobs.random() < self._config.fault_cancel_ignored

    def truncate(self) -> bool:
        """Whether a file download stops short of its Content-Length."""
        return self._files.random() < self._config.fault_truncate

    def file_down(self) -> bool:
        """Whether the file host answers this download 503."""
        return self._files.random() < self._config.fault_file_503

    def running_time(self) -> float:
        """Emulated running seconds of a new job: ``latency`` times ``1 ± latency_jitter``."""
        c = self._config
        factor = self._latency.uniform(1 - c.latency_jitter, 1 + c.latency_jitter)
        return max(0.0, c.latency * factor)

    def request_id(self) -> str:
        """A new UUID4 request id, random even under a seed: as fal's, an id is never given
        twice, not even by another emulator started with the same seed (a folder run twice
        on the in-process emulator holds the first one's ids)."""
        return str(uuid.uuid4())
