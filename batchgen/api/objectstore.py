"""Videos and run files in object storage (``--store URL``): any fsspec URL.

Under the store's URL the layout is an output folder's: ``videos/NAME.mp4``, ``manifest.csv``,
``manifest.jsonl``, ``run.json``, ``report.html``, ``compare.html``. The local output folder
keeps the ledger, the lock and the log.

A video (``VideoUpload``) streams to a temporary key beside its own,
``videos/.NAME.mp4.<hex>.part``, in blocks of ``BLOCK`` bytes: on S3 a multipart upload (or one
PUT for a video under a block), so memory holds a few blocks per download, whatever the
video's size. The caller verifies the
bytes as they pass; ``commit`` then puts them under their key in one step and drops the
temporary key. On S3 that step is a server-side copy (CopyObject) that sets the object's
metadata ``sha256`` (``x-amz-meta-sha256``) and ``Content-Type: video/mp4``: the key appears
whole and carrying its hash, or not at all. On other stores (``file://``, ``gcs://``...) it is
a move (a rename on a local disk) followed by a sidecar object ``NAME.mp4.sha256`` holding the
hex digest; a video without its sidecar counts as not stored.

Run files (manifest, ``run.json``, report) are written whole: one PUT on a remote store (S3's and
GCS's whole-object semantics: a reader sees the old object or the new one), a temporary file
and a rename on a local one.

Credentials come only from the storage library's own environment and configuration
(``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``, ``GOOGLE_APPLICATION_CREDENTIALS``
...): a URL that carries any is refused, so the URL that ``run.json`` records holds none.

Every failure of the store comes out as ``DiskError`` naming the object's URL (with the errno of
the OSError behind it, if any), the error a failing disk gives, so a run treats both alike;
``probe`` turns the first one into a ``UsageError`` that says what to check.
"""

from __future__ import annotations

import contextlib
import errno
import mimetypes
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from batchgen.errors import DiskError, UsageError
from batchgen.plan.settings import store_url_problem

BLOCK = 8 * 2**20  # bytes held per upload: S3's parts are 5 MiB at least
CHECKS_AT_ONCE = 16  # objects looked at in parallel when a run resumes
PROBE_NAME = ".batchgen-probe"
# A temporary key this old has no upload behind it. S3 dates a multipart object from the
# upload's start, so a slow upload's key looks old the moment it appears: allow an hour.
STALE_AFTER = 3600.0
SHA256 = "sha256"  # the metadata key (S3) and the sidecar's suffix (elsewhere)
_S3 = frozenset({"s3", "s3a"})
_LOCAL = frozenset({"file", "local"})


def _protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _failure(url: str, exc: BaseException) -> DiskError:
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None and isinstance(exc, FileNotFoundError):  # s3fs gives no errno
        code = errno.ENOENT
    elif code is None and isinstance(exc, PermissionError):
        code = errno.EACCES
    return DiskError(url, _reason(exc), code)


@contextlib.contextmanager
def _as_disk_error(url: str) -> Iterator[None]:
    try:
        yield
    except DiskError:
        raise
    except Exception as exc:  # a storage library raises types of its own (botocore's...)
        raise _failure(url, exc) from None


