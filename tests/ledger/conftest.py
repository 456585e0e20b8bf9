"""The ledger's tests run on both backends: a folder's SQLite file and a PostgreSQL batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from batchgen.ledger.base import LedgerStore
from batchgen.ledger.opener import open_shared
from batchgen.ledger.store import Ledger

Opener = Callable[..., LedgerStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn."""
    return str(request.param)


@pytest.fixture
def open_ledger(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens (again) the one ledger of this test: ``open_ledger(readonly=True)``, or a
    PostgreSQL batch's with ``worker=`` and ``lease=``. Every one it opened is closed after."""
    opened: list[LedgerStore] = []
    if backend == "postgresql":
        server = request.getfixturevalue("postgres")
        batch = request.getfixturevalue("batch")

        def make(**options: Any) -> LedgerStore:
            opened.append(open_shared(server.url, batch, **options))
            return opened[-1]
    else:

        def make(**options: Any) -> LedgerStore:
            opened.append(Ledger.in_folder(tmp_path / "out", **options))
            return opened[-1]

    yield make
    for ledger in opened:
        ledger.close()


def opening(ledger: LedgerStore, request: pytest.FixtureRequest) -> str:
    """Python code that opens ``ledger`` again, for a process of its own (``open_shared`` and
    ``Ledger`` imported there)."""
    if isinstance(ledger, Ledger):
        return f"Ledger(Path({str(ledger.path)!r}))"
    url, batch = request.getfixturevalue("postgres").url, request.getfixturevalue("batch")
    return f"open_shared({url!r}, {batch!r})"
