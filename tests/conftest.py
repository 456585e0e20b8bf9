"""Shared fixtures. Each test module adds its own where they are not shared."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pgserver
import pytest
from mock_fixtures import fast_config

from batchgen.mock import MockServer

pytest_plugins = ["s3server"]  # the ``s3`` fixture: an S3-compatible server on loopback

REPO = Path(__file__).resolve().parent.parent
# A file root cannot open for reading either: sysfs refuses to read a write-only attribute.
WRITE_ONLY = Path("/sys/bus/pci/rescan")


@pytest.fixture(autouse=True)
def signals_as_they_were() -> Iterator[None]:
    """A CLI run in this process leaves its signals ignored (its last words): put them back."""
    names = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    before = [signal.getsignal(sig) for sig in names]
    yield
    for sig, handler in zip(names, before, strict=True):
        signal.signal(sig, handler)


@pytest.fixture(autouse=True)
def no_platform_api(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test asks fal's platform for a spec unless it says so (and names a loopback one),
    and none reads the user's cache of fal's answers."""
    monkeypatch.setenv("BATCHGEN_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def repo() -> Path:
    """The repository root (examples/ and jobs/ live there)."""
    return REPO


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    """An emulator on loopback with fast, fault-free defaults (modules may override it)."""
    async with MockServer(fast_config()) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp client session."""
    async with aiohttp.ClientSession() as client:
        yield client


@contextmanager
def tmpfs(where: Path, *options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``where`` (root only) for the block."""
    where.mkdir(parents=True, exist_ok=True)
    command = ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(where)]
    subprocess.run(command, check=True, capture_output=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write in: a read-only mount as root (who passes every permission
    bit), a chmod 555 folder otherwise."""
    path = tmp_path / "read-only"
    if os.geteuid() == 0:
        with tmpfs(path, "ro", "size=64k"):
            yield path
        return
    path.mkdir()
    path.chmod(0o555)
    try:
        yield path
    finally:
        path.chmod(0o755)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system that fills up (a tmpfs: needs root, as CI has)."""
    if os.geteuid() != 0:
        pytest.skip("filling a real disk needs root to mount a small tmpfs (CI runs as root)")
    with tmpfs(tmp_path / "disk", "size=1m") as path:
        yield path


@pytest.fixture
def unreadable() -> Iterator[Callable[[Path, bytes], Path]]:
    """Makes a file that exists and is regular but cannot be opened for reading: ``data`` with
    no permission bits, or as root (who passes them) a link to a write-only sysfs file."""
    made: list[Path] = []

    def make(path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            path.write_bytes(data)
            path.chmod(0)
            made.append(path)
        elif WRITE_ONLY.exists():
            path.symlink_to(WRITE_ONLY)
        else:
            pytest.skip("root reads every file, and this system has no write-only sysfs file")
        return path

    yield make
    for path in made:
        path.chmod(0o644)


@pytest.fixture(scope="session")
def postgres() -> Iterator[pgserver.Server]:
    """A throwaway PostgreSQL server for the session (see ``tests/pgserver.py``); the tests
    that need it are skipped, saying why, where none can start or psycopg is missing."""
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg is not installed: pip install -e '.[test]'")
    try:
        server = pgserver.start()
    except pgserver.NoServer as exc:
        pytest.skip(f"no PostgreSQL server could start: {exc}")
    yield server
    server.stop()


@pytest.fixture
def batch(request: pytest.FixtureRequest) -> str:
    """A batch name of this test's own: one database holds every test's batches."""
    return f"{request.node.name[:40]}-{os.urandom(4).hex()}"
