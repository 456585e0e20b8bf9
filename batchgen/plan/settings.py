"""Run settings: how a batch talks to the provider. From a job spec's ``run:``, then CLI flags.

Every field has a default; ``RunSettings.merged`` checks and applies a mapping of overrides
(unknown names and bad values are InputErrors naming where they came from). Secrets are never
settings: only the *name* of the variable that holds the key is. Several keys (a pool) are
``api_key_env: A,B`` or ``keys: [{env: A, concurrency: 2}, {env: B}]``; whichever is given
last replaces the other (a ``--api-key-env`` flag replaces a spec's ``keys``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

from batchgen.errors import InputError, Problem
from batchgen.plan.durations import duration
from batchgen.plan.text import shown

POLL_MODES = ("adaptive", "stream")
UNCERTAIN = ("retry", "fail")
# Whether an uncertain submit is looked up in the provider's request log before it is resent.
RECONCILE = ("on", "off")
AUTH_SCHEMES = ("key", "bearer")
# How jobs are followed (see batchgen.api.client): status looks, result polling, or found out.
FOLLOW_MODES = ("status", "result", "auto")
# How local input files reach the provider: fal storage (a URL), or inline data: URIs.
UPLOAD_MODES = ("fal", "data")
# The fields of one key of a pool (``run: {keys: [...]}``).
KEY_FIELDS = ("env", "concurrency")
_ENV_NAME = re.compile(r"[^\s=,]+")


@dataclass(frozen=True, slots=True)
class KeyEnv:
    """One key of a pool: the variable that holds it, and its own cap on jobs in flight
    (``None``: it shares the run's ``concurrency``)."""

    env: str
    concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Knobs of a run. Times are seconds; ``None`` means "not set"."""

    provider: str = "fal"
    base_url: str | None = None
    auth_scheme: str | None = None
    api_key_env: str | None = None  # a variable's name, or several: "A,B"
    keys: tuple[KeyEnv, ...] = ()  # a pool with caps; () : api_key_env (or the preset's)
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
    reconcile: str = "on"
    download_concurrency: int = 4
    # How long a failing file host is tried again before its videos are left for the next run.
    download_patience: float = 900.0
    max_file_bytes: int | None = None
    upload: str | None = None  # None: the provider preset's storage
    storage_base_url: str | None = None  # None: the preset's (fal: https://rest.fal.ai)
    store: str | None = None  # videos and run files go to this fsspec URL (s3://bucket/prefix)
    ca_bundle: str | None = None  # a PEM file of CAs trusted beside the system's

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
        if changes.get("keys") and changes.get("api_key_env"):
            problems.append(
                Problem(
                    source,
                    (lines or {}).get("keys"),
                    "keys",
                    "give either keys or api_key_env, not both",
                    label,
                )
            )
        if problems:
            raise InputError(problems)
        if "api_key_env" in changes:  # the one given last names the keys
            changes.setdefault("keys", ())
        elif changes.get("keys"):
            changes["api_key_env"] = None
        return replace(self, **changes)

    def key_envs(self) -> tuple[KeyEnv, ...]:
        """The keys this run names: ``keys``, else each variable of ``api_key_env``; ()
        when neither is set (the provider preset's variable)."""
        if self.keys:
            return self.keys
        if self.api_key_env is None:
            return ()
        return tuple(KeyEnv(name) for name in env_names(self.api_key_env))

    def public(self) -> dict[str, Any]:
        """The settings as a plain mapping, safe to write to disk (holds no secret)."""
        return asdict(self)


def env_names(value: Any) -> tuple[str, ...]:
    """The variable names of ``A,B`` (one or more, each once); ValueError saying what is
    wrong."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{shown(value)} must be a non-empty text")
    names = tuple(env_name(part) for part in value.split(","))
    _once(names)
    return names


def env_name(value: Any) -> str:
    """One environment variable's name, stripped; ValueError when it cannot be one."""
    text = value.strip() if isinstance(value, str) else ""
    if not _ENV_NAME.fullmatch(text):
        what = "an empty name" if isinstance(value, str) and not text else shown(value)
        raise ValueError(f"{what} is not an environment variable name")
    return text


def key_cap(value: Any) -> int:
    """A key's own cap on jobs in flight: a whole number above zero."""
    return int(_positive(value, int))


def key_envs(value: Any) -> tuple[KeyEnv, ...]:
    """``keys`` checked: a list of ``{env: NAME, concurrency: N}`` (or KeyEnv), each variable
    once (an empty one: no pool); ValueError naming the first problem (a job spec reports each at
    its line, see ``batchgen.plan.jobspec``)."""
    wanted = "a list of {env: NAME, concurrency: N}"
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise ValueError(f"must be {wanted}, not {shown(value)}")
    out = []
    for number, item in enumerate(value, 1):
        if isinstance(item, KeyEnv):
            item = asdict(item)
        if not isinstance(item, Mapping):
            raise ValueError(
                f"key {number} must be {{env: NAME, concurrency: N}}, not {shown(item)}"
            )
        unknown = sorted(str(name) for name in item if name not in KEY_FIELDS)
        if unknown:
            raise ValueError(
                f"key {number}: {unknown[0]!r} is not a field of a key; known: "
                + ", ".join(KEY_FIELDS)
            )
        if item.get("env") is None:
            raise ValueError(f"key {number} needs env: the variable that holds it")
        cap = item.get("concurrency")
        out.append(KeyEnv(env_name(item["env"]), None if cap is None else key_cap(cap)))
    _once([key.env for key in out])
    return tuple(out)


def _once(names: Sequence[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{name} is named twice: name each key once")
        seen.add(name)


def _check(name: str, value: Any) -> Any:
    if name == "api_key_env":
        return ",".join(env_names(value))
    if name == "keys":
        return key_envs(value)
    if name in ("concurrency", "max_attempts", "download_concurrency", "max_file_bytes"):
        return _positive(value, int)
    if name in ("rate", "job_timeout", "max_poll_interval", "expect_latency"):
        return _positive(value, float)
    if name == "download_patience":
        return duration(value)  # 0: one try
    if name == "max_cost":
        number = _number(value, float)
        if number < 0:
            raise ValueError(f"{shown(value)} must be zero or more")
        return number
    choices = {
        "poll": POLL_MODES,
        "on_uncertain_submit": UNCERTAIN,
        "reconcile": RECONCILE,
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
    if name == "store":
        problem = store_url_problem(value.strip())
        if problem is not None:
            raise ValueError(problem)
    return value.strip()


def store_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a ``store`` (a URL without credentials), or None."""
    parts = urlsplit(url)
    if not parts.scheme or "://" not in url:
        return (
            f"{shown(url)} is not a URL: give s3://BUCKET/PREFIX, gcs://BUCKET/PREFIX or "
            "file:///PATH (or no store: videos go to the output folder)"
        )
    if "@" in parts.netloc:
        return (
            "the URL carries credentials: give it bare; credentials come from the "
            "environment (AWS_ACCESS_KEY_ID..., AWS_PROFILE) and are never written"
        )
    return None


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
