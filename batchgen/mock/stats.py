"""What the emulator saw, for tests and benchmarks to assert on (``GET /_mock/stats``).

Counters only grow until ``POST /_mock/reset``. Keys are strings so that the in-process
``MockServer.stats()`` and the JSON route give the same dict.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from typing import Any


def fingerprint(key: str) -> str:
    """How stats name a key: 8 hex digits of its sha256 (as batchgen's ledger does)."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def payload_digest(payload: Any) -> str:
    """sha256 of the canonical JSON of ``payload`` (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class Stats:
    """Counters of one emulator.

    ``requests[route][code]``: answers by route (``submit``, ``status``, ``stream``,
    ``result``, ``cancel``, ``file``, ``storage_*``, ``upload_file``) and status code, or
    ``"reset"`` / ``"dropped"`` for connections closed without an answer. ``faults[kind]``:
    faults injected. ``uploads[sha256]``: finished uploads of that content (``count``,
    ``size``, and ``via`` simple, multipart or initiate); ``upload_bytes``: every byte the
    upload routes received, finished or not. ``keys``: per key, named by ``fingerprint``
    (never the key itself): its requests by route, and its jobs (``JobQueue.by_key``).
    ``foreign_key_requests[route]``: requests about a job sent with another key than the one
    that submitted it.
    """

    __slots__ = (
        "_file_hashes",
        "faults",
        "file_auth",
        "files",
        "foreign",
        "key_requests",
        "requests",
        "status_requests",
        "submits_by_endpoint",
        "submits_by_payload",
        "upload_bytes",
        "uploads",
    )

    def __init__(self) -> None:
        self.requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.faults: Counter[str] = Counter()
        self.submits_by_payload: Counter[str] = Counter()
        self.submits_by_endpoint: Counter[str] = Counter()
        self.status_requests: Counter[str] = Counter()
        self.key_requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.foreign: Counter[str] = Counter()
        self.file_auth: list[str] = []
        self.files: dict[str, dict[str, Any]] = {}
        self._file_hashes: dict[str, str] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.upload_bytes = 0

    def record(self, route: str, code: int | str) -> None:
        self.requests[route][str(code)] += 1

    def record_file(self, request_id: str, size: int, sha256: str, sent: int, full: bool) -> None:
        """One download: ``sent`` bytes went out; ``full`` if the answer was complete."""
        entry = self.files.get(request_id)
        if entry is None:
            entry = self.files[request_id] = {
                "sha256": sha256,
                "size": size,
                "downloads": 0,
                "bytes_sent": 0,
                "truncated": 0,
            }
        entry["downloads"] += 1
        entry["bytes_sent"] += sent
        if not full:
            entry["truncated"] += 1

    def record_upload(self, sha256: str, size: int, via: str) -> None:
        """A finished upload of ``size`` bytes with that digest, by ``via``."""
        entry = self.uploads.setdefault(sha256, {"count": 0, "size": size, "via": {}})
        entry["count"] += 1
        entry["via"][via] = entry["via"].get(via, 0) + 1

    def known_hash(self, request_id: str, size: int) -> str | None:
        return self._file_hashes.get(f"{request_id}:{size}")

    def remember_hash(self, request_id: str, size: int, sha256: str) -> None:
        self._file_hashes[f"{request_id}:{size}"] = sha256

    def snapshot(
        self, jobs: dict[str, int], by_key: dict[str, dict[str, int]] | None = None
    ) -> dict[str, Any]:
        """A JSON-able copy of every counter, plus ``jobs`` (jobs by state) and ``by_key``
        (each key's jobs, see ``JobQueue.by_key``)."""
        keys: dict[str, dict[str, Any]] = {}
        for key in {*self.key_requests, *(by_key or {})}:
            counts = (by_key or {}).get(key, {})
            keys[fingerprint(key)] = {**counts, "requests": dict(self.key_requests[key])}
        return {
            "requests": {route: dict(codes) for route, codes in self.requests.items()},
            "faults": dict(self.faults),
            "submits_by_payload": dict(self.submits_by_payload),
            "submits_by_endpoint": dict(self.submits_by_endpoint),
            "status_requests": dict(self.status_requests),
            "file_auth": {
                "count": len(self.file_auth),
                "schemes": sorted({value.partition(" ")[0] for value in self.file_auth}),
                "values": list(self.file_auth),
            },
            "files": {rid: dict(entry) for rid, entry in self.files.items()},
            "uploads": {
                sha: {**entry, "via": dict(entry["via"])} for sha, entry in self.uploads.items()
            },
            "upload_bytes": self.upload_bytes,
            "keys": keys,
            "foreign_key_requests": dict(self.foreign),
            "jobs": dict(jobs),
        }
