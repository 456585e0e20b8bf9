"""Run settings: how a batch talks to the provider. From a job spec's ``run:``, then CLI flags.

Every field has a default; ``RunSettings.merged`` checks and applies a mapping of overrides
(unknown names and bad values are InputErrors naming where they came from). Secrets are never
settings: only the *name* of the variable that holds the key is.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from batchgen.errors import InputError, Problem
from batchgen.plan.text import shown

POLL_MODES = ("adaptive", "stream")
UNCERTAIN = ("retry", "fail")
AUTH_SCHEMES = ("key", "bearer")
# How jobs are followed (see batchgen.api.client): status looks, result polling, or found out.
FOLLOW_MODES = ("status", "result", "auto")
# How local input files reach the provider: fal storage (a URL), or inline data: URIs.
UPLOAD_MODES = ("fal", "data")


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Knobs of a run. Times are seconds; ``None`` means "not set"."""

    provider: str = "fal"
    base_url: str | None = None
    auth_scheme: str | None = None
    api_key_env: str | None = None
    follow: str | None = None  # None: the provider preset's
    concurrency: int = 8
    rate: float = 10.0
    max_cost: float | None = None
    max_attempts: int = 3
    job_timeout: float = 1800.0
    poll: str = "adaptive"
    expect_latency: float | None = None
    max_poll_interval: float = 30.0
    on_uncertain_submit: str = "retry"
    download_concurrency: int = 4
    max_file_bytes: int | None = None
    upload: str | None = None  # None: the provider preset's storage
    storage_base_url: str | None = None  # None: the preset's (fal: https://rest.fal.ai)

    def merged(
        self,
        values: dict[str, Any],
        source: str,
        lines: dict[str, int] | None = None,
        label: str = "option",
    ) -> RunSettings:
        """A copy with ``values`` applied (``None`` values are ignored)."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        problems: list[Problem] = []
        for name, value in values.items():
            line = (lines or {}).get(name)
            if name not in known:
                problems.append(
                    Problem(
                        source,
                        line,
                        name,
                        "is not a run setting; known: " + ", ".join(sorted(known)),
                        label,
                    )
                )
                continue
            if value is None:
                continue
            try:
                changes[name] = _check(name, value)
            except ValueError as exc:
                problems.append(Problem(source, line, name, str(exc), label))
        if problems:
            raise InputError(problems)
        return replace(self, **changes)

    def public(self) -> dict[str, Any]:
        """The settings as a plain mapping, safe to write to disk (holds no secret)."""
        return asdict(self)


def _check(name: str, value: Any) -> Any:
    if name in ("concurrency", "max_attempts", "download_concurrency", "max_file_bytes"):
        return _positive(value, int)
    if name in ("rate", "job_timeout", "max_poll_interval", "expect_latency"):
        return _positive(value, float)
    if name == "max_cost":
        number = _number(value, float)
        if number < 0:
            raise ValueError(f"{shown(value)} must be zero or more")
        return number
    choices = {
        "poll": POLL_MODES,
        "on_uncertain_submit": UNCERTAIN,
        "auth_scheme": AUTH_SCHEMES,
        "follow": FOLLOW_MODES,
        "upload": UPLOAD_MODES,
    }
    if name in choices:
        text = str(value).strip().lower()
        if text not in choices[name]:
            raise ValueError(f"{shown(value)} is not one of: {', '.join(choices[name])}")
        return text
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{shown(value)} must be a non-empty text")
    return value.strip()


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{shown(value)} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{shown(value)} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{shown(value)} is not a finite number")
    if kind is int:
        if not number.is_integer():
            raise ValueError(f"{shown(value)} is not a whole number")
        return int(number)
    return number


def _positive(value: Any, kind: type[int] | type[float]) -> Any:
    number = _number(value, kind)
    if number <= 0:
        raise ValueError(f"{shown(value)} must be above zero")
    return number
