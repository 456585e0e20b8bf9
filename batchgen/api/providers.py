"""Where the queue API lives and how to authenticate: presets from ``providers.yaml``.

``connect`` turns run settings (provider, optional base URL, auth scheme and key variable
overrides) into a ``Connection``. The key is read from the environment variable the preset (or
``--api-key-env``) names, or from ``--api-key-file``; never from a flag value. The key is kept
out of ``repr`` and of ``public()``, which is what gets written to disk.

Both are checked before anything is sent: a key must be one line of printable ASCII without
spaces (a second line or a control character would otherwise fail inside the HTTP library
with the job's POST half begun), and a base URL must hold no ``user:password@`` (it would be
written to ``run.json``, the log and the ledger). The error messages never quote a secret.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from batchgen.errors import UsageError
from batchgen.plan.settings import AUTH_SCHEMES, RunSettings

# The emulator accepts any key; a fixed one spares the demo from setting a variable.
MOCK_KEY = "mock-key"
# fal's storage host, and the variable ``--upload fal`` reads its key from.
FAL_STORAGE = "https://rest.fal.ai"
FAL_KEY_ENV = "FAL_KEY"


@dataclass(frozen=True, slots=True)
class Preset:
    """A provider's defaults."""

    base_url: str
    auth_scheme: str
    api_key_env: str
    follow: str = "status"
    storage: str = "data"  # where local input files go: fal storage, or data: URIs
    storage_base_url: str | None = None  # fal storage's host; None: the API's base URL


@dataclass(frozen=True, slots=True)
class Storage:
    """Where a run's local input files go: ``fal`` storage at ``base_url`` (the token asked
    with ``api_key``), or ``data``: inline data: URIs. ``api_key`` never appears in ``repr``."""

    mode: str = "data"
    base_url: str | None = None
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        """What may be written to disk: no key."""
        base = None if self.base_url is None else redact(self.base_url)
        return {"mode": self.mode, "base_url": base, "api_key_env": self.api_key_env}


