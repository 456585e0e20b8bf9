"""`batchgen template`: a ready-to-fill prompt sheet for an endpoint."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from batchgen.cli.main import cli, handle_errors


@cli.command()
@click.argument("endpoint", required=False)
@click.option(
    "--to",
    "target",
    type=click.Path(path_type=Path),
    required=True,
    help="The sheet to write: FILE.csv, or FILE.xlsx (dropdowns, range checks, a column guide).",
)
@click.option(
    "--endpoint-spec",
    type=click.Path(path_type=Path),
    help="Your own endpoint spec file (YAML) instead of a built-in.",
)
@click.option("--force", is_flag=True, help="Write over an existing file.")
@handle_errors
def template(endpoint: str | None, target: Path, endpoint_spec: Path | None, force: bool) -> None:
    """Write a ready-to-fill sheet with ENDPOINT's columns (default: the Kling endpoint)."""
    from batchgen.plan.endpoint import DEFAULT_ENDPOINT, resolve
    from batchgen.plan.template import columns, write_template

    spec = resolve(endpoint or DEFAULT_ENDPOINT, endpoint_spec)
    path = write_template(spec, target, overwrite=force)
    names = ", ".join(p.name for p in columns(spec))
    click.echo(f"wrote {path}: columns {names}")
    # The sheet does not say its endpoint: the command to type does, but for the default.
    named = "" if spec.id == DEFAULT_ENDPOINT else f" --endpoint {spec.id}"
    if endpoint_spec is not None:
        named = f" --endpoint-spec {shlex.quote(str(endpoint_spec))}"
    click.echo(f"fill one row per video, then: batchgen plan {shlex.quote(str(path))}{named}")
