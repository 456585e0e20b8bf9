"""Folder fsyncs shared by the videos moved in meanwhile: each caller waits for one that began
after it asked, and however many ask at once, they share two."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from batchgen.run.foldersync import FolderSync


class HeldFsync:
    """An fsync that records when each one begins and ends, and waits to be let go."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.go = [threading.Event() for _ in range(4)]
        self._count = 0

    def __call__(self, folder: Path) -> None:
        number = self._count
        self._count += 1
        self.log.append(f"begin {number}")
        self.go[number].wait(10)
        self.log.append(f"end {number}")


async def test_callers_during_an_fsync_share_the_next_one(tmp_path: Path) -> None:
    """A call while an fsync runs returns only after the next one (begun after it) ends; the
    ten such calls share that one."""
    fsync = HeldFsync()
    folders = FolderSync(fsync)
    first = asyncio.create_task(folders.synced(tmp_path))
    await asyncio.sleep(0)  # it has asked: its fsync is under way
    later = [asyncio.create_task(folders.synced(tmp_path)) for _ in range(10)]
    await asyncio.sleep(0)  # they have asked
    fsync.go[0].set()
    await first
    for _ in range(5):
        await asyncio.sleep(0)
    assert not any(task.done() for task in later)  # fsync 0 began before they asked
    fsync.go[1].set()
    await asyncio.gather(*later)
    assert fsync.log == ["begin 0", "end 0", "begin 1", "end 1"]
    assert folders.fsyncs == 2


async def test_a_cancelled_caller_leaves_the_others_their_fsync(tmp_path: Path) -> None:
    """One waiter cancelled does not cancel the fsync the others wait for."""
    fsync = HeldFsync()
    folders = FolderSync(fsync)
    first = asyncio.create_task(folders.synced(tmp_path))
    await asyncio.sleep(0)  # it has asked: its fsync is under way
    quitter = asyncio.create_task(folders.synced(tmp_path))
    stayer = asyncio.create_task(folders.synced(tmp_path))
    await asyncio.sleep(0)  # they have asked
    quitter.cancel()
    fsync.go[0].set()
    fsync.go[1].set()
    await asyncio.gather(first, stayer)
    assert quitter.cancelled()
    assert fsync.log == ["begin 0", "end 0", "begin 1", "end 1"]


async def test_folders_are_synced_apart(tmp_path: Path) -> None:
    """Two folders each get their own fsync at once."""
    fsync = HeldFsync()
    for event in fsync.go:
        event.set()
    folders = FolderSync(fsync)
    await asyncio.gather(folders.synced(tmp_path / "a"), folders.synced(tmp_path / "b"))
    assert folders.fsyncs == 2
