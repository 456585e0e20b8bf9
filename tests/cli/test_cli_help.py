"""Help: plain `batchgen` prints it and succeeds; every option that takes a value shows its
default."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from batchgen.cli import cli
from batchgen.cli.runoptions import _RUN_SETTINGS


def test_no_arguments_prints_help_and_exits_0() -> None:
    """`batchgen` alone is the help, exit 0, listing every command."""
    result = CliRunner().invoke(cli, [])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
    for name in ("plan", "run", "status", "template"):
        assert f"  {name} " in result.output


def _has_default(option: click.Option, ctx: click.Context) -> bool:
    default = option.get_default(ctx, call=False)
    return default is not None and default != () and repr(default) != "Sentinel.UNSET"


def _without_default(command: click.Command, names: set[str] | None = None) -> list[str]:
    """Options (all with a default, or those in ``names``) whose help shows no default."""
    with click.Context(command, parent=click.Context(cli, show_default=True)) as ctx:
        return [
            str(option.name)
            for option in command.params
            if isinstance(option, click.Option)
            and not (option.is_flag or option.hidden)
            and (option.name in names if names is not None else _has_default(option, ctx))
            and "default:" not in (option.get_help_record(ctx) or ("", ""))[1]
        ]


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_option_with_a_default_shows_it(name: str) -> None:
    """Each command's --help works, and each option with a default value shows it."""
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert _without_default(cli.commands[name]) == []


def test_run_help_shows_the_run_settings_defaults() -> None:
    """Every run setting shows its default (concurrency 8, rate 10, the provider fal...)."""
    assert _without_default(cli.commands["run"], set(_RUN_SETTINGS) | {"extra_columns"}) == []
    result = CliRunner().invoke(cli, ["run", "--help"])
    text = " ".join(result.output.split())
    for shown in ("[default: (8)]", "[default: (10.0)]", "[default: (1800.0)]", "[default: (fal)]"):
        assert shown in text
