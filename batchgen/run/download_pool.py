"""A fixed pool of workers that download the videos of DOWNLOADING jobs, and the disk rule.

Downloads have their own concurrency, so they never hold up submits or polls. A verified file
moves its job to DONE; a download that fails fails the job with the ``error_type`` the
downloader gave (``download``, ``video_gone``, ``video_refused``: see ``batchgen.run.download``
for what a later run does with each), keeping its video URL: a paid video is fetched again,
never generated again, unless the file host says it is gone.

Disk errors: a video that cannot be written fails its job ("cannot write videos/NAME.mp4: No
space left on device", ``error_type`` ``DISK``: ``run --retry-failed`` downloads it again without
submitting). When ``DISK_ERRORS_IN_A_ROW`` downloads in a row fail with the same error (no
download succeeding in between), the disk is the problem, not the job: the pool sets
``disk_stop``, calls ``on_disk_stop`` (the engine stops submitting and follows the jobs in
flight until their video URL is recorded: results expire within an hour, videos stay on the CDN
for days) and downloads nothing more. Jobs left DOWNLOADING are fetched by the next run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from batchgen.api.objectstore import ObjectStore
from batchgen.errors import DiskError, JobChanged, PermanentError, RetryableError
from batchgen.ledger.states import JobStatus
from batchgen.ledger.writer import LedgerWriter
from batchgen.run.download import DISK, DOWNLOAD, VIDEO_REFUSED, Downloader
from batchgen.run.progress import Reporter
from batchgen.run.store_sink import StoreSink

S = JobStatus
log = logging.getLogger("batchgen.run")
# Downloads failing in a row with the same OSError before the run stops: one bad file name is
# the job's problem; three in a row with the same errno is the disk's (or the folder's).
DISK_ERRORS_IN_A_ROW = 3

_Item = tuple[str, str, int | None, str]  # key, url, expected size, path relative to the folder


class DownloadPool:
    """Downloads queued videos with ``workers`` tasks; ``close()`` waits for the queue."""

    __slots__ = (
        "_disk_errors",
        "_downloader",
        "_on_disk_stop",
        "_out",
        "_queue",
        "_reporter",
        "_store",
        "_video_dir",
        "_workers",
        "_writes",
        "disk_stop",
    )

    def __init__(
        self,
        *,
        writes: LedgerWriter,
        downloader: Downloader,
        reporter: Reporter,
        out_dir: Path,
        workers: int,
        on_disk_stop: Callable[[], None],
        store: ObjectStore | None = None,
        video_dir: str | None = None,
    ) -> None:
        self._writes, self._downloader, self._reporter = writes, downloader, reporter
        self._store = store  # videos go there (same paths) instead of into ``out_dir``
        self._video_dir = video_dir  # recorded with each video: a shared batch's worker's place
        self._out, self._workers, self._on_disk_stop = out_dir, workers, on_disk_stop
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._disk_errors: list[DiskError] = []  # the latest downloads, all failing alike
        self.disk_stop: str | None = None

    def __repr__(self) -> str:
        stop = " disk-stopped" if self.disk_stop else ""
        return f"<DownloadPool workers={self._workers} queued={self.queued}{stop}>"

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def start(self, tg: asyncio.TaskGroup) -> None:
        """Start the workers in ``tg``."""
        for _ in range(self._workers):
            tg.create_task(self._work())

    def put(self, key: str, url: str, size: int | None, path: str) -> None:
        """Queue the video of ``key`` (a DOWNLOADING job) for ``DIR/path``."""
        self._queue.put_nowait((key, url, size, path))

    async def close(self) -> None:
        """Wait until every queued video is handled, then stop the workers."""
        await self._queue.join()
        for _ in range(self._workers):
            self._queue.put_nowait(None)

    async def _work(self) -> None:
        while (item := await self._queue.get()) is not None:
            try:
                if self.disk_stop is None:  # else left downloading, for the next run
                    await self._download(*item)
            except JobChanged as exc:
                log.info("%s: changed by another process; left as it is", exc)
            finally:
                self._queue.task_done()

    async def _download(self, key: str, url: str, size: int | None, path: str) -> None:
        async def failed(error: str, error_type: str) -> None:
            await self._writes.transition(
                key, S.FAILED, expect=S.DOWNLOADING, error=error, error_type=error_type
            )
            self._reporter.moved(S.DOWNLOADING, S.FAILED)
            self._reporter.note(f"failed: {path}: {error}")
            log.info("job %s: failed: %s", key, error)

        store = self._store
        dest = self._out / path if store is None else StoreSink(store, path)
        try:
            fetched = await self._downloader.fetch(url, dest, expected_size=size, name=path)
        except (RetryableError, PermanentError) as exc:
            fallback = DOWNLOAD if isinstance(exc, RetryableError) else VIDEO_REFUSED
            await failed(f"download: {exc}", exc.error_type or fallback)
        except DiskError as exc:
            await failed(str(exc), DISK)
            self._disk_failed(exc)
        else:
            self._disk_errors.clear()
            await self._writes.transition(
                key,
                S.DONE,
                expect=S.DOWNLOADING,
                bytes=fetched.bytes,
                sha256=fetched.sha256,
                video_path=path,
                video_dir=self._video_dir,
            )
            self._reporter.moved(S.DOWNLOADING, S.DONE)

    def _disk_failed(self, exc: DiskError) -> None:
        """Count ``exc`` towards the stop rule (see the module docstring)."""
        if self._disk_errors and self._disk_errors[-1].errno != exc.errno:
            self._disk_errors.clear()
        self._disk_errors.append(exc)
        if len(self._disk_errors) >= DISK_ERRORS_IN_A_ROW and self.disk_stop is None:
            fix = (
                "Raise `ulimit -n` (or lower --concurrency)"
                if exc.open_files  # not the disk's fault
                else "Fix the disk or the folder (or the store)"
            )
            self.disk_stop = (
                f"stopped: {len(self._disk_errors)} videos in a row could not be written "
                f"(last: {exc}); nothing more was submitted or downloaded. {fix}, then run "
                "again with --retry-failed"
            )
            log.error("%s", self.disk_stop)
            self._on_disk_stop()
