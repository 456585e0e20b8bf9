"""A download streamed straight to object storage (``--store``): no local copy of the video.

``StoreSink`` is the ``Sink`` the downloader writes to when the run has a store: each chunk is
hashed by the downloader, walked for MP4 boxes here (``Mp4Stream``) and sent on to a temporary
key (``batchgen.api.objectstore.VideoUpload``), one block of memory per download. Only a video
of the right size, sha256 and MP4 structure is committed under its own key, with its sha256; the
MP4 check runs on the bytes as they pass rather than by reading the object back, which would
fetch it again (a ranged GET per box header) and leave a window where a broken object sits
under the video's name.

A broken try starts over from the first byte (an object cannot be appended to); what it sent
is dropped. Store calls block (one may send a whole block), so they run in a thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from batchgen.api.objectstore import ObjectStore, VideoUpload
from batchgen.errors import UsageError
from batchgen.ledger.rebuild import MANIFEST
from batchgen.run.mp4check import Mp4Stream


class StoreSink:
    """The object ``name`` of ``store``, written by one download (see the module docstring)."""

    __slots__ = ("_check", "_name", "_store", "_upload", "where")

    def __init__(self, store: ObjectStore, name: str) -> None:
        self._store, self._name = store, name
        self.where = store.url_of(name)
        self._upload: VideoUpload | None = None
        self._check = Mp4Stream()

    def __repr__(self) -> str:
        return f"<StoreSink {self.where}{' uploading' if self._upload else ''}>"

    def prepare(self) -> None:
        pass  # the upload starts with the first byte

    def kept(self) -> int:
        return 0

    async def hash_kept(self, digest: Any) -> None:
        pass  # nothing is kept: never asked, as kept() is 0

    async def open(self, offset: int) -> None:
        self._check = Mp4Stream()
        self._upload = await asyncio.to_thread(self._store.upload, self._name)

    async def write(self, chunk: bytes) -> None:
        assert self._upload is not None
        self._check.feed(chunk)
        await asyncio.to_thread(self._upload.write, chunk)

    async def seal(self, sha256: str, size: int) -> str | None:
        upload = self._upload
        assert upload is not None
        problem = self._check.problem()
        if problem is not None:
            await self.drop()
            return problem
        self._upload = None
        try:
            await asyncio.to_thread(upload.commit, sha256, size)
        except BaseException:
            _abandon(upload)
            raise
        return None

    async def drop(self) -> None:
        upload, self._upload = self._upload, None
        if upload is not None:
            await asyncio.to_thread(upload.abandon)

    async def broken(self) -> None:
        await self.drop()  # nothing resumes an upload: the next try starts over

    def stop(self) -> None:
        upload, self._upload = self._upload, None
        if upload is not None:
            _abandon(upload)


def _abandon(upload: VideoUpload) -> None:
    """Drop ``upload`` in a thread without waiting for it: this runs when a try is cut short,
    a cancel included, where awaiting is no longer possible."""
    asyncio.get_running_loop().run_in_executor(None, upload.abandon)


def recover_manifest(store: ObjectStore, out: Path, ledger_name: str) -> None:
    """A folder without ledger or manifest whose store holds a run's: its ``manifest.jsonl``,
    fetched into the folder so the ledger is rebuilt from it (see ``ledger.rebuild``) rather
    than every video generated (and paid for) again. Videos in the store with no manifest
    there: UsageError, as for a folder."""
    ledger = out / ledger_name
    if (ledger.is_file() and ledger.stat().st_size > 0) or (out / MANIFEST).exists():
        return
    if store.stored(MANIFEST) is not None:
        store.get(MANIFEST, out / MANIFEST)
        return
    videos = [name for name in store.names("videos") if name.endswith(".mp4")]
    if videos:
        raise UsageError(
            f"{store.url} holds {len(videos)} video(s) but {out} has no ledger ({ledger_name}) "
            f"and neither has a {MANIFEST} to rebuild it from: running would generate them "
            "again. Give another --store URL"
        )
