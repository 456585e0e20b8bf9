"""Local input files made URLs just before their job is submitted: uploaded once per folder.

A planned payload holds ``sha256:<hex>`` where a parameter names a local file (see
``batchgen.plan.inputfiles``). ``Uploads.payload`` gives the payload to send, each such
reference replaced, and what to record as sent:

- with fal storage, by the URL the folder's ledger holds for that content on that storage
  (``Ledger.upload``), unless it is older than ``Timing.upload_retention`` or was marked
  stale; otherwise the file is uploaded (``UPLOAD_CONCURRENCY`` at once; jobs needing the same
  content wait for one upload) and its URL committed to the ledger before any submit uses it;
- without storage, by a data: URI (``DATA_URI_MAX_BYTES`` at most), recorded as
  ``data:<mime>;base64 (N bytes)``.

A file is checked against the sha256 it was planned with before it is sent: one changed or
gone since fails its job. An upload that fails after its retries fails only its job, which
was not submitted and cost nothing (``failure``: error_type ``upload``; ``--retry-failed``
tries again); a storage that refuses the key raises FatalError, one never reached
Unreachable, and the run stops.

``refused`` reads a job's failure: a 422 naming a file parameter, or the URL sent for it,
marks that upload stale and the job ``file_refused``, which ``--retry-failed`` retries with a
new upload. ``check_files`` refuses, before anything is sent, a plan whose local files a data:
URI cannot carry when there is no storage.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp

from batchgen.api.datauri import DATA_URI_MAX_BYTES, MIB, data_uri, describe_data_uri
from batchgen.api.providers import Storage
from batchgen.api.reach import Reach
from batchgen.api.storage import StorageClient
from batchgen.errors import (
    UPLOAD_ERROR,
    ApiError,
    FatalError,
    InputError,
    PermanentError,
    Problem,
    RetryableError,
    Unreachable,
)
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.places import put_at
from batchgen.plan.build import file_sha256
from batchgen.plan.inputfiles import InputFile
from batchgen.run.timing import Timing

log = logging.getLogger("batchgen.run")
UPLOAD_CONCURRENCY = 4
# A job the provider refused for a file it could not use (its upload is marked stale).
FILE_REFUSED = "file_refused"


class Uploads:
    """Turns a job's local files into what its submit sends (see the module docstring)."""

    __slots__ = (
        "_client",
        "_failed",
        "_ledger",
        "_pending",
        "_slots",
        "_storage",
        "_timing",
        "uploaded",
    )

    def __init__(
        self,
        ledger: LedgerStore,
        storage: Storage,
        client: StorageClient | None,
        *,
        timing: Timing,
        concurrency: int = UPLOAD_CONCURRENCY,
    ) -> None:
        if storage.mode == "fal" and client is None:
            raise ValueError("fal storage needs a StorageClient")
        self._ledger, self._storage, self._client, self._timing = ledger, storage, client, timing
        self._pending: dict[str, asyncio.Future[str]] = {}
        self._failed: dict[str, ApiError] = {}  # content -> why its upload failed this run
        self._slots = asyncio.Semaphore(concurrency)
        self.uploaded = 0  # files this run uploaded

    @classmethod
    def open(
        cls,
        ledger: LedgerStore,
        storage: Storage,
        session: aiohttp.ClientSession,
        timing: Timing,
        *,
        route: Callable[[str], str] | None = None,
    ) -> Uploads:
        """Uploads to ``storage`` through ``session``, with the run's timing; ``route`` says
        how a host is reached, for messages (``batchgen.api.network.Network.route``)."""
        client = None
        if storage.mode == "fal":
            assert storage.base_url is not None
            assert storage.api_key is not None
            client = StorageClient(
                session,
                base_url=storage.base_url,
                api_key=storage.api_key,
                backoff=timing.backoff.scaled(timing.scale),
                sleep=timing.sleep,
                timeout=timing.request_timeout,
                clock=timing.wall,
                reach=Reach(give_up_after=timing.unreachable_after, route=route),
            )
        return cls(ledger, storage, client, timing=timing)

    def __repr__(self) -> str:
        return f"<Uploads {self._storage.mode} uploaded={self.uploaded} now={len(self._pending)}>"

    def drain(self) -> None:
        """Try no failed upload again (the run submits nothing more)."""
        if self._client is not None:
            self._client.stopped = True

    async def payload(self, row: JobRow) -> tuple[dict[str, Any], dict[str, str]]:
        """``row``'s payload with its files in place, and what to record as sent for each.

        Raises PermanentError or RetryableError when a file could not be made a URL (the job
        fails, see ``failure``), FatalError when the storage refuses the key.
        """
        payload, sent = dict(row.payload), {}
        for param, info in row.files.items():
            file = InputFile(param, **info)
            # ``param`` is the file's place: a parameter, or an item (``image_urls.2``).
            if self._storage.mode == "fal":
                sent[param] = await self._url(file)
                payload = put_at(payload, param, sent[param])
            else:
                payload = put_at(payload, param, await self._inline(file))
                sent[param] = describe_data_uri(file.mime, file.size)
        return payload, sent

    async def prepare(self, row: JobRow) -> bool:
        """Upload ``row``'s files ahead of its submit (fal storage only); a failure is kept for
        its job to report. False when the storage refused the key or was never reached: no
        other upload will do better."""
        if self._storage.mode != "fal":
            return True
        for param, info in row.files.items():
            try:
                await self._url(InputFile(param, **info))
            except (FatalError, Unreachable):
                return False
            except ApiError:
                pass
        return True

    async def _url(self, file: InputFile) -> str:
        origin = self._storage.base_url
        assert origin is not None
        failed = self._failed.get(file.sha256)
        if failed is not None:  # tried this run, with every retry: the same again
            raise failed
        held = self._ledger.upload(file.sha256, origin)
        timing = self._timing
        if held is not None and timing.wall() - held.uploaded_at < timing.upload_retention:
            return held.url
        pending = self._pending.get(file.sha256)
        if pending is not None:  # another job uploads this content: wait for its URL
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                raise RetryableError(f"the upload of {file.path} was stopped") from None
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[file.sha256] = future
        try:
            url = await self._upload(file, origin)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                if isinstance(exc, ApiError):
                    self._failed[file.sha256] = exc
                future.set_exception(exc)
                future.exception()  # its waiters get it; nobody else needs to
            raise
        finally:
            del self._pending[file.sha256]
        future.set_result(url)
        return url

    async def _upload(self, file: InputFile, origin: str) -> str:
        assert self._client is not None
        async with self._slots:
            await _unchanged(file)
            url = await self._client.upload(file.path, size=file.size, mime=file.mime)
        self._ledger.record_upload(file.sha256, origin, url, file.size)
        self.uploaded += 1
        log.info("uploaded %s (%d bytes, sha256 %s)", file.path, file.size, file.sha256[:12])
        return url

    async def _inline(self, file: InputFile) -> str:
        if file.size > DATA_URI_MAX_BYTES:
            raise PermanentError(f"{file.path} {_too_big(file)}")
        data = await asyncio.to_thread(_read, file, DATA_URI_MAX_BYTES + 1)
        if hashlib.sha256(data).hexdigest() != file.sha256:
            raise PermanentError(_changed(file))
        return data_uri(data, file.mime)

    def refused(self, row: JobRow, error: ApiError) -> bool:
        """True when ``error`` is a 422 naming a file ``row`` sent as an uploaded URL (by its
        parameter or its URL); that upload is then marked stale, to be uploaded again."""
        if error.status != 422:
            return False
        text = str(error)
        stale = [
            url
            for param, url in row.sent.items()
            if not url.startswith("data:")
            and (url in text or re.search(rf"(?<!\w){re.escape(param)}(?!\w)", text))
        ]
        for url in stale:
            self._ledger.stale_upload(url)
            log.info("job %s: the provider refused %s; it will be uploaded again", row.key, url)
        return bool(stale)


