"""The answers of fal storage, read: its token, the URLs it names, and their origins.

A token answer must hold ``token``, ``token_type`` and an http(s) ``base_url``; ``expires_at``
may be ISO 8601 (with ``Z`` or an offset; none means UTC) or Unix seconds, and when it cannot be
read the token serves only the call that asked for it. Anything else unreadable is a
ProtocolError quoting the start of the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from batchgen.api.answers import Answer, excerpt
from batchgen.errors import ProtocolError

STORAGE_TYPE = "fal-cdn-v3"


@dataclass(frozen=True, slots=True)
class StorageToken:
    """A storage token: good for ``base_url`` until ``expires_at`` (Unix seconds)."""

    token: str = field(repr=False)
    token_type: str
    base_url: str
    expires_at: float

    @property
    def authorization(self) -> str:
        return f"{self.token_type} {self.token}"


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, lower case: where a secret may or may not go."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def url_in(answer: Answer, name: str) -> str:
    """The http(s) URL an answer holds under ``name``, or ProtocolError."""
    data = answer.object()
    url = data.get(name) if data is not None else None
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ProtocolError(f"storage answered without an {name}: {excerpt(answer.body)}")
    return url.rstrip("/")


def parse_token(answer: Answer, now: float) -> StorageToken:
    """The token a token answer holds (asked at ``now``), or ProtocolError."""
    data = answer.object() or {}
    token, kind, base = data.get("token"), data.get("token_type"), data.get("base_url")
    if not (isinstance(token, str) and token and isinstance(kind, str) and kind):
        raise ProtocolError(f"storage token answer unreadable: {excerpt(answer.body)}")
    if not isinstance(base, str) or urlsplit(base).scheme not in ("http", "https"):
        raise ProtocolError(f"storage token answer without a base_url: {excerpt(answer.body)}")
    return StorageToken(token, kind, base.rstrip("/"), when(data.get("expires_at"), now))


def when(value: Any, now: float) -> float:
    """``expires_at`` (ISO 8601, or Unix seconds) as Unix seconds; ``now`` when unreadable,
    so the token serves the call that asked for it and no other."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return now
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return now