class ObjectStore:
    """One store URL: its file system and root. Blocking calls: run them in a thread."""

    __slots__ = ("_fs", "_kinds", "_root", "url")

    def __init__(self, fs: Any, root: str, url: str) -> None:
        self._fs, self._root, self.url = fs, root.rstrip("/"), url.rstrip("/")
        self._kinds = _protocols(fs)

    def __repr__(self) -> str:
        return f"<ObjectStore {self.url}>"

    @classmethod
    def open(cls, url: str) -> ObjectStore:
        """The store at ``url``; UsageError for a URL that is no store or carries credentials."""
        problem = store_url_problem(url)
        if problem is not None:
            raise UsageError(f"--store: {problem}")
        try:
            from fsspec.core import url_to_fs

            # A fresh instance: a cached one would keep an endpoint or credentials read before.
            fs, root = url_to_fs(url, skip_instance_cache=True)
        except ImportError as exc:
            scheme = urlsplit(url).scheme
            extra = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}.get(scheme)
            hint = f": pip install 'batchgen[{extra}]'" if extra else ""
            raise UsageError(f"--store {url}: {exc}{hint}") from None
        except Exception as exc:  # an unknown protocol, a malformed URL
            raise UsageError(f"--store {url}: {_reason(exc)}") from None
        return cls(fs, root, url)

    @property
    def on_s3(self) -> bool:
        return bool(self._kinds & _S3)

    @property
    def local(self) -> bool:
        return bool(self._kinds & _LOCAL)

    def key(self, name: str) -> str:
        """The file system path of ``name`` (relative to the store's URL)."""
        return f"{self._root}/{name}"

    def url_of(self, name: str) -> str:
        return f"{self.url}/{name}"

    # -- checks ------------------------------------------------------------------------------

    def probe(self) -> None:
        """Write and delete a small object, or say (UsageError) why the store refuses."""
        name = f"{PROBE_NAME}.{secrets.token_hex(4)}"
        try:
            with _as_disk_error(self.url):
                if self.local:
                    self._fs.makedirs(self._root, exist_ok=True)
                self._fs.pipe_file(self.key(name), b"batchgen can write here\n")
                self._fs.rm_file(self.key(name))
        except DiskError as exc:
            raise UsageError(self._refusal(exc)) from None

    def _refusal(self, exc: DiskError) -> str:
        where = f"--store {self.url}"
        if exc.errno == errno.ENOENT:  # no bucket, no folder
            return f"{where}: no such bucket or folder ({exc.reason}); create it first"
        if exc.errno == errno.EACCES:
            return (
                f"{where}: access denied ({exc.reason}); check the credentials in the "
                "environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE) and "
                "the bucket's policy"
            )
        return (
            f"{where}: cannot write there ({exc.reason}); check the URL, the network and "
            "the endpoint (AWS_ENDPOINT_URL for an S3-compatible store)"
        )

    def stored(self, name: str) -> tuple[int, str | None] | None:
        """The size and recorded sha256 of the object ``name``, or None when it is missing."""
        key = self.key(name)
        with _as_disk_error(self.url_of(name)):
            if self.on_s3:
                bucket, _, path = key.partition("/")
                try:
                    head = self._fs.call_s3("head_object", Bucket=bucket, Key=path)
                except FileNotFoundError:
                    return None
                return int(head["ContentLength"]), head.get("Metadata", {}).get(SHA256)
            try:
                size = int(self._fs.info(key)["size"])
                digest = self._fs.cat_file(f"{key}.{SHA256}").decode("ascii", "replace")
            except FileNotFoundError:
                return None
            return size, digest.strip() or None

    def verified(self, wanted: dict[str, tuple[int | None, str | None]]) -> set[str]:
        """Of ``wanted`` (name -> size and sha256 the ledger recorded), the names stored with
        that size and hash. Looks at ``CHECKS_AT_ONCE`` objects at a time."""
        self._fs.invalidate_cache()

        def good(name: str) -> bool:
            found = self.stored(name)
            size, digest = wanted[name]
            return found is not None and found[0] == size and found[1] == digest

        with ThreadPoolExecutor(CHECKS_AT_ONCE) as pool:
            return {name for name, ok in zip(wanted, pool.map(good, wanted), strict=True) if ok}

    def names(self, folder: str) -> list[str]:
        """The names of the objects in ``folder`` (none when it does not exist)."""
        with contextlib.suppress(Exception):  # no folder yet: nothing taken
            return [p.rsplit("/", 1)[-1] for p in self._fs.ls(self.key(folder), detail=False)]
        return []

    # -- writing ------------------------------------------------------------------------------

    def upload(self, name: str) -> VideoUpload:
        """Start streaming the object ``name`` (see ``VideoUpload``)."""
        return VideoUpload(self, name)

    def write(self, name: str, data: bytes) -> None:
        """Replace the object ``name`` with ``data`` whole (see the module docstring)."""
        with _as_disk_error(self.url_of(name)):
            key = self.key(name)
            if self.local:
                self._fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
                temp = self._temp(name)
                self._fs.pipe_file(temp, data)
                self._fs.mv(temp, key)
            else:
                self._fs.pipe_file(key, data, **self._content_type(name))

    def put(self, path: Path, name: str) -> None:
        """Copy the local file ``path`` to the object ``name``, whole (a large file in
        parts on S3, which appear as one object at the end)."""
        with _as_disk_error(self.url_of(name)):
            key = self.key(name)
            if self.local:
                self._fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
                temp = self._temp(name)
                self._fs.put_file(str(path), temp)
                self._fs.mv(temp, key)
            else:
                self._fs.put_file(str(path), key, **self._content_type(name))

    def get(self, name: str, path: Path) -> None:
        """Copy the object ``name`` to the local file ``path``."""
        with _as_disk_error(self.url_of(name)):
            self._fs.get_file(self.key(name), str(path))

    def remove_stale(
        self, folder: str, *, older_than: float = STALE_AFTER, now: float | None = None
    ) -> int:
        """Delete the temporary objects a stopped run left in ``folder`` (untouched for
        ``older_than`` seconds: another run's upload under way is younger); how many."""
        now = time.time() if now is None else now
        removed = 0
        with contextlib.suppress(Exception):  # nothing to clear is no error
            for info in self._fs.ls(self.key(folder), detail=True):
                name = str(info["name"]).rsplit("/", 1)[-1]
                modified = _seconds(info)
                temp = name.startswith(".") and name.endswith(".part")
                if temp and modified is not None and now - modified >= older_than:
                    self._fs.rm_file(info["name"])
                    removed += 1
        return removed

    def _temp(self, name: str) -> str:
        folder, _, base = name.rpartition("/")
        temp = f".{base}.{secrets.token_hex(4)}.part"
        return self.key(f"{folder}/{temp}" if folder else temp)

    def _content_type(self, name: str) -> dict[str, str]:
        kind = mimetypes.guess_type(name)[0]
        if kind is None or not (self.on_s3 or "gcs" in self._kinds or "gs" in self._kinds):
            return {}
        text = kind.startswith("text/") or kind == "application/json"
        kind = f"{kind}; charset=utf-8" if text else kind
        return {"ContentType": kind} if self.on_s3 else {"content_type": kind}


