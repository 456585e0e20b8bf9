"""The state every route shares, and the small HTTP helpers they all use."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from batchgen.mock.config import MockConfig
from batchgen.mock.faults import Faults
from batchgen.mock.queue import JobQueue, Logged
from batchgen.mock.signed import LinkSigner
from batchgen.mock.stats import Stats
from batchgen.mock.storage import Storage


class Emulator:
    """Live config, the job queue, the storage, the fault dice, the file links' signer and the
    statistics of one mock server."""

    __slots__ = ("config", "faults", "links", "queue", "requests", "stats", "storage")

    def __init__(self, config: MockConfig) -> None:
        config.check()
        self.config = config
        self.faults = Faults(config)
        self.queue = JobQueue(config)
        self.storage = Storage(config)
        self.stats = Stats()
        self.links = LinkSigner()  # signs file links when ``file_link_ttl`` is set
        self.requests: list[Logged] = []  # every submit queued, for the request log

    def __repr__(self) -> str:
        return f"<Emulator {self.queue!r}>"

    def snapshot(self) -> dict[str, Any]:
        """The statistics, as ``GET /_mock/stats`` answers them."""
        counts = {str(state): n for state, n in self.queue.counts.items()}
        return self.stats.snapshot(counts, self.queue.by_key())

    def reset(self) -> None:
        """Forget every job, upload and counter and start the fault sequences again."""
        self.queue.clear()
        self.storage = Storage(self.config)
        self.stats = Stats()
        self.requests = []
        self.faults.reseed()


EMULATOR = web.AppKey("emulator", Emulator)


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response (built by hand: ``web.json_response`` adds nothing on this hot path)."""
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def public_base(request: web.Request, configured: str | None) -> str:
    """``configured`` if set, else the origin the client used to reach this server."""
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}"
