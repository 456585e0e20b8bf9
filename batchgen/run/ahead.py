"""Uploads ahead of submits: the files of the jobs next in line go up while those jobs wait for
a concurrency slot, so an upload holds no slot a running job could use.

``Ahead`` walks the waiting jobs in the order the engine gives them slots, at most ``LEAD``
jobs beyond the last one given a slot, and uploads their files (``Uploads.prepare``, within
the uploads' own concurrency). A job given its slot before its files are up waits for the same
upload, never a second one; an upload that failed is not tried again this run, its jobs fail
with its error. ``Ahead`` stops when no more slots will be given (``over``: every job has one,
or the run drains) or when the storage refused the key or was never reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from batchgen.ledger.states import JobRow
from batchgen.run.uploads import UPLOAD_CONCURRENCY, Uploads

LEAD = 2 * UPLOAD_CONCURRENCY


class Ahead:
    """Uploads the files of ``keys`` ahead of their submits (see the module docstring)."""

    __slots__ = ("_get", "_given", "_halted", "_keys", "_lead", "_moved", "_over", "_uploads")

    def __init__(
        self,
        uploads: Uploads | None,
        keys: list[str],
        get: Callable[[str], JobRow],
        lead: int = LEAD,
    ) -> None:
        self._uploads, self._keys, self._get, self._lead = uploads, keys, get, lead
        self._given = 0
        self._over = self._halted = uploads is None
        self._moved = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Ahead given={self._given}/{len(self._keys)} lead={self._lead}>"

    def given(self) -> None:
        """One more job got its slot (its files, if not up yet, are its own to wait for)."""
        self._given += 1
        self._moved.set()

    def over(self) -> None:
        """No more jobs get a slot in this run."""
        self._over = True
        self._moved.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for index, key in enumerate(self._keys):
                while index >= self._given + self._lead and not (self._over or self._halted):
                    self._moved.clear()
                    await self._moved.wait()
                if self._over or self._halted:
                    return
                if index >= self._given:
                    row = self._get(key)
                    if row.files and row.in_input:
                        group.create_task(self._prepare(row))

    async def _prepare(self, row: JobRow) -> None:
        assert self._uploads is not None
        if not await self._uploads.prepare(row):
            self._halted = True
            self._moved.set()
