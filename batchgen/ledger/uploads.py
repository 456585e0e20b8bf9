"""The ledger's memory of uploaded input files: each content uploaded once per folder.

``uploads`` (a table of the ledger) maps a file's sha256 and the storage that holds it
to the URL it is served at and when it was uploaded, so rows sharing an image, and later runs
of the folder, reuse one upload. An upload the provider could not use is marked stale and
uploaded again by the next job that needs it. ``UploadCache`` is the part of ``Ledger`` that
reads and writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchgen.ledger.access import SqlAccess


@dataclass(frozen=True, slots=True)
class Upload:
    """One file content held by a storage: at ``url`` since ``uploaded_at`` (Unix seconds)."""

    sha256: str
    origin: str  # the storage: its REST base URL
    url: str
    size: int
    uploaded_at: float


class UploadCache(SqlAccess):
    """Uploaded files, by content and storage (mixed into ``Ledger``)."""

    __slots__ = ()

    def upload(self, sha256: str, origin: str) -> Upload | None:
        """Where the storage ``origin`` holds the content ``sha256``; None if never uploaded
        there, or if the upload was marked stale since."""
        rows = self._read(
            "SELECT url, size, uploaded_at FROM uploads "
            "WHERE sha256 = ? AND origin = ? AND stale = 0",
            (sha256, origin),
        )
        return Upload(sha256, origin, *rows[0]) if rows else None

    def record_upload(self, sha256: str, origin: str, url: str, size: int) -> Upload:
        """Keep ``url`` as where ``origin`` holds ``sha256`` (committed before it returns, so
        no submit uses a URL the ledger does not hold)."""
        now = self._clock()
        with self._tx() as db:
            self._query(
                db,
                "INSERT INTO uploads (sha256, origin, url, size, uploaded_at, stale) "
                "VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (sha256, origin) DO UPDATE SET "
                "url = excluded.url, size = excluded.size, uploaded_at = excluded.uploaded_at, "
                "stale = 0",
                (sha256, origin, url, size, now),
            )
        return Upload(sha256, origin, url, size, now)

    def stale_upload(self, url: str) -> int:
        """Mark the upload at ``url`` stale (the provider could not use it): the next job
        that needs its content uploads it again. Returns how many were marked."""
        with self._tx() as db:
            cursor = self._query(
                db, "UPDATE uploads SET stale = 1 WHERE url = ? AND stale = 0", (url,)
            )
            marked: int = cursor.rowcount
        return marked
