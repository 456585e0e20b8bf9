"""Slots: jobs in flight in all and per key; the least loaded key with room gets the next."""

from __future__ import annotations

import asyncio

import pytest

from batchgen.api.client import QueueClient
from batchgen.errors import FatalError, KeyRefused
from batchgen.plan.endpoint import resolve
from batchgen.run.keys import KeyPool, PoolKey
from batchgen.run.limits import Slots


def never() -> bool:
    return False


async def test_each_lane_stays_under_its_cap_and_the_total_holds() -> None:
    """Caps 2 and 3 under a total of 4: picks go to the least loaded lane (first on a tie),
    never past a lane's cap, never past the total."""
    slots = Slots(4, {"a": 2, "b": 3})
    picks = [await slots.acquire(never) for _ in range(4)]
    assert picks == ["a", "b", "b", "a"]  # 0/2 a; 0/3 b; 1/3 b < 1/2 a; 2/3 b > 1/2 a
    waiter = asyncio.create_task(slots.acquire(never))
    await asyncio.sleep(0)
    assert not waiter.done()  # 4 of 4 in flight
    slots.release("a")
    assert await waiter == "a"
    slots.release("b")
    assert await slots.acquire(never) == "b"
    assert slots.used == 4


async def test_lanes_without_caps_share_the_total() -> None:
    """Lanes with no cap of their own take turns under the total."""
    slots = Slots(4, {"a": None, "b": None})
    assert [await slots.acquire(never) for _ in range(4)] == ["a", "b", "a", "b"]


async def test_a_retired_lane_is_never_picked_and_waiters_move_on() -> None:
    """Retiring a lane sends waiters to the others; with every lane retired acquire gives
    up (None); a job resumed in an unknown lane counts in the first."""
    slots = Slots(8, {"a": 1, "b": 1})
    assert [await slots.acquire(never) for _ in range(2)] == ["a", "b"]
    waiter = asyncio.create_task(slots.acquire(never))
    await asyncio.sleep(0)
    assert slots.retire("a")
    assert not slots.retire("a")  # the first time only
    slots.release("a")
    await asyncio.sleep(0)
    assert not waiter.done()  # a is free but retired
    slots.release("b")
    assert await waiter == "b"
    assert slots.retire("b")
    assert not slots.open
    assert await slots.acquire(never) is None
    assert slots.take("gone:12345678") == "a"


def _pool(*caps: int | None) -> KeyPool:
    client = QueueClient(
        None,  # type: ignore[arg-type]  # never sends
        base_url="http://127.0.0.1:9",
        endpoint=resolve("fal-ai/kling-video/v2.5-turbo/pro/text-to-video"),
        authorization="Key k0",
    )
    keys = [
        PoolKey(f"K{i}:0000000{i}", f"K{i}", client.sibling(f"Key k{i}", f"K{i}:0000000{i}"), cap)
        for i, cap in enumerate(caps)
    ]
    return KeyPool(keys, 8)


def _refused(key_id: str, status: int = 401) -> KeyRefused:
    error = KeyRefused(f"the API key was refused ({status})", status=status)
    error.key_id = key_id
    return error


def test_retiring_a_key_says_so_once_and_none_left_is_fatal() -> None:
    """The first refusal of a key gives one line naming its variable, why, and the keys left;
    the next refusals of it say nothing; with none left, FatalError names every key."""
    pool = _pool(2, 3)
    line = pool.retire(_refused("K1:00000001"))
    assert line == (
        "key K1 retired: the API key was refused (401); its jobs not yet submitted go to K0"
    )
    assert pool.retire(_refused("K1:00000001")) is None
    with pytest.raises(FatalError) as caught:
        pool.retire(_refused("K0:00000000", 403))
    assert str(caught.value) == (
        "every key was refused (K1: the API key was refused (401); "
        "K0: the API key was refused (403))"
    )


def test_one_key_refused_is_its_own_error() -> None:
    """A run with one key stops on its refusal as it always did: that error itself."""
    pool = _pool(None)
    refused = _refused("K0:00000000")
    with pytest.raises(KeyRefused) as caught:
        pool.retire(refused)
    assert caught.value is refused


def test_jobs_are_followed_with_the_key_that_submitted_them() -> None:
    """The pool gives each key's own client; a job without a known key gets the first's."""
    pool = _pool(None, None)
    assert pool.client("K1:00000001").key_id == "K1:00000001"
    assert pool.client(None).key_id == "K0:00000000"
    assert pool.client("K9:99999999").key_id == "K0:00000000"
    assert pool.env("K1:00000001") == "K1"
