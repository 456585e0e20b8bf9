"""The command line: parses flags, calls the library, draws progress, maps errors to exit codes.

Exit codes: 0 all done; 1 some jobs failed; 2 bad input or usage; 3 fatal provider error;
130 interrupted.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from batchgen import __version__
from batchgen.errors import BatchgenError, FatalError, InputError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_FATAL = 3
EXIT_INTERRUPTED = 130


def fail(message: str, code: int) -> None:
    """Print an error for the user and exit with ``code``."""
    click.echo(message, err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn batchgen's errors into a message and an exit code: never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            count = len(exc.problems)
            fail(f"{exc}\n{count} problem{'s' if count != 1 else ''} found; nothing was sent.",
                 EXIT_INPUT)
        except UsageError as exc:
            fail(f"error: {exc}", EXIT_INPUT)
        except FatalError as exc:
            fail(f"fatal: {exc}", EXIT_FATAL)
        except BatchgenError as exc:
            fail(f"error: {exc}", EXIT_FAILED)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchgen")
def cli() -> None:
    """Run a spreadsheet of prompts as video-generation jobs on a fal-style queue API."""


@cli.command()
@handle_errors
def endpoints() -> None:
    """List the built-in endpoint specs."""
    from batchgen.endpoint import builtin_specs

    for spec in builtin_specs().values():
        click.echo(f"{spec.id}  ({spec.title})")
        for param in spec.params.values():
            bits = [param.type]
            if param.required:
                bits.append("required")
            if param.enum is not None:
                bits.append("one of " + ", ".join(map(str, param.enum)))
            if param.minimum is not None or param.maximum is not None:
                bits.append(f"{param.minimum} to {param.maximum}")
            if param.max_length is not None:
                bits.append(f"at most {param.max_length} characters")
            if param.default is not None:
                bits.append(f"default {param.default!r}")
            click.echo(f"  {param.name}: {'; '.join(bits)}")
