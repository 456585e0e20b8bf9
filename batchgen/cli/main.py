"""The command line: parses flags, calls the library, draws progress, maps errors to exit codes.

Exit codes: 0 all done; 1 some jobs failed; 2 bad input or usage; 3 fatal provider error;
130 interrupted.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from batchgen.cli.falspecs import OFFLINE_HELP, PLATFORM_HELP, fal_specs
from batchgen.errors import BatchgenError, FatalError, InputError, UsageError
from batchgen.fsnames import argument_text, install_output_escapes, json_text
from batchgen.version import __version__

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
            fail(
                f"{exc}\n{count} problem{'s' if count != 1 else ''} found; nothing was sent.",
                EXIT_INPUT,
            )
        except UsageError as exc:
            fail(f"error: {exc}", EXIT_INPUT)
        except FatalError as exc:
            fail(f"fatal: {exc}", EXIT_FATAL)
        except BatchgenError as exc:
            fail(f"error: {exc}", EXIT_FAILED)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
    invoke_without_command=True,
)
@click.version_option(__version__, prog_name="batchgen")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Run a spreadsheet of prompts as video-generation jobs on a fal-style queue API."""
    install_output_escapes()  # a name no locale can encode is shown escaped, never raises
    if ctx.invoked_subcommand is None:  # plain `batchgen`: the help, and success
        click.echo(ctx.get_help())


def parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    """``--set FIELD=VALUE`` pairs as a mapping."""
    sets = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set takes FIELD=VALUE, not {item!r}")
        sets[name.strip()] = value
    return sets


def text_option(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A text option (or each of a repeated one) as the UTF-8 its bytes spell, whatever the
    locale: under ``LC_ALL=C`` a typed ``café`` is bytes Python could not decode."""
    try:
        if isinstance(value, tuple):
            return tuple(argument_text(v) for v in value)
        return None if value is None else argument_text(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def plan_options(func: F) -> F:
    """Options shared by every command that builds a plan (plan, run)."""
    for option in reversed(
        [
            click.argument("target", type=click.Path(path_type=Path), required=False),
            click.option(
                "--set",
                "sets",
                multiple=True,
                metavar="FIELD=VALUE",
                callback=text_option,
                help="Default for a parameter (row cells override it).",
            ),
            click.option(
                "--endpoint",
                callback=text_option,
                help="Endpoint id (default: the spec's, else Kling 2.5 turbo pro text-to-video).",
            ),
            click.option(
                "--endpoint-spec",
                type=click.Path(path_type=Path),
                multiple=True,
                help=(
                    "Your own endpoint spec: a spec file (YAML) or fal's OpenAPI document "
                    "(JSON). Repeat it for several endpoints; --endpoint picks the plan's."
                ),
            ),
            click.option(
                "--filename",
                callback=text_option,
                help="File name template, e.g. '{row:04d}-{slug}'.",
            ),
            click.option(
                "--sheet",
                metavar="NAME",
                callback=text_option,
                help="The sheet of an XLSX to read (default: the first with a prompt column).",
            ),
            click.option(
                "--skip-hidden-rows",
                is_flag=True,
                default=None,
                help="Leave an XLSX's hidden rows out (by default they are read, and named).",
                show_default="no, or the job spec's skip_hidden_rows",
            ),
            click.option(
                "--add",
                is_flag=True,
                help=(
                    "Add to the default folder out/NAME even though it holds the run of "
                    "another input file."
                ),
            ),
            click.option("--platform-url", help=PLATFORM_HELP),
            click.option("--offline", is_flag=True, help=OFFLINE_HELP),
            click.option(
                "--extra-columns",
                type=click.Choice(["error", "ok"], case_sensitive=False),
                help=(
                    "A column that looks like a misspelt parameter (cfg, neg prompt): an error, "
                    "or ok to keep it as a note, never sent."
                ),
                show_default="error, or the job spec's extra_columns",
            ),
        ]
    ):
        func = option(func)
    return func


@cli.command()
@plan_options
@click.option("--out", "output", type=click.Path(path_type=Path), help="Output folder.")
@click.option("--jobs", "list_jobs", is_flag=True, help="List every job: row, key, file, price.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as a JSON object.")
@handle_errors
def plan(
    target: Path | None,
    sets: tuple[str, ...],
    endpoint: str | None,
    endpoint_spec: tuple[Path, ...],
    filename: str | None,
    sheet: str | None,
    skip_hidden_rows: bool | None,
    extra_columns: str | None,
    platform_url: str | None,
    offline: bool,
    add: bool,
    output: Path | None,
    list_jobs: bool,
    as_json: bool,
) -> None:
    """Validate TARGET (a prompt file, a folder or glob of images, or a job spec) and print
    jobs and cost. Sends no job.

    With an output folder that holds a run, also says how many jobs are done there, new, or
    left over. For an endpoint with no built-in spec it reads fal's model and pricing APIs
    (and says so), unless --offline.
    """
    from batchgen.cli.outfolder import check_default_folder, folder_counts
    from batchgen.cli.planview import echo_jobs, echo_summary, job_rows
    from batchgen.plan.build import build_plan

    if target is None:
        raise UsageError("give a prompt file or a job spec: batchgen plan FILE")
    result = build_plan(
        target,
        endpoint=endpoint,
        endpoint_spec=endpoint_spec,
        sets=parse_sets(sets),
        output=output,
        filename=filename,
        sheet=sheet,
        extra_columns=extra_columns,
        skip_hidden_rows=skip_hidden_rows,
        fal=fal_specs(platform_url, offline),
    )
    check_default_folder(result, add)
    counts = folder_counts(result)
    if as_json:
        data = {**result.summary(), "folder": counts}
        if list_jobs:
            data["job_list"] = job_rows(result)
        click.echo(json_text(json.dumps(data, indent=2, ensure_ascii=False)))
        return
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if list_jobs:
        echo_jobs(result)
        click.echo()
    echo_summary(result, counts)
