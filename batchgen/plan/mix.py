"""Several endpoints in one plan: the same rows on several models, or a model per row.

A plan's jobs run on the endpoint of ``--endpoint`` (or the spec's ``endpoint``) unless

- the input has an ``endpoint`` column: each row runs on the endpoint its cell names (a blank
  cell: the plan's endpoint), or
- the spec's matrix has an ``endpoint`` axis (``matrix: {endpoint: [A, B]}``): every row runs
  on every endpoint listed.

Each job is checked against its own endpoint's spec. A value (a column, a default, ``--set``,
a matrix axis) is sent only to the endpoints that have that parameter; a name no endpoint of the
plan has is a problem. ``per_endpoint: {ID: {name: value}}`` gives defaults that apply only to
that endpoint's jobs and must be its parameters. An endpoint id in a column or the matrix must
be known (built in, or described with ``--endpoint-spec``): a misspelt id would otherwise run
passthrough and spend money on the wrong thing.

Each ``--endpoint-spec`` file (the flag given several times, or a list under a job spec's
``endpoint_spec``) describes its own endpoint. One file's endpoint is the plan's unless
``--endpoint`` names another; with several, ``--endpoint`` picks it, or every row names its own.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchgen.errors import InputError, Problem
from batchgen.plan.defaults import checked_defaults, checked_matrix
from batchgen.plan.endpoint import EndpointSpec, builtin_specs, load_spec_file
from batchgen.plan.jobspec import JobSpec
from batchgen.plan.params import Param
from batchgen.plan.table import Table
from batchgen.plan.text import fold, is_blank

AXIS = "endpoint"


@dataclass(slots=True)
class Mix:
    """The endpoints of a plan and what each of them is given."""

    default: EndpointSpec
    specs: dict[str, EndpointSpec] = field(default_factory=dict)  # by id, in first-use order
    column: str | None = None  # the input column naming each row's endpoint
    axis: list[str] | None = None  # the matrix's endpoint ids: every row runs on each
    union: EndpointSpec | None = None  # every parameter of every endpoint, for columns
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)  # by endpoint id
    combos: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by endpoint id

    @property
    def several(self) -> bool:
        return len(self.specs) > 1

    def endpoints_of(self, cells: dict[str, Any]) -> list[EndpointSpec]:
        """The endpoints one row runs on (``cells``: the row's values by column)."""
        if self.axis is not None:
            return [self.specs[i] for i in self.axis]
        value = cells.get(self.column) if self.column is not None else None
        if is_blank(value):
            return [self.default]
        return [self.specs[str(value).strip().strip("/")]]


def endpoint_column(table: Table) -> str | None:
    """The input's column that names each row's endpoint, if any."""
    return next((c for c in table.columns if fold(c) == AXIS), None)


def matrix_axis(spec: JobSpec) -> str | None:
    """The name of the spec's matrix axis that lists endpoints, if any."""
    return next((name for name in spec.matrix if fold(name) == AXIS), None)


def load_described(paths: Sequence[str | Path]) -> list[EndpointSpec]:
    """The endpoints the user's spec files describe, in order (a file given twice is read
    once); InputError with every file's problems, and for an id two files describe."""
    problems: list[Problem] = []
    found: dict[str, EndpointSpec] = {}
    once: dict[str, str | Path] = {}
    for given in paths:  # each file once, as first spelt
        once.setdefault(os.path.abspath(given), given)
    for path in once.values():
        try:
            ep = load_spec_file(path)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        first = found.setdefault(ep.id, ep)
        if first is not ep:
            problems.append(
                Problem(
                    ep.source,
                    None,
                    None,
                    f"describes {ep.id!r}, as {first.source} does: give each endpoint one spec",
                )
            )
    if problems:
        raise InputError(problems)
    return list(found.values())


def unnamed_problem(described: list[EndpointSpec], spec: JobSpec, *, flag: bool) -> Problem:
    """What to say when several spec files leave the plan without an endpoint of its own, at
    the ``--endpoint-spec`` flag (``flag``) or the job spec's ``endpoint_spec`` field."""
    ids = ", ".join(ep.id for ep in described)
    message = (
        f"{len(described)} endpoint specs ({ids}) and no endpoint named for the plan: name it "
        "with --endpoint ID (or endpoint: in a job spec), or each row's in an 'endpoint' "
        f"column or the matrix (matrix: {{endpoint: [{ids}]}})"
    )
    if flag:
        return Problem("--endpoint-spec", None, None, message)
    line = spec.lines.get("endpoint_spec", 1)
    return Problem(spec.path, line, "endpoint_spec", message, "field")


def mix_of(
    spec: JobSpec,
    table: Table,
    default: EndpointSpec,
    problems: list[Problem],
    described: Sequence[EndpointSpec] = (),
    unnamed: Problem | None = None,
) -> Mix:
    """Which endpoints the plan's rows run on (``described``: the endpoints of the user's spec
    files, known besides the built-ins); unknown ids and conflicts appended. ``unnamed``: the
    plan has no endpoint of its own (``default`` only stands in), the problem of a row that
    names none."""
    mix = Mix(default=default, column=endpoint_column(table))
    known = builtin_specs()
    for ep in (*described, default):
        if not ep.passthrough:
            known[ep.id] = ep
    axis_name = matrix_axis(spec)
    wanted: list[tuple[str, str, int | None, str, str]] = []  # id, path, line, column, label
    if axis_name is not None:
        line = spec.lines.get(f"matrix.{axis_name}", 1)
        if mix.column is not None:
            problems.append(
                Problem(
                    spec.path,
                    line,
                    f"matrix.{axis_name}",
                    f"the input has an {mix.column!r} column too: name each row's endpoint "
                    "there, or every row's in the matrix, not both",
                    "field",
                )
            )
        mix.axis = []
        for value in spec.matrix[axis_name]:
            ident = str(value).strip().strip("/")
            if ident not in mix.axis:
                mix.axis.append(ident)
            wanted.append((ident, spec.path, line, f"matrix.{axis_name}", "field"))
    elif mix.column is not None:
        for record in table.records:
            value = record.values.get(mix.column)
            if not is_blank(value):
                ident = str(value).strip().strip("/")
                wanted.append((ident, table.path, record.line_of(mix.column), mix.column, "column"))
    if not wanted or (mix.axis is None and _has_blank(table, mix.column)):
        if unnamed is None:
            mix.specs[default.id] = default
        else:
            problems.append(_at_blank(table, mix.column, unnamed))
    for ident, path, at, column, label in wanted:
        if ident in mix.specs:
            continue
        if ident in known:
            mix.specs[ident] = known[ident]
            continue
        close = difflib.get_close_matches(ident, list(known), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problems.append(
            Problem(
                path,
                at,
                column,
                f"{ident!r} is not a known endpoint; {hint}see `batchgen endpoints`, or "
                "describe it with --endpoint-spec FILE",
                label,
            )
        )
    mix.union = union_of(list(mix.specs.values()) or [default])
    return mix


def _has_blank(table: Table, column: str | None) -> bool:
    return column is None or any(is_blank(r.values.get(column)) for r in table.records)


def _at_blank(table: Table, column: str | None, unnamed: Problem) -> Problem:
    """``unnamed`` at the first blank endpoint cell, if the input has an endpoint column."""
    blank = [r for r in table.records if column is not None and is_blank(r.values.get(column))]
    if column is None or not blank:
        return unnamed
    more = f" (and {len(blank) - 1} more)" if len(blank) > 1 else ""
    return Problem(
        *blank[0].place(table.path, column), column, f"is blank{more}; {unnamed.message}"
    )


def union_of(specs: list[EndpointSpec]) -> EndpointSpec:
    """One spec holding every parameter of ``specs`` (the first spec's where names repeat),
    used to sort an input's columns; passthrough only when every spec is."""
    if len(specs) == 1:
        return specs[0]
    params: dict[str, Param] = {}
    for ep in specs:
        for name, param in ep.params.items():
            params.setdefault(name, param)
    return EndpointSpec(
        id=" + ".join(ep.id for ep in specs),
        params=params,
        passthrough=all(ep.passthrough for ep in specs),
    )


def check_values(mix: Mix, spec: JobSpec, sets: dict[str, str], problems: list[Problem]) -> None:
    """Give every endpoint of ``mix`` its defaults and matrix combinations, checked against it."""
    axis_name = matrix_axis(spec)
    matrix = {k: v for k, v in spec.matrix.items() if k != axis_name}
    if not mix.several:
        ep = next(iter(mix.specs.values()), mix.default)
        own = dataclasses.replace(spec, matrix=matrix)
        mix.defaults[ep.id] = checked_defaults(own, sets, ep, problems)
        _per_endpoint(mix, spec, ep, mix.defaults[ep.id], problems)
        mix.combos[ep.id] = checked_matrix(own, ep, problems)
        _unused_per_endpoint(mix, spec, problems)
        return
    specs = list(mix.specs.values())
    _unknown_names(spec, sets, matrix, specs, problems)
    found: dict[Problem, list[str]] = {}
    for ep in specs:
        own = dataclasses.replace(
            spec, defaults=_known(ep, spec.defaults), matrix=_known(ep, matrix)
        )
        mine: list[Problem] = []
        mix.defaults[ep.id] = checked_defaults(own, _known(ep, sets), ep, mine)
        mix.combos[ep.id] = checked_matrix(own, ep, mine)
        for problem in mine:
            found.setdefault(problem, []).append(ep.id)
        _per_endpoint(mix, spec, ep, mix.defaults[ep.id], problems)
    for problem, ids in found.items():  # one problem, the endpoints it holds for
        which = ", ".join(ids) if len(ids) < len(specs) else "every endpoint"
        problems.append(dataclasses.replace(problem, message=f"{problem.message} (for {which})"))
    _unused_per_endpoint(mix, spec, problems)


def _known(ep: EndpointSpec, values: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that name a parameter of ``ep``."""
    return {k: v for k, v in values.items() if ep.passthrough or ep.lookup(k) is not None}


def _unknown_names(
    spec: JobSpec,
    sets: dict[str, str],
    matrix: dict[str, list[Any]],
    specs: list[EndpointSpec],
    problems: list[Problem],
) -> None:
    """A default, ``--set`` or matrix name that no endpoint of the plan has."""
    if any(ep.passthrough for ep in specs):
        return
    names = ", ".join(sorted({p for ep in specs for p in ep.params}))
    for prefix, values in (("defaults", spec.defaults), ("--set", sets), ("matrix", matrix)):
        for name in values:
            if all(ep.lookup(name) is None for ep in specs):
                message = f"is not a parameter of any endpoint of this plan; parameters: {names}"
                if prefix == "--set":
                    problems.append(Problem("--set", None, name, message, "field"))
                    continue
                line = spec.lines.get(f"{prefix}.{name}", 1)
                problems.append(Problem(spec.path, line, f"{prefix}.{name}", message, "field"))


def _per_endpoint(
    mix: Mix, spec: JobSpec, ep: EndpointSpec, defaults: dict[str, Any], problems: list[Problem]
) -> None:
    """Lay the spec's ``per_endpoint`` defaults for ``ep`` over its plain defaults."""
    values = spec.per_endpoint.get(ep.id)
    if not values:
        return
    prefix = f"per_endpoint.{ep.id}"
    own = dataclasses.replace(
        spec,
        defaults=values,
        lines={
            **spec.lines,
            **{
                f"defaults.{k.removeprefix(prefix + '.')}": v
                for k, v in spec.lines.items()
                if k.startswith(prefix + ".")
            },
        },
    )
    mine: list[Problem] = []
    defaults.update(checked_defaults(own, {}, ep, mine))
    problems.extend(
        dataclasses.replace(p, column=f"{prefix}.{p.column.removeprefix('defaults.')}")
        if p.column is not None
        else p
        for p in mine
    )


def _unused_per_endpoint(mix: Mix, spec: JobSpec, problems: list[Problem]) -> None:
    for ident in spec.per_endpoint:
        if ident not in mix.specs:
            used = ", ".join(mix.specs) or "none"
            problems.append(
                Problem(
                    spec.path,
                    spec.lines.get(f"per_endpoint.{ident}", 1),
                    f"per_endpoint.{ident}",
                    f"no job of this plan runs on {ident!r} (its endpoints: {used})",
                    "field",
                )
            )
