"""Fresh links to paid videos: the job's result read again when the file host refuses a link.

Signed links expire (S3 presigned URLs, CDN tokens): the link a result gave an hour ago, or
before the run was stopped, may be refused (403) while the result route, asked again, answers a
fresh one. ``FreshLinks.fresh(key)`` reads the result of job ``key`` again, with the key that
submitted it, and records the new link (and size) on the job, so the manifest shows the link
its video was fetched from; the request id (the ledger keeps every one a job was given) is what
names the video for good. The download pool calls it when a download's link is refused (see
``batchgen.run.download``), in the run that read the result and in any later one.

It raises PermanentError (``video_gone``) only when the provider no longer has the job's result
(its result route says the request is unknown: expired, or the job is not there) or the result
holds no video; and RetryableError when the result cannot be read just now (unreachable, a key
refused, answers unreadable): the download counts that as one more failure and keeps trying
within its patience. Reading a result takes a request of the run's rate, never a concurrency
slot: the job has ended at the provider.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from batchgen.api.classify import UNKNOWN_REQUEST
from batchgen.errors import ApiError, PermanentError, RetryableError
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.states import JobStatus
from batchgen.ledger.writer import LedgerWriter
from batchgen.run.download import VIDEO_GONE, Link, video_of
from batchgen.run.keys import KeyPool

S = JobStatus
log = logging.getLogger("batchgen.run")


class FreshLinks:
    """Reads jobs' results again for fresh video links (see the module docstring)."""

    __slots__ = ("_keys", "_ledger", "_outputs", "_writes", "reads")

    def __init__(
        self,
        *,
        ledger: LedgerStore,
        keys: KeyPool,
        writes: LedgerWriter,
        outputs: Mapping[str, str] | None = None,
    ) -> None:
        self._ledger, self._keys, self._writes = ledger, keys, writes
        self._outputs = outputs or {}  # endpoint id -> the result key holding its video
        self.reads = 0  # results read again

    def __repr__(self) -> str:
        return f"<FreshLinks reads={self.reads}>"

    async def fresh(self, key: str) -> Link:
        """The video link and size that the result of ``key`` (a downloading job) holds now,
        recorded on the job (see the module docstring for what it raises)."""
        row = self._ledger.get(key)
        if row.request_id is None:  # an old ledger's row: nothing to read the result by
            raise PermanentError(
                "no request id is recorded to read its result again", error_type=VIDEO_GONE
            )
        self.reads += 1
        try:
            look = await self._keys.client(row.key_id).result(row.request_id, row.endpoint)
        except PermanentError as exc:
            if exc.error_type != UNKNOWN_REQUEST:
                raise _unread(exc) from None
            raise PermanentError(
                f"the provider no longer has the job's result to read a new link from ({exc})",
                status=exc.status,
                error_type=VIDEO_GONE,
            ) from None
        except ApiError as exc:  # transient, a key refused, unreachable: cannot tell now
            raise _unread(exc) from None
        url, size = video_of(look.output or {}, self._outputs.get(row.endpoint, "video"))
        if url is None:
            raise PermanentError(
                f"the job's result holds no video URL any more: {str(look.output)[:300]}",
                error_type=VIDEO_GONE,
            )
        if (url, size) != (row.video_url, row.bytes):
            await self._writes.transition(
                key, S.DOWNLOADING, expect=S.DOWNLOADING, video_url=url, bytes=size
            )
        log.info("job %s: a fresh video link read from its result", key)
        return url, size


def _unread(exc: ApiError) -> RetryableError:
    return RetryableError(f"the result could not be read again for a new link: {exc}")
