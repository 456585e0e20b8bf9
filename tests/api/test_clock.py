"""The run clock: pauses of the process are seen once and told once; deadlines count only
the time the loop ran, and read what arrived while it did not."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from batchgen.api.clock import RunClock, duration_text


class Shifted:
    """time.monotonic (or time.time) plus an offset a test moves: a pause, as the clock sees it."""

    def __init__(self, base: float = 0.0) -> None:
        self.offset = base

    def __call__(self) -> float:
        return time.monotonic() + self.offset


async def watching(clock: RunClock) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(clock.watch(stop))
    await asyncio.sleep(0)
    return stop, task


async def ticks(clock: RunClock, count: int = 3) -> None:
    """Let the watch look a few times."""
    await asyncio.sleep(clock.tick * count)


async def test_a_deadline_expires_once_its_run_time_is_spent() -> None:
    """With no pause, ``deadline`` is ``asyncio.timeout``: TimeoutError when time is up."""
    clock = RunClock()
    with pytest.raises(TimeoutError):
        async with clock.deadline(0.02):
            await asyncio.sleep(5)
    assert clock.paused == 0


async def test_no_deadline_never_expires() -> None:
    """``deadline(None)`` sets no limit."""
    async with RunClock().deadline(None):
        assert await asyncio.wait_for(asyncio.sleep(0, "ok"), 1) == "ok"


async def test_an_answer_that_came_while_the_loop_was_stopped_is_read() -> None:
    """The loop does not run for longer than the deadline while an answer arrives: the
    deadline fires late, lets the answer be read, and nothing times out."""
    clock = RunClock()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        reader, writer = await asyncio.open_connection(sock=ours)
        answered = threading.Event()

        def answer() -> None:
            theirs.sendall(b"answer")
            answered.set()

        def stopped() -> None:  # the process is stopped: the loop runs nothing
            threading.Timer(0.05, answer).start()
            answered.wait(5)
            time.sleep(0.6)

        asyncio.get_running_loop().call_later(0.01, stopped)
        async with clock.deadline(0.1):
            assert await reader.read(6) == b"answer"
        writer.close()


async def test_a_pause_seen_by_the_watch_is_counted_and_told_once() -> None:
    """The monotonic clock jumps 100 s between two looks of the watch: ``paused`` grows by
    about that, ``now()`` does not, and one note says how long it was."""
    mono = Shifted()
    notes: list[str] = []
    clock = RunClock(monotonic=mono, tick=0.01)
    clock.notify = notes.append
    stop, task = await watching(clock)
    before = clock.now()
    mono.offset += 100.0
    await ticks(clock)
    assert clock.now() - before < 5
    assert 99 < clock.paused < 101
    stop.set()
    await task
    assert len(notes) == 1
    assert notes[0].startswith("paused for 1 min 40 s (the process was stopped)")


async def test_a_deadline_set_before_a_pause_gets_its_run_time_back() -> None:
    """A deadline of 0.2 s, the clock jumping 100 s under it: it still has its time left."""
    mono = Shifted()
    clock = RunClock(monotonic=mono, tick=0.01)
    stop, task = await watching(clock)
    async with clock.deadline(0.2):
        mono.offset += 100.0
        await asyncio.sleep(0.05)  # well inside the deadline's run time
    stop.set()
    await task
    assert clock.paused > 99


async def test_a_system_suspend_is_told_but_not_counted() -> None:
    """The wall clock jumps an hour while monotonic time stood still (Linux suspends it): a
    note says so; nothing is counted twice, since monotonic time never saw the hour."""
    wall = Shifted(time.time() - time.monotonic())
    notes: list[str] = []
    clock = RunClock(wall=wall, tick=0.01)
    clock.notify = notes.append
    stop, task = await watching(clock)
    wall.offset += 3600.0
    await ticks(clock)
    stop.set()
    await task
    assert clock.paused == 0
    assert len(notes) == 1
    assert notes[0].startswith("paused for 1 h (the computer slept")


def test_a_late_timer_alone_counts_a_pause_once() -> None:
    """Without the watch, a timer's lateness is the measure; two timers late for the same
    pause count it once."""
    mono = Shifted()
    clock = RunClock(monotonic=mono)
    mono.offset += 50.0
    assert clock.check(late=49.0) == 49.0
    assert clock.check(late=49.0) == 0.0
    assert clock.paused == 49.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(4.2, "4 s"), (60, "1 min"), (185, "3 min 5 s"), (3600, "1 h"), (25_920, "7 h 12 min")],
)
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    """Pauses are told in seconds, minutes and hours."""
    assert duration_text(seconds) == text
