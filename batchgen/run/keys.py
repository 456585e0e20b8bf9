"""A run's keys: one queue client per key, their concurrency slots, and retiring a refused key.

``KeyPool.of`` gives each key of a connection its own client (one rate limiter for all, see
``QueueClient.sibling``) and its own lane in the run's ``Slots``: a job is submitted with the
key whose slot it took, and followed (status, result, cancel, stream) with the key that
submitted it, named by the ledger's ``key_id``; a job whose key this run does not hold (a key
rotated since) with the first key (``foreign``). A key the provider refuses (``KeyRefused``) is
retired: no job is submitted with it again in this run; with no key left the run is over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from batchgen.api.client import QueueClient
from batchgen.api.providers import Connection
from batchgen.errors import FatalError, KeyRefused
from batchgen.run.limits import Slots


@dataclass(frozen=True, slots=True)
class PoolKey:
    """One key as a run uses it: named by ``key_id`` (variable and fingerprint), its client,
    and its own cap on jobs in flight (``None``: the run's)."""

    key_id: str
    env: str
    client: QueueClient
    cap: int | None = None


class KeyPool:
    """The keys of a run, in order, and the slots they share (``limit`` jobs in all)."""

    __slots__ = ("_keys", "_refused", "slots")

    def __init__(self, keys: Sequence[PoolKey], limit: int) -> None:
        if not keys:
            raise ValueError("a key pool needs a key")
        self._keys = {key.key_id: key for key in keys}
        self._refused: dict[str, KeyRefused] = {}
        self.slots = Slots(limit, {key.key_id: key.cap for key in keys})

    @classmethod
    def of(cls, connection: Connection, client: QueueClient, limit: int) -> KeyPool:
        """The pool of ``connection``'s keys; ``client`` is the first key's client, the
        others its siblings. A connection without a key has one lane, named ``""``."""
        keys = [
            PoolKey(
                key.key_id,
                key.env,
                client.sibling(connection.header(key), key.key_id),
                key.concurrency,
            )
            for key in connection.pool
        ]
        return cls(keys or [PoolKey("", "", client)], limit)

    def __repr__(self) -> str:
        return f"<KeyPool {len(self._keys)} key(s), {len(self._refused)} retired {self.slots!r}>"

    def __len__(self) -> int:
        return len(self._keys)

    def client(self, key_id: str | None) -> QueueClient:
        """The client of the key named ``key_id``; the first key's for a job recorded without
        one, or with a key this run does not hold (``check_origin`` refuses those in flight)."""
        key = self._keys.get(key_id or "")
        return key.client if key is not None else next(iter(self._keys.values())).client

    def env(self, key_id: str | None) -> str:
        """The variable that holds the key ``key_id``, for messages."""
        key = self._keys.get(key_id or "")
        return key.env if key is not None and key.env else "the API key"

    def holds(self, key_id: str | None) -> bool:
        return key_id is not None and key_id in self._keys

    def foreign(self, key_id: str | None) -> bool:
        """True for a job submitted with a key this run does not hold (rotated, or left out
        of the pool): it is followed with the first key, and a refusal of that key for this
        job says only that the provider will not show it this job, not that the key is bad."""
        return key_id is not None and key_id not in self._keys

    def retire(self, refused: KeyRefused) -> str | None:
        """Submit nothing more with the key ``refused`` names. Returns the line that says so
        the first time (None after); raises FatalError when no key is left: ``refused``
        itself for a run with one key, else one naming every key and why."""
        key_id = refused.key_id
        assert key_id is not None
        first = self.slots.retire(key_id)
        if first:
            self._refused[key_id] = refused
        if not self.slots.open:
            if len(self._keys) == 1:
                raise refused
            why = "; ".join(f"{self.env(k)}: {exc}" for k, exc in self._refused.items())
            raise FatalError(f"every key was refused ({why})", status=refused.status)
        if not first:
            return None
        left = [self.env(k) for k in self._keys if k not in self._refused]
        return (
            f"key {self.env(key_id)} retired: {refused}; its jobs not yet submitted go to "
            f"{', '.join(left)}"
        )