@dataclass(frozen=True, slots=True)
class Connection:
    """Everything needed to reach the queue API. ``api_key`` never appears in ``repr``."""

    provider: str
    base_url: str
    auth_scheme: str
    api_key_env: str
    api_key: str | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()
    follow: str = "status"
    # Whose request ids this connection can follow; the base URL unless set (an emulator
    # started in-process names itself, as it forgets every id when it stops).
    label: str | None = None
    storage: Storage = field(default_factory=Storage)

    @property
    def origin(self) -> str:
        """Where request ids submitted through this connection belong."""
        return self.label or self.base_url

    @property
    def key_id(self) -> str | None:
        """Which key this is, for the ledger: its variable and a short fingerprint, never it."""
        if not self.api_key:
            return None
        digest = hashlib.sha256(self.api_key.encode()).hexdigest()[:8]
        return f"{self.api_key_env}:{digest}"

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` header value, or None without a key."""
        if not self.api_key:
            return None
        return f"{'Bearer' if self.auth_scheme == 'bearer' else 'Key'} {self.api_key}"

    def public(self) -> dict[str, Any]:
        """What may be written to disk: no key."""
        return {
            "provider": self.provider,
            "base_url": redact(self.base_url),
            "auth_scheme": self.auth_scheme,
            "api_key_env": self.api_key_env,
            "follow": self.follow,
            "storage": self.storage.public(),
        }


def load_presets() -> dict[str, Preset]:
    """The presets of ``batchgen/api/providers.yaml``, by provider name."""
    text = resources.files("batchgen.api").joinpath("providers.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    return {
        str(name): Preset(
            str(v["base_url"]),
            str(v["auth_scheme"]),
            str(v["api_key_env"]),
            str(v.get("follow", "status")),
            str(v.get("storage", "data")),
            v.get("storage_base_url"),
        )
        for name, v in data.items()
    }


def connect(
    settings: RunSettings,
    *,
    api_key_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    base_url: str | None = None,
) -> Connection:
    """Resolve the connection of ``settings``; ``base_url`` (e.g. a started emulator's) wins.

    Its storage: ``--upload data`` sends local files inline; ``--upload fal`` uploads them to
    fal storage with the key in ``FAL_KEY``, whatever the provider; otherwise the preset's
    (fal: its storage with the same key; the emulator: its own; quickrouter: none, data
    URIs). ``--storage-base-url`` names the storage host.

    Raises UsageError for an unknown provider, a bad URL or a missing key.
    """
    presets = load_presets()
    preset = presets.get(settings.provider)
    if preset is None:
        close = difflib.get_close_matches(settings.provider, presets, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(
            f"unknown provider {settings.provider!r}; {hint}known: " + ", ".join(sorted(presets))
        )
    for given in (base_url, settings.base_url):  # an overridden one is still written to disk
        if given is not None:
            _no_userinfo(given)
    url = (base_url or settings.base_url or preset.base_url).rstrip("/")
    scheme = settings.auth_scheme or preset.auth_scheme
    if scheme not in AUTH_SCHEMES:
        raise UsageError(f"auth scheme {scheme!r} is not one of {', '.join(AUTH_SCHEMES)}")
    key_env = settings.api_key_env or preset.api_key_env
    warnings = tuple(check_base_url(url))
    key = _read_key(key_env, api_key_file, os.environ if environ is None else environ)
    if key is None and settings.provider == "mock":
        key = MOCK_KEY
    if key is None:
        raise UsageError(
            f"no API key: set the environment variable {key_env} "
            "(or pass --api-key-env NAME, or --api-key-file FILE)"
        )
    follow = settings.follow or preset.follow
    storage, more = _storage(settings, preset, url, key_env, key, environ)
    return Connection(
        settings.provider,
        url,
        scheme,
        key_env,
        key,
        (*warnings, *more),
        follow,
        storage=storage,
    )


def _storage(
    settings: RunSettings,
    preset: Preset,
    api_url: str,
    key_env: str,
    key: str,
    environ: Mapping[str, str] | None,
) -> tuple[Storage, list[str]]:
    """Where local input files go, and warnings about it (see ``connect``)."""
    if (settings.upload or preset.storage) != "fal":
        return Storage(), []
    if settings.upload == "fal":
        key_env = FAL_KEY_ENV
        found = _read_key(key_env, None, os.environ if environ is None else environ)
        if found is None:
            raise UsageError(
                f"--upload fal needs a fal key: set the environment variable {key_env} "
                "(or use --upload data to send files of a few MB inline)"
            )
        key, base = found, settings.storage_base_url or FAL_STORAGE
    else:
        base = settings.storage_base_url or preset.storage_base_url or api_url
    warnings = check_base_url(base)
    return Storage("fal", base.rstrip("/"), key_env, key), warnings


def check_base_url(url: str) -> list[str]:
    """Warnings about ``url``; raises UsageError when it is not an http(s) URL with a host and
    no ``user:password@``."""
    _no_userinfo(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise UsageError(f"base URL {url!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError(f"base URL {url!r} must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise UsageError(f"base URL {url!r} must not have a query or fragment")
    if parts.scheme == "http" and not is_loopback(host):
        return [f"base URL {url} is plain http: the API key travels unencrypted"]
    return []


def redact(url: str) -> str:
    """``url`` with a ``user:password@`` before its host replaced by ``***@``."""
    head, sep, rest = url.partition("://")
    if not sep:
        head, rest = "", url
    cut = _AUTHORITY_END.search(rest)
    authority, tail = (rest[: cut.start()], rest[cut.start() :]) if cut else (rest, "")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{head}{sep}{authority}{tail}"


_AUTHORITY_END = re.compile(r"[/?#]")


def _no_userinfo(url: str) -> None:
    if redact(url) != url:
        raise UsageError(
            f"base URL {redact(url)} holds a user name or password (user:password@); "
            "batchgen refuses it, as the URL is written to run.json and the log: give the "
            "key with --api-key-env or --api-key-file"
        )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_key(env_name: str, key_file: str | Path | None, environ: Mapping[str, str]) -> str | None:
    if key_file is not None:
        try:
            key = Path(key_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the API key file {key_file}: {exc}") from None
        if not key:
            raise UsageError(f"the API key file {key_file} is empty")
        return _checked_key(key, f"the API key file {key_file}")
    key = environ.get(env_name, "").strip()
    return _checked_key(key, f"the environment variable {env_name}") if key else None


def _checked_key(key: str, where: str) -> str:
    """``key`` when an Authorization header can carry it; else UsageError (never quoting it)."""
    lines = key.splitlines()
    if len(lines) > 1:
        raise UsageError(f"{where} holds {len(lines)} lines: put the key alone on one line")
    for position, char in enumerate(key, 1):
        if not "!" <= char <= "~":
            kind = (
                "a space"
                if char == " "
                else "a non-ASCII character"
                if char.isprintable()
                else "a control character"
            )
            raise UsageError(
                f"{where} holds {kind} at position {position}: "
                "an API key is printable ASCII without spaces"
            )
    return key
