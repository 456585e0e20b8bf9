"""The command line: thin click commands over the library; ``cli`` is the entry point.

One module per family of commands; importing them registers them on the group.
"""

from batchgen.cli import endpoints, folder, mock, run, template
from batchgen.cli.main import cli

__all__ = ["cli", "endpoints", "folder", "mock", "run", "template"]
