"""The command line: thin click commands over the library; ``cli`` is the entry point.

One module per family of commands; importing them registers them on the group.
"""

import contextlib
import signal
import sys
from types import FrameType


def _terminated(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM before a command set its own handlers: nothing is under way yet, so the
    process ends as a stopped run does (exit 130), not killed by the signal."""
    sys.exit(130)


# Set first, before the heavy imports below: a SIGTERM while Python imports batchgen.
with contextlib.suppress(ValueError):  # not the main thread: its owner decides
    signal.signal(signal.SIGTERM, _terminated)

from batchgen.cli import endpoints, folder, mock, run, template  # noqa: E402
from batchgen.cli.main import cli  # noqa: E402

__all__ = ["cli", "endpoints", "folder", "mock", "run", "template"]
