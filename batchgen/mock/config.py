"""Every knob of the emulator in one dataclass, read live by the routes on each request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from batchgen.errors import UsageError
from batchgen.plan.endpoint import EndpointSpec, builtin_specs

AUTH_SCHEMES = ("any", "bearer", "key")
FOREIGN_KEYS = ("answer", "refuse", "unknown")
REQUEST_LOG = ("on", "down", "forbidden")

# Rates of the injected faults; each is a probability in [0, 1].
FAULT_FIELDS = (
    "fault_429",
    "fault_429_retry_after",
    "fault_503",
    "fault_reset",
    "fault_slow",
    "fault_submit_drop",
    "fault_runner_disconnected",
    "fault_request_timeout",
    "fault_cancel_ignored",
    "fault_truncate",
    "fault_file_503",
)


@dataclass(slots=True)
class MockConfig:
    """Settings of a fal-compatible queue emulator.

    The server reads this object on every request, so a test may change fields (fault rates,
    latency, accepted keys) between phases of a run. All durations are in *emulated* seconds
    and are multiplied by ``time_scale`` before they are waited on: with ``latency=110`` and
    ``time_scale=0.001`` a job runs for about 0.11 s of real time.

    Auth: ``auth_scheme`` is ``"key"`` (``Authorization: Key <k>``), ``"bearer"`` or ``"any"``
    (either); ``api_keys`` empty means every non-empty key is accepted (any other key: 401 on
    every API route). Each distinct key is an account with its own cap of ``max_in_progress``
    running jobs; the rest wait IN_QUEUE. A key in ``locked_keys`` is an account out of
    credit: its submits answer 403 "User is locked. Reason: Exhausted balance..."; its jobs
    can still be read and cancelled. ``foreign_keys`` is what a request for a job submitted
    with another key gets: ``answer`` (the keys are one account's: answered, and counted),
    ``refuse`` (403, another account's job) or ``unknown`` (404, as a job it does not know).

    Jobs: running time is ``latency`` times a uniform factor in ``1 ± latency_jitter``; a job
    that may start still waits ``queue_delay`` IN_QUEUE first (fal's pickup). ``result_ttl``
    (``None``: forever) is how long a result stays fetchable after completion. Prompts that
    contain ``policy_word`` (case-insensitive) end with a content-policy 422 at result.
    ``status_route=False`` answers the status and status-stream routes 404 as an unknown path,
    as a proxy that documents only the result route would.

    Faults: rates in [0, 1], drawn from random generators seeded by ``seed`` (``None``: not
    reproducible). API faults (``fault_429``, ``fault_429_retry_after``, ``fault_503``,
    ``fault_reset``, ``fault_slow``) hit submit, status, stream, result and cancel;
    ``fault_submit_drop`` creates the job then drops the connection; ``fault_runner_disconnected``
    and ``fault_request_timeout`` make jobs end COMPLETED with that ``error_type``;
    ``fault_cancel_ignored`` lets a running job finish despite a cancel; ``fault_truncate`` cuts
    file downloads short; ``fault_file_503`` answers file downloads 503 (set it to 1 for a CDN
    outage). ``file_ttl`` (``None``: forever) is how long a video stays on the file route after
    completion; after it the file answers 404, gone for good. ``file_link_ttl`` (``None``: plain
    links, as fal's CDN hands out) makes every result name its video by a signed link that
    expires that long after the result was read (S3 presigned style, ``batchgen.mock.signed``):
    past it the file answers 403 with S3's "Request has expired", and reading the result again
    gives a fresh link.

    Storage: a token lives ``storage_token_ttl``; a model refuses (422 at result) a data: URI
    that decodes to more than ``data_uri_max_bytes``, and a URL on this server it did not
    serve; with ``strict_file_urls``, any URL it did not serve (other hosts too).
    """

    auth_scheme: str = "any"
    api_keys: tuple[str, ...] = ()
    locked_keys: tuple[str, ...] = ()
    foreign_keys: str = "answer"
    max_in_progress: int = 2
    latency: float = 110.0
    latency_jitter: float = 0.2
    queue_delay: float = 1.0
    time_scale: float = 1.0
    keepalive: float = 15.0
    result_ttl: float | None = None
    file_ttl: float | None = None
    file_link_ttl: float | None = None
    video_bytes: int = 0
    files_base_url: str | None = None
    envelope_base_url: str | None = None
    policy_word: str | None = None
    status_route: bool = True
    request_log: str = "on"  # on; down: 503; forbidden: 403 (see batchgen.mock.requestlog)
    storage_token_ttl: float = 3600.0
    data_uri_max_bytes: int = 8 * 1024 * 1024
    strict_file_urls: bool = False
    seed: int | None = None
    retry_after: float = 1.0
    slow_delay: float = 10.0
    fault_429: float = 0.0
    fault_429_retry_after: float = 0.0
    fault_503: float = 0.0
    fault_reset: float = 0.0
    fault_slow: float = 0.0
    fault_submit_drop: float = 0.0
    fault_runner_disconnected: float = 0.0
    fault_request_timeout: float = 0.0
    fault_cancel_ignored: float = 0.0
    fault_truncate: float = 0.0
    fault_file_503: float = 0.0
    specs: dict[str, EndpointSpec] = field(default_factory=builtin_specs, repr=False)

    def scaled(self, seconds: float) -> float:
        """Real seconds for ``seconds`` of emulated time."""
        return seconds * self.time_scale

    def check(self) -> None:
        """Raise UsageError naming every setting out of range."""
        problems = []
        if self.auth_scheme not in AUTH_SCHEMES:
            problems.append(f"auth_scheme must be one of {', '.join(AUTH_SCHEMES)}")
        if self.foreign_keys not in FOREIGN_KEYS:
            problems.append(f"foreign_keys must be one of {', '.join(FOREIGN_KEYS)}")
        if self.request_log not in REQUEST_LOG:
            problems.append(f"request_log must be one of {', '.join(REQUEST_LOG)}")
        if any(not key for key in self.api_keys):
            problems.append("api_keys must not contain an empty key")
        if self.max_in_progress < 1:
            problems.append("max_in_progress must be at least 1")
        if self.time_scale <= 0:
            problems.append("time_scale must be above 0")
        if self.keepalive <= 0:
            problems.append("keepalive must be above 0")
        if not 0 <= self.latency_jitter <= 1:
            problems.append("latency_jitter must be between 0 and 1")
        if self.video_bytes < 0:
            problems.append("video_bytes must not be negative")
        if self.data_uri_max_bytes < 0:
            problems.append("data_uri_max_bytes must not be negative")
        if self.storage_token_ttl <= 0:
            problems.append("storage_token_ttl must be above 0")
        for name in ("latency", "queue_delay", "retry_after", "slow_delay"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative")
        for name in ("result_ttl", "file_ttl", "file_link_ttl"):
            ttl = getattr(self, name)
            if ttl is not None and ttl < 0:
                problems.append(f"{name} must not be negative")
        for name in FAULT_FIELDS:
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must be a rate between 0 and 1")
        if problems:
            raise UsageError("; ".join(problems))

    def update(self, changes: Mapping[str, object]) -> None:
        """Set the named fields from JSON values, all or none: raise UsageError naming every
        unknown field, value of the wrong type and setting out of range.

        ``specs`` cannot be set this way. ``seed`` takes effect at the next reset.
        """
        kinds = {f.name: str(f.type) for f in fields(self) if f.name != "specs"}
        values: dict[str, object] = {}
        problems = []
        for name, value in changes.items():
            kind = kinds.get(name)
            if kind is None:
                problems.append(f"{name!r} is not a setting of the emulator")
                continue
            try:
                values[name] = _coerce(kind, value)
            except TypeError:
                problems.append(f"{name} must be {kind}, not {value!r}")
        if problems:
            raise UsageError("; ".join(problems))
        replace(self, **values).check()  # type: ignore[arg-type]
        for name, value in values.items():
            setattr(self, name, value)

    def summary(self) -> str:
        """The settings a user trying a batch wants to know, on one line."""
        seconds = self.scaled(self.latency)
        keys = f"{len(self.api_keys)} key(s)" if self.api_keys else "any key"
        if self.locked_keys:
            keys += f", {len(self.locked_keys)} locked"
        faults = [
            f"{name.removeprefix('fault_').replace('_', '-')} {getattr(self, name):.0%}"
            for name in FAULT_FIELDS
            if getattr(self, name)
        ]
        parts = [
            f"jobs ~{seconds:.3g} s ({self.latency:g} s x time scale {self.time_scale:g})",
            f"{self.max_in_progress} running per key",
            f"auth {self.auth_scheme}, {keys}",
            "faults: " + (", ".join(faults) if faults else "none"),
        ]
        if not self.status_route:
            parts.append("no status route")
        if self.file_link_ttl is not None:
            parts.append(f"signed file links for {self.file_link_ttl:g} s")
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        return "; ".join(parts)

    def describe(self) -> dict[str, object]:
        """The settings as plain JSON-able values (endpoint specs by id only)."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = sorted(value) if f.name == "specs" else value
        return out


def _coerce(kind: str, value: object) -> object:
    """``value`` (as JSON decodes it) as a value of the field type ``kind``, or TypeError."""
    base, optional = kind.removesuffix(" | None"), kind.endswith(" | None")
    if value is None and optional:
        return None
    if base == "bool" and isinstance(value, bool):
        return value
    if isinstance(value, bool):
        raise TypeError(kind)
    if base == "int" and isinstance(value, int):
        return value
    if base == "float" and isinstance(value, int | float):
        return float(value)
    if base == "str" and isinstance(value, str):
        return value
    texts = isinstance(value, list) and all(isinstance(item, str) for item in value)
    if base == "tuple[str, ...]" and texts:
        return tuple(value)  # type: ignore[arg-type]
    raise TypeError(kind)
