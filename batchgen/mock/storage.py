"""What the emulator's storage holds: tokens, uploaded files, multipart uploads under way.

The routes (``storage_routes``) follow the protocol notes ("Uploading local files"): a token
asked with the API key, simple and multipart uploads with the token, and the older initiate +
PUT. A finished upload is served back at its ``access_url`` (``/files/up/{id}/{name}``).

``refused`` is what a model does with its file inputs: it fetches every URL a file parameter
(``type: file`` in the spec, or any ``*_url`` field) names. A URL on this server that it did not
serve (an upload it no longer holds, a video it never made) fails, as does a value that is no
URL (a local path) and a ``data:`` URI that is malformed or decodes to more than
``data_uri_max_bytes``. A URL on another host cannot be fetched without a network: it is taken
as fetchable, unless ``strict_file_urls`` (then only what this server served is).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from batchgen.mock.config import MockConfig
from batchgen.mock.queue import JobQueue, JobState
from batchgen.plan.endpoint import EndpointSpec
from batchgen.plan.params import dotted

_UPLOADED = re.compile(r"/files/up/([0-9a-f]+)/([^/]+)")
_VIDEO = re.compile(r"/files/([^/]+)/output\.mp4")
_DATA_URI = re.compile(r"data:([^;,]*)(;[^,]*)?,(.*)", re.DOTALL)


@dataclass(slots=True)
class Stored:
    """One file the storage serves: its bytes as they arrived (in pieces), and their digest."""

    name: str
    content_type: str
    pieces: list[bytes]
    size: int
    sha256: str

    def span(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``[start, end)``, piece by piece."""
        at = 0
        for piece in self.pieces:
            low, high = max(start - at, 0), min(end - at, len(piece))
            if low < high:
                yield piece[low:high]
            at += len(piece)
            if at >= end:
                return


@dataclass(slots=True)
class Pending:
    """An upload started but not finished: multipart (parts by number, with their ETags) or
    the older initiate, waiting for its PUT."""

    file_id: str
    name: str
    content_type: str
    parts: dict[int, tuple[list[bytes], str]] = field(default_factory=dict)


def stored(name: str, content_type: str, pieces: list[bytes]) -> Stored:
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece)
    return Stored(name, content_type, pieces, sum(map(len, pieces)), digest.hexdigest())


class Storage:
    """Tokens, files and uploads under way of one emulator (forgotten by a reset)."""

    __slots__ = ("_config", "files", "pending", "tokens")

    def __init__(self, config: MockConfig) -> None:
        self._config = config
        self.tokens: dict[str, float] = {}  # token -> when it expires (Unix seconds)
        self.files: dict[str, Stored] = {}  # file id -> a finished upload
        self.pending: dict[str, Pending] = {}  # uploadId (or initiate id) -> under way

    def __repr__(self) -> str:
        return f"<Storage files={len(self.files)} pending={len(self.pending)}>"

    def issue_token(self) -> tuple[str, float]:
        """A new token and when it expires (``storage_token_ttl`` emulated seconds)."""
        token = secrets.token_urlsafe(24)
        expires = time.time() + self._config.scaled(self._config.storage_token_ttl)
        self.tokens[token] = expires
        return token, expires

    def token_problem(self, header: str | None) -> str | None:
        """Why ``header`` is not ``Bearer <a live token>``, or None."""
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "Missing or invalid storage token"
        expires = self.tokens.get(token.strip())
        if expires is None:
            return "Invalid storage token"
        if time.time() >= expires:
            return "Storage token expired"
        return None

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(12)

    def refused(
        self, spec: EndpointSpec, values: dict[str, Any], queue: JobQueue, own: set[str]
    ) -> list[tuple[str, str, str]]:
        """``(field, message, type)`` for each file input a model could not fetch; ``own``
        are the hosts (``host:port``) this server answers on."""
        problems = []
        for name, value in values.items():
            param = spec.params.get(name)
            if param is not None and param.holds_files:  # a file, or files in a list
                found = [(dotted(name, at), text) for at, _, text in param.file_leaves(value)]
            elif isinstance(value, str) and name.endswith("_url"):
                found = [(name, value)]
            else:
                continue
            for where, text in found:
                problem = self._fetch_problem(text, queue, own)
                if problem is not None:
                    problems.append((where, *problem))
        return problems

    def _fetch_problem(self, value: str, queue: JobQueue, own: set[str]) -> tuple[str, str] | None:
        if value.startswith("data:"):
            match = _DATA_URI.fullmatch(value)
            if match is None or match[2] != ";base64":
                return "Invalid data URI: expected data:<mime>;base64,<data>", "value_error"
            try:
                size = len(base64.b64decode(match[3], validate=True))
            except (binascii.Error, ValueError):
                return "Invalid data URI: its data is not base64", "value_error"
            limit = self._config.data_uri_max_bytes
            if size > limit:
                return f"Data URI too large ({size} bytes; at most {limit})", "file_too_large"
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return "Input should be a valid URL", "url_parsing"
        if parts.netloc.lower() not in own and not self._config.strict_file_urls:
            return None  # another host: a model would fetch it; this server cannot tell
        uploaded = _UPLOADED.fullmatch(parts.path)
        held = None if uploaded is None else self.files.get(uploaded[1])
        if held is not None and uploaded is not None and held.name == uploaded[2]:
            return None  # the file route answers only the id with its own name
        video = _VIDEO.fullmatch(parts.path)
        job = queue.jobs.get(video[1]) if video is not None else None
        if job is not None and job.state is JobState.COMPLETED and job.failure is None:
            return None
        return f"Failed to download the file from {value}: 404 Not Found", "file_download_error"
