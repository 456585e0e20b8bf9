"""Commands on an output folder, or on a batch of a shared ledger (``--ledger URL --batch
NAME``, from any machine): status, cancel, report, export."""

from __future__ import annotations

import json
import sys
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from batchgen.cli.main import (
    EXIT_FAILED,
    F,
    cli,
    handle_errors,
)
from batchgen.errors import UsageError
from batchgen.fsnames import json_text

if TYPE_CHECKING:
    from batchgen.ledger.shared import SharedBatch


def _folder(func: F) -> F:
    """DIR, or ``--ledger URL --batch NAME`` instead of it."""
    for option in reversed(
        [
            click.argument(
                "out_dir", metavar="[DIR]", required=False, type=click.Path(path_type=Path)
            ),
            click.option(
                "--ledger",
                "ledger_url",
                metavar="URL",
                envvar="BATCHGEN_LEDGER",
                help="The PostgreSQL ledger workers share (or BATCHGEN_LEDGER).",
            ),
            click.option(
                "--batch",
                metavar="NAME",
                help="The batch in --ledger, instead of DIR (default: DIR's name).",
            ),
        ]
    ):
        func = option(func)
    return func


def where(
    out_dir: Path | None, ledger_url: str | None, batch: str | None
) -> tuple[Path | None, SharedBatch | None]:
    """The folder, or the shared batch, a command works on: ``--batch`` names one in the
    ledger; else DIR, whose own ledger wins, or the batch named as DIR is when there is a
    ledger URL and DIR holds no ledger of its own."""
    from batchgen.ledger.shared import SharedBatch, check_url
    from batchgen.ledger.store import LEDGER_NAME

    if batch is None and out_dir is None:
        raise UsageError("give the output folder DIR, or --batch NAME and --ledger URL")
    own = out_dir is not None and (out_dir / LEDGER_NAME).is_file()
    if batch is None and (own or not ledger_url):
        return out_dir, None
    if not ledger_url:
        raise UsageError("--batch names a batch of a shared ledger: give --ledger URL too")
    assert batch is not None or out_dir is not None
    return out_dir, SharedBatch(check_url(ledger_url), batch or Path(str(out_dir)).name)


# Between two looks of ``status --watch``; a test puts its own here.
_pause: Callable[[float], None] = time.sleep


@cli.command()
@_folder
@click.option("--json", "as_json", is_flag=True, help="Print the status as a JSON object.")
@click.option(
    "--watch",
    is_flag=True,
    help="Look again every --interval seconds until Ctrl-C: redrawn in place on a terminal, "
    "a new block (or JSON line) each time otherwise.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Seconds between looks with --watch.",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    help="With --watch: stop after this many looks (default: until Ctrl-C).",
)
@handle_errors
def status(
    out_dir: Path | None,
    ledger_url: str | None,
    batch: str | None,
    as_json: bool,
    watch: bool,
    interval: float,
    count: int | None,
) -> None:
    """Counts, spend, jobs in flight and failures of the batch in DIR, or of a shared
    ledger's batch (safe during a run)."""
    from batchgen.folder.status import read_status, render

    out_dir, shared = where(out_dir, ledger_url, batch)
    terminal = watch and not as_json and sys.stdout.isatty()
    looks = 0
    try:
        while True:
            result = read_status(out_dir, shared=shared)
            if as_json:
                data = result.to_dict()
                click.echo(
                    json_text(
                        json.dumps(data, ensure_ascii=False)
                        if watch
                        else json.dumps(data, indent=2, ensure_ascii=False)
                    )
                )
            elif terminal:
                footer = f"every {interval:g}s; Ctrl-C to stop"
                click.echo(redraw(f"{render(result)}\n{footer}", first=not looks), nl=False)
            else:
                click.echo(("\n" if looks else "") + render(result))
            looks += 1
            if not watch or (count is not None and looks >= count):
                return
            _pause(interval)
    except KeyboardInterrupt:
        if terminal:
            click.echo()
        return  # the way out of --watch: not an interruption


def redraw(text: str, *, first: bool) -> str:
    """``text`` drawn over the previous frame: from the top-left corner, each line cleared to
    its end, and whatever the previous frame had below cleared too."""
    start = "\x1b[2J\x1b[H" if first else "\x1b[H"
    return start + "".join(line + "\x1b[K\n" for line in text.split("\n")) + "\x1b[J"