class VideoUpload:
    """One video streaming to a temporary key: ``write`` chunks, then ``commit`` or
    ``abandon``. Blocking (a write may send a whole block): call it from a thread."""

    __slots__ = ("_handle", "_name", "_store", "_temp")

    def __init__(self, store: ObjectStore, name: str) -> None:
        self._store, self._name = store, name
        self._temp = store._temp(name)
        with _as_disk_error(store.url_of(name)):
            fs = store._fs
            if store.local:
                fs.makedirs(self._temp.rsplit("/", 1)[0], exist_ok=True)
            self._handle = fs.open(self._temp, "wb", block_size=BLOCK)

    def write(self, chunk: bytes) -> None:
        with _as_disk_error(self._store.url_of(self._name)):
            self._handle.write(chunk)

    def commit(self, sha256: str, size: int) -> None:
        """Put the bytes written under the video's own key, with ``sha256`` recorded, and
        check that the store holds ``size`` bytes there with that hash (the bytes themselves
        were checked in transit: botocore sends a checksum of every part, which S3 verifies)."""
        store, fs = self._store, self._store._fs
        key = store.key(self._name)
        with _as_disk_error(store.url_of(self._name)):
            self._handle.close()
            if store.on_s3:
                bucket, _, path = key.partition("/")
                fs.call_s3(
                    "copy_object",
                    Bucket=bucket,
                    Key=path,
                    CopySource={"Bucket": bucket, "Key": self._temp.partition("/")[2]},
                    MetadataDirective="REPLACE",
                    Metadata={SHA256: sha256},
                    ContentType="video/mp4",
                )
                fs.rm_file(self._temp)
            else:
                fs.mv(self._temp, key)
                store.write(f"{self._name}.{SHA256}", sha256.encode() + b"\n")
            fs.invalidate_cache(key)
        found = store.stored(self._name)
        if found != (size, sha256):
            got = "nothing" if found is None else f"{found[0]} bytes, sha256 {found[1]}"
            raise DiskError(store.url_of(self._name), f"stored {got}, not {size} bytes {sha256}")

    def abandon(self) -> None:
        """Drop what was written (best effort: a left-over temporary key harms nothing and
        the next run clears it)."""
        with contextlib.suppress(Exception):
            self._handle.close()
        with contextlib.suppress(Exception):
            self._store._fs.rm_file(self._temp)


def _seconds(info: dict[str, Any]) -> float | None:
    """When an object listed by fsspec was last modified (Unix seconds), if said."""
    for field in ("LastModified", "mtime", "updated", "last_modified"):
        value = info.get(field)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None
