"""A shared ledger named by URL: ``--ledger postgresql://USER:PASSWORD@HOST/DB --batch NAME``.

``check_url`` refuses, before anything connects, a URL that is not PostgreSQL's; ``masked``
is the URL as any message, log line or file may show it (the password replaced by ``***``);
``batchgen.ledger.opener.open_shared`` opens the batch, saying plainly when psycopg is not
installed. The password goes to the database server only.

A job of a shared batch records where its worker put its video (``JobRow.video_dir``): the
worker's folder as ``host:/absolute/folder``, or, for a worker whose videos go to object
storage (``--store``), the store's URL (``s3://bucket/prefix``): ``in_store`` tells them apart.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from batchgen.errors import UsageError

SCHEMES = ("postgresql", "postgres")
ENV = "BATCHGEN_LEDGER"
_QUERY_PASSWORD = re.compile(r"(?i)(password=)[^&]*")


def check_url(url: str) -> str:
    """``url`` when it names a PostgreSQL database; else UsageError (the URL masked)."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in SCHEMES:
        raise UsageError(
            f"--ledger {masked(url)!r} is not a PostgreSQL URL: give "
            "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        )
    return url


def masked(url: str) -> str:
    """``url`` with its password, if any (``USER:PASSWORD@`` or ``?password=``), as ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unreadable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = _QUERY_PASSWORD.sub(r"\1***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's message) with ``url``'s password taken out wherever it appears."""
    password = _password(url)
    text = text.replace(url, masked(url))
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(str(secret), "***")
    return text


def _password(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    given = [v for k, v in parse_qsl(parts.query) if k.lower() == "password"]
    return parts.password or (given[0] if given else None)


@dataclass(frozen=True, slots=True)
class SharedBatch:
    """A batch in a shared ledger: the database's URL (it may hold a password: show
    ``masked(url)``) and the batch's name there."""

    url: str
    name: str

    def __str__(self) -> str:
        return f"batch {self.name!r} at {masked(self.url)}"


@dataclass(frozen=True, slots=True)
class Worker:
    """One ``batchgen run`` working on a shared batch: its id (unique per process) and the
    folder it downloads into."""

    id: str
    host: str
    pid: int
    folder: str  # absolute

    @classmethod
    def here(cls, folder: str) -> Worker:
        host, pid = socket.gethostname(), os.getpid()
        # One leading slash: ``host://folder`` would read as a URL (see ``in_store``).
        absolute = "/" + os.path.abspath(folder).lstrip("/")
        return cls(f"{host}:{pid}:{os.urandom(3).hex()}", host, pid, absolute)

    @property
    def video_dir(self) -> str:
        """Where its videos are, as the ledger records it (``host:/absolute/folder``)."""
        return f"{self.host}:{self.folder}"


def in_store(place: str | None) -> bool:
    """True when ``place`` (a job's ``video_dir``, or a manifest's ``video_path``) is a URL in
    a store (``s3://...``), not ``host:/folder`` or a path."""
    return place is not None and "://" in place
