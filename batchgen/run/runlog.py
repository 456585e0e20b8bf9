"""The run's log file, ``DIR/batchgen.log``: a line per request and per job event.

``request_log`` sends the ``batchgen`` loggers' lines to it for the duration of a run. Lines are
buffered and flushed at a warning or worse, and at most ``_LogFile.FLUSH_EVERY`` seconds after
any other line (a syscall per line cost more than the request it logs). A line that cannot be
written (a full disk) is dropped quietly: the run reports a failing disk itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from batchgen.fsnames import ESCAPE


class _LogFile(logging.FileHandler):
    """The run's log file; a line that cannot be written (disk full) is dropped quietly, as
    the run reports a failing disk itself, and a traceback must never reach the user.

    Lines are written through a buffer, flushed at a warning or worse and at most
    ``FLUSH_EVERY`` seconds after any other line: a line per request, each written by a
    syscall of its own, cost more than the request. A run killed outright may lose its last
    half second of lines; the ledger, not the log, is what a later run resumes from."""

    FLUSH_EVERY = 0.5

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8", errors=ESCAPE)  # a name no locale holds
        self._due: asyncio.TimerHandle | None = None

    def flush(self) -> None:
        if self._due is not None:
            self._due.cancel()
            self._due = None
        with contextlib.suppress(OSError):
            super().flush()

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is None:  # opened on the first line, as FileHandler does
            self.stream = self._open()
        try:
            self.stream.write(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
        if self._due is not None and record.levelno < logging.WARNING:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside the run's loop: at once
            loop = None
        if loop is None or record.levelno >= logging.WARNING:
            self.flush()
        else:
            self._due = loop.call_later(self.FLUSH_EVERY, self.flush)

    def handleError(self, record: logging.LogRecord) -> None:
        pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            super().close()


@contextlib.contextmanager
def request_log(path: Path) -> Iterator[None]:
    """Send batchgen's request and job log to ``path`` for the duration of the run."""
    logger = logging.getLogger("batchgen")
    handler = _LogFile(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()
