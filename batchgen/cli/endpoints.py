"""``batchgen endpoints``: list the endpoint catalog, show one spec, import an OpenAPI document."""

from __future__ import annotations

import difflib
import json
import shutil
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from batchgen.cli.falspecs import PLATFORM_HELP, fal_specs
from batchgen.cli.main import EXIT_FAILED, cli, handle_errors
from batchgen.errors import ApiError, InputError, UsageError


class _EndpointsGroup(click.Group):
    """``endpoints ID`` shows one spec: a first word that is no subcommand is an endpoint id."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "show", self.commands["show"], args
        return super().resolve_command(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(
            ctx.command_path,
            "[ID] [--json] | import FILE [-o OUT.yaml] | refresh [ID...] | check [ID...]",
        )


@cli.group(cls=_EndpointsGroup, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the list as a JSON array.")
@click.pass_context
@handle_errors
def endpoints(ctx: click.Context, as_json: bool) -> None:
    """List the built-in endpoints: id, kind (t2v/i2v) and price, one a line.

    `batchgen endpoints ID` shows one endpoint's whole schema; `batchgen endpoints import FILE`
    turns fal's OpenAPI document for an endpoint into a spec file.
    """
    if ctx.invoked_subcommand is not None:
        return
    from batchgen.plan.endpoint import builtin_specs

    specs = sorted(builtin_specs().values(), key=lambda s: s.id)
    if as_json:
        rows = [
            {
                "id": s.id,
                "kind": s.kind,
                "price": s.price.summary(),
                "title": s.title,
                "status": s.status,
                **({"instead": s.instead} if s.instead else {}),
            }
            for s in specs
        ]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    width = max(len(s.id) for s in specs)
    columns = shutil.get_terminal_size((0, 0)).columns  # 0: no terminal, lines kept whole
    for spec in specs:
        rest = f"{spec.kind}  {spec.price.summary()}"
        if spec.status != "active":
            since = f" {spec.since}" if spec.since else ""
            instead = f": use {spec.instead}" if spec.instead else ""
            rest += f"  [{spec.status.upper()}{since}{instead}]"
        line = f"{spec.id:<{width}}  {rest}"
        if 0 < columns < len(line):  # a narrow terminal: the rest on a line of its own
            line = f"{spec.id}\n    {rest}"
        click.echo(line)


@endpoints.command(hidden=True)
@click.argument("endpoint_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the whole spec as JSON.")
@handle_errors
def show(endpoint_id: str, as_json: bool) -> None:
    """Show one endpoint's parameters, types, defaults, limits, file kinds, price and source."""
    from batchgen.plan.endpoint import builtin_specs

    specs = builtin_specs()
    spec = specs.get(endpoint_id.strip("/"))
    if spec is None:
        raise UsageError(_unknown(endpoint_id, list(specs)))
    data = spec.as_data()
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    latency = spec.typical_latency_s
    click.echo(f"{spec.id}  ({spec.title})")
    click.echo(f"  kind: {spec.kind}   output: {spec.output}   typical latency: {latency} s")
    click.echo(f"  price: {spec.price.summary()}")
    click.echo(f"  price rule: {json.dumps(data['price'])}")
    said = spec.lifecycle()
    if said is not None:
        click.echo(f"  status: {said}")
    click.echo("parameters:")
    for name, param in data["parameters"].items():
        click.echo(f"  {name}: {_describe(param)}")
    click.echo(f"source: {spec.source}")
    width = max(40, shutil.get_terminal_size((100, 24)).columns - 2)
    for line in textwrap.wrap(" ".join(spec.notes.split()), width=width):  # to this terminal
        click.echo(f"  {line}")


def _describe(param: dict[str, Any]) -> str:
    if param["type"] == "list":
        bits = ["list", *(["required"] if param.get("required") else [])]
        bits += [f"{k[:3]} {param[k]} items" for k in ("min_items", "max_items") if k in param]
        if "max_total" in param:
            bits.append(f"its {param['total_of']} at most {param['max_total']:g} in all")
        return "; ".join(bits) + f"; each item: {_describe(param['items'])}"
    if param["type"] == "object":
        fields = ", ".join(f"{n} ({_describe(f)})" for n, f in param["fields"].items())
        return f"object{'; required' if param.get('required') else ''} with {fields}"
    bits = [param["type"]]
    if param.get("required"):
        bits.append("required")
    if param["type"] == "file":
        bits.append(f"{', '.join(param['accept'])}, at most {param['max_mb']:g} MB")
    if "enum" in param:
        bits.append("one of " + ", ".join(map(str, param["enum"])))
    if "minimum" in param or "maximum" in param:
        bits.append(f"{param.get('minimum', '')} to {param.get('maximum', '')}".strip())
    if "max_length" in param:
        bits.append(f"at most {param['max_length']} characters")
    if "default" in param:
        bits.append(f"default {param['default']!r}")
    if param.get("aliases"):
        bits.append("also named " + ", ".join(param["aliases"]))
    return "; ".join(bits)


