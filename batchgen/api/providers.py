"""Where the queue API lives and how to authenticate: presets from ``providers.yaml``.

``connect`` turns run settings (provider, optional base URL, auth scheme and key variable
overrides) into a ``Connection``. The key is read from the environment variable the preset (or
``--api-key-env``) names, or from ``--api-key-file``; never from a flag value. The key is kept
out of ``repr`` and of ``public()``, which is what gets written to disk.

A pool (``--api-key-env A,B``, or a spec's ``run: {keys: [...]}``) reads one key from each
variable: ``Connection.keys``, in the order given, each named on disk only by its variable and
a short fingerprint (``key_id``). The first is the connection's own ``api_key``.

Both are checked before anything is sent: a key must be one line of printable ASCII without
spaces (a second line or a control character would otherwise fail inside the HTTP library
with the job's POST half begun), and a base URL must hold no ``user:password@`` (it would be
written to ``run.json``, the log and the ledger). The error messages never quote a secret.

How hosts are reached (the proxy of ``HTTPS_PROXY``..., the CAs of ``--ca-bundle``) is the
connection's ``network`` (``batchgen.api.network``), read from the same environment.
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

from batchgen.api.network import Network
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
    platform_url: str | None = (
        None  # fal's platform API: price list, request log; "base": the API's
    )


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
class ApiKey:
    """One key of a connection: the variable it came from, its own cap on jobs in flight
    (``None``: the run's ``concurrency``) and the key, which never appears in ``repr``."""

    env: str
    key: str = field(repr=False)
    concurrency: int | None = None

    @property
    def key_id(self) -> str:
        """Which key this is, for the ledger: its variable and a short fingerprint, never it."""
        return f"{self.env}:{fingerprint(self.key)}"

    def public(self) -> dict[str, Any]:
        """What may be written to disk: no key."""
        return {"env": self.env, "key_id": self.key_id, "concurrency": self.concurrency}


def fingerprint(key: str) -> str:
    """8 hex digits that tell keys apart and give nothing of them away."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


# The origin of a run's own emulator (``run --mock``): it lives and dies with its process.
IN_PROCESS = "in-process emulator"


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
    keys: tuple[ApiKey, ...] = ()  # a pool; () : the one key above
    platform_url: str | None = None  # fal's platform API (price list, request log); None: none
    # Proxies and trusted CAs; made by hand, a connection reaches hosts as os.environ says.
    network: Network = field(default_factory=Network.from_env)

    @property
    def request_log(self) -> str | None:
        """Where the request log is read (``batchgen.api.requestlog``): the platform API."""
        return self.platform_url

    @property
    def pool(self) -> tuple[ApiKey, ...]:
        """Every key of this connection, in order: the pool, or the one key (none without)."""
        if self.keys:
            return self.keys
        return (ApiKey(self.api_key_env, self.api_key),) if self.api_key else ()

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key.key_id for key in self.pool)

    def key_for(self, key_id: str | None) -> ApiKey | None:
        """The key named ``key_id``, else the first (a job recorded without one)."""
        pool = self.pool
        return next((key for key in pool if key.key_id == key_id), pool[0] if pool else None)

    def header(self, key: ApiKey | None) -> str | None:
        """The ``Authorization`` header value that sends ``key``, or None without one."""
        if key is None:
            return None
        return f"{'Bearer' if self.auth_scheme == 'bearer' else 'Key'} {key.key}"

    @property
    def origin(self) -> str:
        """Where request ids submitted through this connection belong."""
        return self.label or self.base_url

    @property
    def key_id(self) -> str | None:
        """Which key this is, for the ledger: its variable and a short fingerprint, never it."""
        return f"{self.api_key_env}:{fingerprint(self.api_key)}" if self.api_key else None

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` header value of the first key, or None without a key."""
        pool = self.pool
        return self.header(pool[0]) if pool else None

    def public(self) -> dict[str, Any]:
        """What may be written to disk: no key."""
        return {
            "provider": self.provider,
            "base_url": redact(self.base_url),
            "auth_scheme": self.auth_scheme,
            "api_key_env": self.api_key_env,
            "keys": [key.public() for key in self.pool],
            "follow": self.follow,
            "storage": self.storage.public(),
            "network": self.network.public(),
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
            v.get("platform_url"),
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

    Several keys (``RunSettings.key_envs``) make a pool: every variable must hold a key
    (the emulator makes one up for each that does not); ``api_key_file`` is for one key only.

    Raises UsageError for an unknown provider, a bad URL, a missing key (naming each
    missing variable), a proxy variable that names no proxy, or a ``ca_bundle`` that
    cannot be read.
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
    env = os.environ if environ is None else environ
    warnings = check_base_url(url)
    named = settings.key_envs()
    if len(named) > 1:
        pool = _pool(settings, env, api_key_file)
        warnings += _caps(pool, settings.concurrency)
        key_env, key = pool[0].env, pool[0].key
    else:
        key_env = named[0].env if named else preset.api_key_env
        found = _read_key(key_env, api_key_file, env)
        if found is None and settings.provider == "mock":
            found = MOCK_KEY
        if found is None:
            raise UsageError(
                f"no API key: set the environment variable {key_env} "
                "(or pass --api-key-env NAME, or --api-key-file FILE)"
            )
        key = found
        cap = named[0].concurrency if named else None
        pool = (ApiKey(key_env, key, cap),) if cap is not None else ()
    follow = settings.follow or preset.follow
    storage, more = _storage(settings, preset, url, key_env, key, environ)
    network = Network.from_env(environ, ca_bundle=settings.ca_bundle)
    return Connection(
        settings.provider,
        url,
        scheme,
        key_env,
        key,
        (*warnings, *more),
        follow,
        storage=storage,
        keys=pool,
        platform_url=_platform(preset, url),
        network=network,
    )


def _platform(preset: Preset, url: str) -> str | None:
    """The preset's platform host, asked only for the preset's own API: the key of a base URL
    given by hand may belong to another host."""
    if preset.platform_url == "base":
        return url
    return preset.platform_url if url == preset.base_url.rstrip("/") else None


def _pool(
    settings: RunSettings, environ: Mapping[str, str], api_key_file: str | Path | None
) -> tuple[ApiKey, ...]:
    """The keys of a pool, one from each variable; UsageError naming every one unset."""
    if api_key_file is not None:
        raise UsageError(
            "--api-key-file holds one key; a pool of keys is read from the environment "
            "(--api-key-env A,B)"
        )
    pool, missing = [], []
    for named in settings.key_envs():
        key = _read_key(named.env, None, environ)
        if key is None and settings.provider == "mock":
            key = f"{MOCK_KEY}-{named.env}"  # an account of its own on the emulator
        if key is None:
            missing.append(named.env)
        else:
            pool.append(ApiKey(named.env, key, named.concurrency))
    if missing:
        raise UsageError(
            f"no API key in {', '.join(missing)}: set "
            + ("that environment variable" if len(missing) == 1 else "those environment variables")
            + " (each key of the pool is read from its own)"
        )
    keys = [key.key for key in pool]
    same = [key.env for key in pool if keys.count(key.key) > 1]
    if same:
        raise UsageError(f"{' and '.join(same)} hold the same key: give each variable its own")
    return tuple(pool)


def _caps(pool: tuple[ApiKey, ...], concurrency: int) -> list[str]:
    """A warning when the keys' own caps allow more than ``--concurrency`` in all."""
    caps = [key.concurrency for key in pool if key.concurrency is not None]
    if len(caps) < len(pool) or sum(caps) <= concurrency:
        return []
    return [
        f"the keys' caps add up to {sum(caps)}, and --concurrency {concurrency} caps the run "
        f"in all: at most {concurrency} jobs in flight (raise --concurrency to use them all)"
    ]


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
