"""How this process reaches hosts: the proxy the environment names for a URL, the CAs it trusts.

Proxies, read as curl, requests and fal-client read them: ``https_proxy`` / ``HTTPS_PROXY`` for
https URLs, ``http_proxy`` / ``HTTP_PROXY`` for http ones (the lower-case name first), and
``all_proxy`` / ``ALL_PROXY`` for a scheme without its own. ``no_proxy`` / ``NO_PROXY`` lists
hosts reached directly: ``*`` for every host; ``example.com`` (or ``.example.com``) for it and
its subdomains; ``host:port``; an address or a network (``10.0.0.0/8``). An https URL goes
through the proxy in a ``CONNECT`` tunnel (TLS end to end: the proxy sees neither the key nor
the bodies); an http URL is sent to it whole. A proxy URL may carry credentials
(``http://user:pass@proxy:3128``): they are sent to the proxy only (``Proxy-Authorization``),
and every text about the proxy (``Proxy``'s ``str``) shows it without them.

Nothing is read from ``~/.netrc``: aiohttp's ``trust_env`` would send its entries as Basic
auth to any host named there, a file host too. The proxy is resolved here for every request
and redirect instead (``batchgen.api.sessions``).

Trust (``ssl_context``): the system's CAs as OpenSSL finds them (``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` name other ones), plus, with ``ca_bundle`` (``--ca-bundle FILE``), the
certificates of that PEM file.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import aiohttp

from batchgen.errors import UsageError, open_files_error, too_many_open_files

# The variables naming a proxy for a URL's scheme, in the order they are read.
_PROXY_NAMES = {
    "https": ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"),
    "http": ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"),
}
_NO_PROXY_NAMES = ("no_proxy", "NO_PROXY")
_PROXY_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Transport failures that happen before a byte of the request left: nothing was created (a
# proxy refusing the tunnel has not passed the request on).
NOT_SENT = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    aiohttp.ClientHttpProxyError,
)


@dataclass(frozen=True, slots=True)
class Proxy:
    """A proxy from the environment. ``url`` holds no credentials; ``str`` is what messages
    show: ``http://proxy:3128 (HTTPS_PROXY)``."""

    url: str
    variable: str
    user: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"{self.url} ({self.variable})"

    @property
    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value of the credentials the proxy URL carried (Basic);
        None without."""
        if self.user is None:
            return None
        token = base64.b64encode(f"{self.user}:{self.password or ''}".encode())
        return f"Basic {token.decode('ascii')}"


@dataclass(frozen=True, slots=True)
class Network:
    """The proxies (by URL scheme), the hosts reached directly, and the extra trusted CAs
    (see the module docstring). ``direct`` names hosts always reached directly (an emulator
    this process serves itself)."""

    proxies: Mapping[str, Proxy] = field(default_factory=dict)
    no_proxy: tuple[str, ...] = ()
    no_proxy_variable: str = "NO_PROXY"
    ca_bundle: str | None = None
    direct: tuple[str, ...] = ()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, ca_bundle: str | None = None
    ) -> Network:
        """The network ``environ`` (default: this process's) describes; UsageError for a proxy
        URL that cannot be one, or a ``ca_bundle`` that cannot be read as PEM certificates."""
        env = os.environ if environ is None else environ
        proxies = {}
        for scheme, names in _PROXY_NAMES.items():
            name = next((n for n in names if env.get(n, "").strip()), None)
            if name is not None:
                proxies[scheme] = _proxy(env[name].strip(), name.upper())
        no_name = next((n for n in _NO_PROXY_NAMES if n in env), "NO_PROXY")
        entries = tuple(e.strip().lower() for e in env.get(no_name, "").split(",") if e.strip())
        if ca_bundle is not None:
            check_ca_bundle(ca_bundle)
        return cls(proxies, entries, no_name.upper(), ca_bundle)

    def proxy_for(self, url: str) -> Proxy | None:
        """The proxy a request to ``url`` goes through; None: directly."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        proxy = self.proxies.get(scheme)
        port = parts.port or _DEFAULT_PORTS.get(scheme)
        if proxy is None or self.bypassed(parts.hostname or "", port):
            return None
        return proxy

    def bypassed(self, host: str, port: int | None = None) -> bool:
        """True when ``host`` is reached directly: in ``direct``, or in ``no_proxy``."""
        host = host.lower().strip("[]").rstrip(".")
        if host in self.direct:
            return True
        return any(entry == "*" or _matches(entry, host, port) for entry in self.no_proxy)

    def route(self, url: str) -> str:
        """How ``url`` is reached, for messages: `` through the proxy http://p:3128
        (HTTPS_PROXY)``, `` directly (NO_PROXY)`` when a proxy is set but bypassed, or ``""``."""
        proxy = self.proxy_for(url)
        if proxy is not None:
            return f" through the proxy {proxy}"
        if self.proxies.get(urlsplit(url).scheme.lower()) is not None:
            return f" directly ({self.no_proxy_variable})"
        return ""

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the system's CAs and those of ``ca_bundle``."""
        context = ssl.create_default_context()
        if self.ca_bundle is not None:
            context.load_verify_locations(cafile=self.ca_bundle)
        return context

    def public(self) -> dict[str, object]:
        """What may be written to the run's log: no proxy credentials."""
        return {
            "proxies": {scheme: str(proxy) for scheme, proxy in sorted(self.proxies.items())},
            "no_proxy": ",".join(self.no_proxy) or None,
            "ca_bundle": self.ca_bundle,
        }


def check_ca_bundle(path: str) -> None:
    """UsageError unless ``path`` is a readable file of PEM certificates."""
    try:
        ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        raise UsageError(f"--ca-bundle {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"--ca-bundle {path}: is a folder, not a file of certificates") from None
    except ssl.SSLError:  # an OSError too: first
        raise UsageError(
            f"--ca-bundle {path}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ) from None
    except OSError as exc:
        raise UsageError(f"--ca-bundle {path}: cannot be read ({exc.strerror or exc})") from None


def _proxy(value: str, variable: str) -> Proxy:
    """The proxy ``value`` of ``variable`` names (``host:port`` alone means http)."""
    text = value if "://" in value else f"http://{value}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme.lower() not in _PROXY_SCHEMES or not parts.hostname:
        shown = _without_credentials(value)
        raise UsageError(
            f"{variable}={shown} is not a proxy batchgen can use: give http://HOST:PORT "
            "(or https://HOST:PORT), with USER:PASSWORD@ before the host if it needs them"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    where = f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")
    user = None if parts.username is None else unquote(parts.username)
    password = None if parts.password is None else unquote(parts.password)
    return Proxy(where, variable, user, password)


def _without_credentials(value: str) -> str:
    head, at, tail = value.rpartition("@")
    if not at:
        return value
    scheme, sep, _ = head.partition("://")
    return f"{scheme}{sep}***@{tail}" if sep else f"***@{tail}"


def _matches(entry: str, host: str, port: int | None) -> bool:
    """Whether one ``no_proxy`` entry covers ``host`` (and ``port``)."""
    name, want_port = entry, None
    if entry.count(":") == 1:  # host:port (an IPv6 address has more colons)
        name, _, text = entry.partition(":")
        if not text.isdigit():
            return False
        want_port = int(text)
    name = name.strip("[]").lstrip("*").lstrip(".").rstrip(".")
    if want_port is not None and port != want_port:
        return False
    if not name:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == name or host.endswith("." + name)
    try:
        return address in ipaddress.ip_network(name, strict=False)
    except ValueError:
        return False


def failure(exc: BaseException) -> str:
    """A transport failure in words, saying what to do where that is known: a certificate not
    trusted (``--ca-bundle``), a proxy that refused or cannot be reached, too many open files;
    else ``Type: text``."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert = exc.certificate_error
        why = getattr(cert, "verify_message", None) or getattr(cert, "reason", None) or cert
        return (
            f"the certificate of {exc.host}:{exc.port} is not trusted ({why}): give the "
            "certificate of the CA that signed it with --ca-bundle FILE (or SSL_CERT_FILE)"
        )
    code = open_files_error(exc)
    if code is not None:
        return too_many_open_files(code)
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        said = f"the proxy answered {exc.status} {exc.message}".rstrip()
        if exc.status == 407:
            return (
                f"{said}: give its credentials in the proxy variable "
                "(http://USER:PASSWORD@HOST:PORT)"
            )
        return said
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        reason = exc.os_error.strerror or exc.os_error
        return f"cannot connect to the proxy at {exc.host}:{exc.port} ({reason})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def lasting(exc: BaseException) -> bool:
    """True for a failure to connect that trying again will not mend: a certificate not
    trusted, a proxy refusing the credentials (or their absence)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return True
    return isinstance(exc, aiohttp.ClientHttpProxyError) and exc.status in (401, 403, 407)


def refused_here(exc: BaseException) -> bool:
    """True when a connection to this very machine was refused: nothing listens there, and
    waiting will not start it (a server started a moment later gets ``LOOPBACK_GRACE``)."""
    if not isinstance(exc, aiohttp.ClientConnectorError) or isinstance(
        exc, aiohttp.ClientProxyConnectionError
    ):
        return False
    if not isinstance(exc.os_error, ConnectionRefusedError):
        return False
    host = exc.host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local(exc: BaseException) -> bool:
    """True for a failure of this process, not of the network (too many open files): it
    says nothing about whether a host can be reached."""
    return open_files_error(exc) is not None
