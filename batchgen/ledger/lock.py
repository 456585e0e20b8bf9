"""One writer per output folder: an OS lock on ``DIR/batchgen.lock`` that dies with its process.

``folder_lock`` takes an exclusive ``flock`` without waiting. A second run on a folder that a
live run holds is refused at once, naming the holder (PID, host, start time), before it reads
the ledger or sends anything. The kernel drops the lock when the holder's process ends, however
it ends (kill -9 included), so a crash never leaves a stale lock; the file itself stays, holding
the last holder's details. Readers (``status``, ``report``, ``export``, ``cancel``) take no lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from batchgen.errors import DiskError, UsageError

LOCK_NAME = "batchgen.lock"


@contextmanager
def folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold ``folder``'s writer lock for the block; UsageError if another process holds it."""
    path = Path(folder) / LOCK_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DiskError.from_os(str(path), exc) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"{folder} is in use by another batchgen run ({_holder(fd)}); wait for it to "
                "end or stop it, then run again (status, report, export and cancel work beside it)"
            ) from None
        _describe_holder(fd)
        yield
    finally:
        os.close(fd)  # releases the lock


def _describe_holder(fd: int) -> None:
    stamp = datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="seconds")
    text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started_at": stamp})
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode() + b"\n", 0)
    except OSError:
        pass  # only a courtesy for the next one refused: the lock itself holds


def _holder(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict) or "pid" not in data:
        return "holder unknown"
    return f"PID {data.get('pid')} on {data.get('host', '?')}, since {data.get('started_at', '?')}"
