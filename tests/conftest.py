"""Shared fixtures. Each test module adds its own where they are not shared."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from mock_fixtures import fast_config

from batchgen.mock import MockServer

REPO = Path(__file__).resolve().parent.parent


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
