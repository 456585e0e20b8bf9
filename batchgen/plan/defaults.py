"""Values a plan sets on every row: the spec's ``defaults``, ``--set``, and the ``matrix``.

Each is checked against the endpoint once, before any row, and reported where it was written
(the spec's line, or ``--set``). A blank value is no default, as a blank cell is; a blank value
for a required parameter (a prompt of spaces or zero-width characters) is a problem.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from batchgen.errors import Problem
from batchgen.plan.endpoint import EndpointSpec
from batchgen.plan.jobspec import JobSpec
from batchgen.plan.text import is_blank

# Jobs one plan may hold: far beyond a night's batch, well before memory runs out.
MAX_JOBS = 1_000_000
_BLANK_REQUIRED = "is blank (only spaces or invisible characters); it needs text"


def _norm(name: str) -> str:
    return name.strip().lower()


def head(name: str) -> str:
    """The parameter a canonical name belongs to (``image_urls.2`` -> ``image_urls``)."""
    return name.split(".", 1)[0]


def overlay(under: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``under`` with ``over``'s values on top; a parameter ``over`` gives (whole, or by items
    such as ``image_urls.1``) replaces ``under``'s value of it whole."""
    heads = {head(k) for k in over}
    return {**{k: v for k, v in under.items() if head(k) not in heads}, **over}


def checked_defaults(
    spec: JobSpec, sets: dict[str, str], ep: EndpointSpec, problems: list[Problem]
) -> dict[str, Any]:
    """The defaults for every row (spec, then ``--set``), coerced; problems appended."""
    defaults: dict[str, Any] = {}
    for origin, values in (("defaults", spec.defaults), ("--set", sets)):
        given: dict[str, Any] = {}
        for name, value in values.items():
            where: tuple[str, int | None, str] = (
                (spec.path, spec.lines.get(f"defaults.{name}", 1), f"defaults.{name}")
                if origin == "defaults"
                else ("--set", None, name)
            )
            known = ep.lookup(name)
            key = known or _norm(name)
            param = ep.param_at(known) if known else None  # image_urls.2: an item's
            if not ep.passthrough and param is None:
                problems.append(
                    Problem(
                        *where,
                        f"is not a parameter of {ep.id}; parameters: " + ", ".join(ep.params),
                        "field",
                    )
                )
                continue
            if is_blank(value):
                # Blank means "no default", as a blank cell does; a required one says so.
                if param is not None and param.required:
                    problems.append(Problem(*where, _BLANK_REQUIRED, "field"))
                continue
            try:
                given[key] = param.coerce(value) if param else value
            except ValueError as exc:
                problems.append(Problem(*where, str(exc), "field"))
        # A later source's list (given whole or by items) replaces an earlier one's whole.
        defaults = overlay(defaults, given)
    return defaults


def checked_matrix(
    spec: JobSpec, ep: EndpointSpec, problems: list[Problem]
) -> list[dict[str, Any]]:
    """Every combination of the matrix's values (``[{}]`` for none); problems appended."""
    axes: list[list[tuple[str, Any]]] = []
    for name, values in spec.matrix.items():
        known = ep.lookup(name)
        key = known or _norm(name)
        param = ep.param_at(known) if known else None
        line = spec.lines.get(f"matrix.{name}", 1)
        if not ep.passthrough and param is None:
            problems.append(
                Problem(
                    spec.path, line, f"matrix.{name}", f"is not a parameter of {ep.id}", "field"
                )
            )
            continue
        axis = []
        for value in values:
            if is_blank(value) and (param is None or param.required):
                problems.append(
                    Problem(spec.path, line, f"matrix.{name}", _BLANK_REQUIRED, "field")
                )
                continue
            try:
                axis.append((key, param.coerce(value) if param else value))
            except ValueError as exc:
                problems.append(Problem(spec.path, line, f"matrix.{name}", str(exc), "field"))
        axes.append(axis)
    size = math.prod(len(axis) for axis in axes)
    if size > MAX_JOBS:
        problems.append(
            Problem(
                spec.path,
                spec.lines.get("matrix", 1),
                "matrix",
                f"makes {size:,} combinations, more than the {MAX_JOBS:,} jobs one plan may hold",
                "field",
            )
        )
        return [{}]
    return [dict(combo) for combo in itertools.product(*axes)]