def failure(row: JobRow, error: ApiError) -> tuple[str, str, dict[str, Any]]:
    """The message, error_type and fields of a job whose files could not be sent. A job
    whose last submit's answer was lost stays flagged as such: a job may exist for it."""
    message = f"input file not sent: {error}"
    if row.status is JobStatus.SUBMIT_UNCERTAIN:
        lost = "; its last submit's answer was lost: a job may exist at the provider"
        return message + lost, "submit_uncertain", {"possibly_duplicate": True}
    return message, UPLOAD_ERROR, {}


def check_files(jobs: Iterable[Any], storage: Storage) -> None:
    """Refuse (InputError) local files too large for a data: URI when there is no storage."""
    if storage.mode != "data":
        return
    big: dict[str, InputFile] = {}
    for job in jobs:
        for file in getattr(job, "files", ()):
            if file.size > DATA_URI_MAX_BYTES:
                big.setdefault(file.path, file)
    if big:
        raise InputError(
            [
                Problem(
                    path,
                    None,
                    None,
                    f"{_too_big(file)}; pass --upload fal (with FAL_KEY set) to upload "
                    "it to fal storage",
                )
                for path, file in big.items()
            ]
        )


async def _unchanged(file: InputFile) -> None:
    """Raise PermanentError when ``file`` is gone or holds other bytes than planned."""
    try:
        digest = await asyncio.to_thread(file_sha256, Path(file.path))
    except OSError as exc:
        raise PermanentError(f"cannot read {file.path}: {exc.strerror or exc}") from None
    if digest != file.sha256:
        raise PermanentError(_changed(file))


def _read(file: InputFile, limit: int) -> bytes:
    try:
        with open(file.path, "rb") as handle:
            return handle.read(limit)
    except OSError as exc:
        raise PermanentError(f"cannot read {file.path}: {exc.strerror or exc}") from None


def _changed(file: InputFile) -> str:
    return (
        f"{file.path} changed since the batch was planned (it no longer has sha256 "
        f"{file.sha256[:12]}...); run the batch again to plan it with the file as it is"
    )


def _too_big(file: InputFile) -> str:
    return (
        f"is {file.size / MIB:.1f} MiB, above the {DATA_URI_MAX_BYTES // MIB} MiB a data: URI "
        "may carry, and this provider has no storage"
    )
