"""The run's log file: lines buffered, flushed soon after, at once for a warning, and at the end."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from batchgen.run.runlog import _LogFile, request_log

log = logging.getLogger("batchgen.test")


async def test_lines_reach_the_file_soon_warnings_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An info line is written within FLUSH_EVERY; a warning (and what came before it) at once."""
    monkeypatch.setattr(_LogFile, "FLUSH_EVERY", 0.05)
    path = tmp_path / "batchgen.log"
    with request_log(path):
        log.info("first request")
        assert "first request" not in path.read_text()  # buffered for now
        await asyncio.sleep(0.2)
        assert "first request" in path.read_text()
        log.info("second request")
        log.warning("a key was refused")
        text = path.read_text()
        assert "second request" in text
        assert "a key was refused" in text
        log.info("last request")
    assert "last request" in path.read_text()  # the end of the run flushes


def test_lines_outside_an_event_loop_are_written_at_once(tmp_path: Path) -> None:
    """Without a running loop to flush later, each line is flushed as it is written."""
    path = tmp_path / "batchgen.log"
    with request_log(path):
        log.info("planned")
        assert "planned" in path.read_text()