@cli.command()
@_folder
@click.option(
    "--keys",
    multiple=True,
    metavar="KEY[,KEY...]",
    help="Cancel only these jobs (repeatable): a key, or its start as file names show it.",
)
@click.option(
    "--rows",
    metavar="ROWS",
    help="Cancel only the jobs of these input rows, e.g. 3,7-9.",
)
@click.option(
    "--in-flight",
    is_flag=True,
    help="Only jobs at the provider; leave jobs not submitted yet for a later run.",
)
@click.option("--pending", is_flag=True, hidden=True)  # the default now; kept for old scripts
@click.option("--provider", help="Provider preset (default: the one the run used).")
@click.option("--base-url", help="Queue API base URL (default: the one the run used).")
@click.option("--auth-scheme", type=click.Choice(["key", "bearer"]), help="Authorization scheme.")
@click.option(
    "--api-key-env",
    metavar="NAME[,NAME...]",
    help="Environment variable holding the API key; several for a pool (each job is "
    "cancelled with the key that submitted it).",
)
@click.option("--api-key-file", type=click.Path(path_type=Path), help="File holding the API key.")
@click.option(
    "--ca-bundle",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False, readable=True, resolve_path=True),
    help="Also trust the CA certificates of this PEM file (default: the one the run used).",
)
@click.option("-v", "--verbose", is_flag=True, help="Also print one line per job.")
@handle_errors
def cancel(
    out_dir: Path | None,
    ledger_url: str | None,
    batch: str | None,
    keys: tuple[str, ...],
    rows: str | None,
    in_flight: bool,
    pending: bool,
    provider: str | None,
    base_url: str | None,
    auth_scheme: str | None,
    api_key_env: str | None,
    api_key_file: Path | None,
    ca_bundle: str | None,
    verbose: bool,
) -> None:
    """Stop the batch in DIR: cancel its jobs at the provider and mark the jobs not submitted
    yet cancelled, so no run (a live one included) submits them. Cancelled jobs are not
    resubmitted unless a run is given --retry-cancelled."""
    from batchgen.folder.cancel import cancel_folder, summary
    from batchgen.folder.choose import parse_rows

    out_dir, shared = where(out_dir, ledger_url, batch)
    wanted = [k for item in keys for k in item.replace(",", " ").split()] or None
    overrides = {
        "provider": provider,
        "base_url": base_url,
        "auth_scheme": auth_scheme,
        "api_key_env": api_key_env,
        "ca_bundle": ca_bundle,
    }
    outcomes = cancel_folder(
        out_dir,
        shared=shared,
        keys=wanted,
        rows=parse_rows(rows) if rows is not None else None,
        include_pending=not in_flight,
        overrides=overrides,
        api_key_file=api_key_file,
    )
    if verbose:
        for o in outcomes:
            click.echo(f"row {o.row} {o.key}: {o.before} -> {o.after} ({o.answer})")
    if not outcomes:
        click.echo("nothing to cancel")
    else:
        click.echo(f"{shared or out_dir}: {_jobs(len(outcomes))}")
        for kind, n in summary(outcomes):
            click.echo(f"  {n} {kind}")
    if not all(o.ok for o in outcomes):
        sys.exit(EXIT_FAILED)


def _jobs(n: int) -> str:
    return f"{n:,} job{'s' if n != 1 else ''}"


@cli.command()
@_folder
@click.option("--open", "open_it", is_flag=True, help="Open the report in the default web browser.")
@handle_errors
def report(out_dir: Path | None, ledger_url: str | None, batch: str | None, open_it: bool) -> None:
    """Write DIR/report.html: a summary and a gallery of the batch, viewable offline; and
    DIR/compare.html, the same prompts side by side, when the batch compares models or
    matrix variants. With --batch, the shared batch's pages go to DIR (default: a folder
    named as the batch), linking the videos its workers keep on this machine."""
    from batchgen.folder.report import write_pages

    out_dir, shared = where(out_dir, ledger_url, batch)
    if out_dir is None:
        assert shared is not None
        out_dir = Path(shared.name)
    pages = write_pages(out_dir, shared=shared)
    path = pages.report
    click.echo(path)
    if pages.compare is not None:
        click.echo(pages.compare)
    if not open_it:
        return
    if isinstance(path, str):  # in the store: served by whatever serves the bucket
        click.echo("the report is in the store: open it where the store is served", err=True)
    elif not webbrowser.open(path.as_uri()):
        click.echo("no web browser could be started; open the file above yourself", err=True)


@cli.command()
@_folder
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["csv", "jsonl", "parquet", "hf"]),
    help="csv/jsonl/parquet: the manifest; hf: a Hugging Face videofolder dataset.",
)
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(path_type=Path),
    help="File to write (hf: a new or empty folder).",
)
@handle_errors
def export(
    out_dir: Path | None, ledger_url: str | None, batch: str | None, fmt: str, to: Path
) -> None:
    """Export the batch in DIR, or a shared ledger's batch, as a table, or as a dataset
    folder of its videos."""
    from batchgen.folder.export import export as run_export

    out_dir, shared = where(out_dir, ledger_url, batch)
    result = run_export(out_dir, fmt, to, shared=shared)
    if fmt == "hf":
        how = f"{result.linked} linked, {result.copied} copied"
        click.echo(f"wrote {result.rows} videos ({how}) and metadata.jsonl to {result.path}")
        if result.missing:
            click.echo(
                f"warning: {len(result.missing)} done jobs have no file on disk: "
                + ", ".join(result.missing[:10]),
                err=True,
            )
        if result.missing_inputs:
            click.echo(
                f"warning: {result.missing_inputs} input file(s) are gone or changed since the "
                "run: left out of the dataset (null in metadata.jsonl, their sha256 kept)",
                err=True,
            )
    else:
        click.echo(f"wrote {result.rows} rows to {result.path}")