def _unknown(endpoint_id: str, known: list[str]) -> str:
    close = difflib.get_close_matches(endpoint_id, known, n=3, cutoff=0.5)
    close += [k for k in known if endpoint_id.lower() in k.lower() and k not in close][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"no built-in endpoint {endpoint_id!r}{hint} (batchgen endpoints lists them)"


@endpoints.command(name="import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), help="Write the spec here (default: stdout)."
)
@handle_errors
def import_(file: Path, out: Path | None) -> None:
    """Turn fal's OpenAPI document for an endpoint (JSON) into a spec file (YAML).

    The document is what https://fal.ai/api/openapi/queue/openapi.json?endpoint_id=ID serves.
    The spec gets the parameters, file inputs and output key; its price is unknown: add one.
    """
    from batchgen.plan.endpoint import parse_spec
    from batchgen.plan.files import read_text
    from batchgen.plan.openapi import import_openapi

    text = import_openapi(
        read_text(file, str(file)), str(file), datetime.now(UTC).date().isoformat()
    )
    spec = parse_spec(text, str(out or file))  # what run and plan will read back
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(
        f"wrote {out}: {spec.id}, {spec.kind}, {len(spec.params)} parameters, price unknown",
        err=True,
    )


_PLATFORM = click.option("--platform-url", help=PLATFORM_HELP)


@endpoints.command()
@click.argument("endpoint_ids", metavar="[ID]...", nargs=-1)
@_PLATFORM
@handle_errors
def refresh(endpoint_ids: tuple[str, ...], platform_url: str | None) -> None:
    """Ask fal's model and pricing APIs again for each ID (default: every cached one) and
    keep the answers in the cache later plans read ($XDG_CACHE_HOME/batchgen/models)."""
    from batchgen.plan.falspecs import cached_ids, spec_of

    fal = fal_specs(platform_url, False, asked=True)
    ids = [i.strip("/") for i in endpoint_ids] or cached_ids(fal.folder)
    if not ids:
        raise UsageError(
            "nothing cached to refresh: name the endpoints (batchgen endpoints refresh ID)"
        )
    missing = 0
    for endpoint_id in ids:
        try:
            entry = fal.refresh(endpoint_id)
        except (ApiError, InputError) as exc:  # the others are still worth asking for
            missing += 1
            click.echo(f"{endpoint_id}: not refreshed: {exc}")
            continue
        if entry is None:
            missing += 1
            click.echo(f"{endpoint_id}: fal lists no such model")
            continue
        price = entry["price"]
        said = "no price" if price is None else f"{price['unit_price']} USD per {price['unit']}"
        status = spec_of(entry).status  # fal's inactive is batchgen's retired
        click.echo(f"{endpoint_id}: refreshed ({status}, {said}) -> {fal.path(endpoint_id)}")
    if missing:
        raise SystemExit(EXIT_FAILED)


@endpoints.command()
@click.argument("endpoint_ids", metavar="[ID]...", nargs=-1)
@_PLATFORM
@handle_errors
def check(endpoint_ids: tuple[str, ...], platform_url: str | None) -> None:
    """Compare each built-in spec (default: every one) with what fal's model and pricing APIs
    say now: parameters added or gone, types, enum values, defaults, limits, status, unit
    price. Exit 1 when any differ. The answers are cached, as refresh does."""
    from batchgen.plan.endpoint import builtin_specs
    from batchgen.plan.falspecs import spec_of
    from batchgen.plan.speccheck import differences

    specs = builtin_specs()
    ids = [i.strip("/") for i in endpoint_ids] or sorted(specs)
    unknown = [i for i in ids if i not in specs]
    if unknown:
        raise UsageError(_unknown(unknown[0], list(specs)))
    fal = fal_specs(platform_url, False, asked=True)
    differ = 0
    for endpoint_id in ids:
        ours = specs[endpoint_id]
        entry = fal.refresh(endpoint_id)
        if entry is None:
            found = [] if ours.status == "retired" else ["fal lists no such model (retired?)"]
        else:
            found = differences(ours, spec_of(entry), entry["price"])
        differ += bool(found)
        click.echo(f"{endpoint_id}: {'differs' if found else 'as fal says'}")
        for line in found:
            click.echo(f"  {line}")
    click.echo(f"{len(ids) - differ} of {len(ids)} as fal says; {differ} differ")
    if differ:
        raise SystemExit(EXIT_FAILED)
