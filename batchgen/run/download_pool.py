"""A fixed pool of workers that download the videos of DOWNLOADING jobs, and the disk rule.

Downloads have their own concurrency, so they never hold up submits or polls, and their waits
hold no concurrency slot (a job's slot is given back once its video URL is recorded). A verified
file moves its job to DONE. A link the file host refuses is replaced by a fresh one read from
the job's result (``batchgen.run.links``). A download out of patience (``--download-patience``:
the file host did not answer) leaves its job DOWNLOADING, saying so in its ``error``
(``error_type`` ``download``): the next run fetches it, plain, without a submit; it is neither
failed nor paid again. A video gone for good (the provider no longer has the job's result, or
fresh links are refused too) fails the job ``video_gone``, saying that ``--retry-failed``
generates it again, paid again, at the plan's price; a video refused (too big, not a video)
fails it ``video_refused``. Either keeps its video URL.

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
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from batchgen.api.objectstore import ObjectStore
from batchgen.errors import DiskError, JobChanged, PermanentError, RetryableError
from batchgen.ledger.states import JobStatus
from batchgen.ledger.writer import LedgerWriter
from batchgen.plan.durations import spoken
from batchgen.run.download import DISK, DOWNLOAD, VIDEO_GONE, VIDEO_REFUSED, Downloader
from batchgen.run.follow import COMPLETED_AFTER_CANCEL
from batchgen.run.links import FreshLinks
from batchgen.run.progress import Reporter
from batchgen.run.store_sink import StoreSink

S = JobStatus
log = logging.getLogger("batchgen.run")
# Downloads failing in a row with the same OSError before the run stops: one bad file name is
# the job's problem; three in a row with the same errno is the disk's (or the folder's).
DISK_ERRORS_IN_A_ROW = 3


class Video(NamedTuple):
    """A video to download, as its DOWNLOADING job says."""

    key: str
    url: str
    size: int | None  # the size the result announced
    path: str  # relative to the folder (or the store)
    price: float | None  # the plan's price of the job: what generating it again costs
    error_type: str | None  # the job's, kept when it says something (completed after a cancel)


class DownloadPool:
    """Downloads queued videos with ``workers`` tasks; ``close()`` waits for the queue."""

    __slots__ = (
        "_disk_errors",
        "_downloader",
        "_links",
        "_on_disk_stop",
        "_out",
        "_patience",
        "_queue",
        "_reporter",
        "_store",
        "_video_dir",
        "_workers",
        "_writes",
        "disk_stop",
        "left",
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
        links: FreshLinks | None = None,
        patience: float = 900.0,
    ) -> None:
        self._writes, self._downloader, self._reporter = writes, downloader, reporter
        self._links = links  # re-reads a result for a link the file host refuses
        self._patience = patience  # --download-patience, as the user gave it (for messages)
        self._store = store  # videos go there (same paths) instead of into ``out_dir``
        self._video_dir = video_dir  # recorded with each video: a shared batch's worker's place
        self._out, self._workers, self._on_disk_stop = out_dir, workers, on_disk_stop
        self._queue: asyncio.Queue[Video | None] = asyncio.Queue()
        self._disk_errors: list[DiskError] = []  # the latest downloads, all failing alike
        self.disk_stop: str | None = None
        self.left = 0  # jobs left downloading for the next run: out of patience

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

    def put(self, video: Video) -> None:
        """Queue the video of a DOWNLOADING job."""
        self._queue.put_nowait(video)

    async def close(self) -> None:
        """Wait until every queued video is handled, then stop the workers."""
        await self._queue.join()
        for _ in range(self._workers):
            self._queue.put_nowait(None)

    async def _work(self) -> None:
        while (item := await self._queue.get()) is not None:
            try:
                if self.disk_stop is None:  # else left downloading, for the next run
                    await self._download(item)
            except JobChanged as exc:
                log.info("%s: changed by another process; left as it is", exc)
            finally:
                self._queue.task_done()

    async def _download(self, video: Video) -> None:
        key, path = video.key, video.path

        async def failed(error: str, error_type: str) -> None:
            await self._writes.transition(
                key, S.FAILED, expect=S.DOWNLOADING, error=error, error_type=error_type
            )
            self._reporter.moved(S.DOWNLOADING, S.FAILED)
            self._reporter.note(f"failed: {path}: {error}")
            log.info("job %s: failed: %s", key, error)

        store, links = self._store, self._links
        dest = self._out / path if store is None else StoreSink(store, path)
        try:
            fetched = await self._downloader.fetch(
                video.url,
                dest,
                expected_size=video.size,
                name=path,
                fresh=None if links is None else functools.partial(links.fresh, key),
            )
        except RetryableError as exc:
            await self._leave(video, exc)
        except PermanentError as exc:
            error = f"download: {exc}"
            if exc.error_type == VIDEO_GONE:
                error += f"; --retry-failed generates it again, {paid_again(video.price)}"
            await failed(error, exc.error_type or VIDEO_REFUSED)
        except DiskError as exc:
            await failed(str(exc), DISK)
            self._disk_failed(exc)
        else:
            self._disk_errors.clear()
            # A job left by an earlier run out of patience says so no more.
            cleared = {"error": None, "error_type": None} if video.error_type == DOWNLOAD else {}
            await self._writes.transition(
                key,
                S.DONE,
                expect=S.DOWNLOADING,
                bytes=fetched.bytes,
                sha256=fetched.sha256,
                video_path=path,
                video_dir=self._video_dir,
                **cleared,
            )
            self._reporter.moved(S.DOWNLOADING, S.DONE)

    async def _leave(self, video: Video, exc: RetryableError) -> None:
        """Out of patience: the job stays DOWNLOADING, for the next run, saying why."""
        why = (
            f"the file host did not answer for {spoken(self._patience)}; run again to fetch "
            f"it; nothing is paid again (last: {exc})"
        )
        if video.error_type != COMPLETED_AFTER_CANCEL:  # else its error keeps saying that
            await self._writes.transition(
                video.key,
                S.DOWNLOADING,
                expect=S.DOWNLOADING,
                error=f"download: {why}",
                error_type=DOWNLOAD,
            )
        self.left += 1
        self._reporter.note(f"left for the next run: {video.path}: {why}")
        log.info("job %s: left downloading: %s", video.key, why)

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


def paid_again(price: float | None) -> str:
    """What generating a video again costs, as advice says it."""
    return "paid again" + (" (price unknown)" if price is None else f" (${price:,.2f})")
