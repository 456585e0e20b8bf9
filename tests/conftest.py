"""Shared fixtures. Each test module adds its own where they are not shared."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo() -> Path:
    """The repository root (examples/ and jobs/ live there)."""
    return REPO
