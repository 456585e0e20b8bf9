"""Files as inputs: what a ``type: file`` parameter's cell names, checked before anything is sent.

A cell may hold an ``https://`` URL (sent as is), a ``data:`` URI, or a local path. A local
file becomes an ``InputFile`` and the payload holds ``sha256:<hex>`` in its place, so a job's
key depends on the file's bytes, not on where it lies; the run replaces that reference with the
URL the file was uploaded to (or a ``data:`` URI) when it submits the job.
"""

from __future__ import annotations

from dataclasses import dataclass

# The payload's stand-in for a local file until it is uploaded.
REF_PREFIX = "sha256:"


@dataclass(frozen=True, slots=True)
class InputFile:
    """One local file behind a parameter of a job."""

    param: str
    path: str  # absolute, as resolved when planned
    sha256: str
    size: int
    mime: str

    @property
    def ref(self) -> str:
        """What the planned payload holds for this file."""
        return REF_PREFIX + self.sha256
