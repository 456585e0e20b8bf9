"""The run's files in its folder: the manifest written from a reader of its own, copies to the
run's store, and a full disk while writing them said as a DiskError."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from batchgen.api.objectstore import ObjectStore
from batchgen.errors import DiskError
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.manifest import write_manifest


def manifest_from(reader: Callable[[], LedgerStore], out: Path, store: ObjectStore | None) -> float:
    """Write the manifest from a read-only connection of this thread's own (and copy it to
    the store); return seconds."""
    started = time.monotonic()
    with reader() as ledger:
        write_manifest(ledger, out)
    publish(store, out, "manifest.csv", "manifest.jsonl")
    return time.monotonic() - started


def publish(store: ObjectStore | None, out: Path, *names: str) -> None:
    """Copy the run's files ``names`` from ``out`` to the store, if the run has one."""
    if store is not None:
        for name in names:
            store.put(out / name, name)


@contextlib.contextmanager
def writing(out: Path, name: str) -> Iterator[None]:
    """Turn an OSError while writing ``out/name`` into a DiskError the CLI can show."""
    try:
        yield
    except OSError as exc:
        raise DiskError.from_os(str(out / name), exc) from None
