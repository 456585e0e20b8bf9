"""Folder fsyncs shared by the videos moved into a folder meanwhile (group fsync).

A video counts only once its rename into ``videos/`` is durable, which takes an fsync of the
folder after the rename. One such fsync makes every rename before it durable, and on ext4 it is
the costliest step of a download (a journal commit: about a millisecond of CPU). So the
downloads of a run share them: ``synced(folder)`` returns once an fsync of ``folder`` that
began after the call has ended. While one runs, every caller waits for the next, which begins
when it ends: at most one fsync runs per folder, at most one more waits, and however many
videos arrive at once, they take two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from batchgen.ledger.manifest import fsync_dir


class FolderSync:
    """Shared fsyncs of the folders a run moves videos into (see the module docstring)."""

    __slots__ = ("_fsync", "_next", "_running", "fsyncs")

    def __init__(self, fsync: Callable[[Path], None] | None = None) -> None:
        self._fsync = fsync or fsync_dir  # run in a thread
        self._running: dict[Path, asyncio.Future[None]] = {}  # the fsync under way, per folder
        self._next: dict[Path, asyncio.Future[None]] = {}  # the one to begin after it
        self.fsyncs = 0

    def __repr__(self) -> str:
        return f"<FolderSync fsyncs={self.fsyncs} running={len(self._running)}>"

    async def synced(self, folder: Path) -> None:
        """Return once an fsync of ``folder`` that began after this call has ended."""
        if folder not in self._running:
            waited = self._begin(folder)
        elif folder in self._next:
            waited = self._next[folder]
        else:
            waited = self._next[folder] = asyncio.get_running_loop().create_future()
        await asyncio.shield(waited)  # a caller cancelled leaves the others their fsync

    def _begin(self, folder: Path) -> asyncio.Future[None]:
        self.fsyncs += 1
        running = self._running[folder] = asyncio.ensure_future(
            asyncio.to_thread(self._fsync, folder)
        )
        running.add_done_callback(lambda _: self._ended(folder))
        return running

    def _ended(self, folder: Path) -> None:
        del self._running[folder]
        waiting = self._next.pop(folder, None)
        if waiting is not None:
            self._begin(folder).add_done_callback(lambda _: _resolve(waiting))


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
