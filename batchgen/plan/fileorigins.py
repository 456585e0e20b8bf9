"""The file parameters of a plan's jobs: each value taken where it was written, checked once.

A relative path means a different folder depending on where it was written: a table cell is
relative to the input file's folder (a job spec's ``rows:`` to the spec's), the spec's
``defaults`` and ``matrix`` to the spec's folder, ``--set`` (and an endpoint spec's default) to
the current folder. A problem is reported there too: a cell at its file, line and column, a
spec field at its line, ``--set`` by name; each once, however many jobs share the value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from batchgen.errors import InputError, Problem
from batchgen.places import put_at
from batchgen.plan.endpoint import EndpointSpec
from batchgen.plan.imagefolder import IMAGE_COLUMN
from batchgen.plan.inputfiles import FileReader, InputFile, resolve
from batchgen.plan.jobspec import JobSpec
from batchgen.plan.params import Param, dotted
from batchgen.plan.table import Table
from batchgen.plan.text import is_blank

# Makes the problem of a cell of the current record from (parameter, message).
AtCell = Callable[[str, str], Problem]


class PlanFiles:
    """Replaces each local file of a job's payload by its reference (``sha256:<hex>``)."""

    __slots__ = ("_reported", "cells_base", "reader", "sets", "spec")

    def __init__(self, spec: JobSpec, sets: dict[str, str], input_path: Path) -> None:
        self.spec, self.sets = spec, sets
        # A folder input's cells are absolute paths; a file's are relative to its folder.
        self.cells_base = input_path.parent
        self.reader = FileReader()
        self._reported: set[Problem] = set()

    def swap(
        self,
        ep: EndpointSpec,
        payload: dict[str, Any],
        cells: dict[str, Any],
        combo: dict[str, Any],
        at_cell: AtCell,
        problems: list[Problem],
    ) -> tuple[dict[str, Any], tuple[InputFile, ...]] | None:
        """The payload with each local file's reference, and the files; None when a file
        value is wrong (its problem appended to ``problems``, once per plan)."""
        files: list[InputFile] = []
        failed = False
        swapped = payload
        for name, at, param, value in file_values(ep, payload):
            base, where = self._origin(ep, name, cells, combo, at_cell, at)
            try:
                found = resolve(value, param, base, self.reader)
            except ValueError as exc:
                failed = True
                problem = where(str(exc))
                if problem not in self._reported:
                    self._reported.add(problem)
                    problems.append(problem)
                continue
            if found is not None:
                # A file inside a list or object is known by its place (``image_urls.2``).
                found = dataclasses.replace(found, param=at)
                swapped = put_at(swapped, at, found.ref)
                files.append(found)
        return None if failed else (swapped, tuple(files))

    def _origin(
        self,
        ep: EndpointSpec,
        param: str,
        cells: dict[str, Any],
        combo: dict[str, Any],
        at_cell: AtCell,
        at: str,
    ) -> tuple[Path, Callable[[str], Problem]]:
        """The folder ``param``'s value is relative to, and how to report a problem with it
        (``at``: the file's place within it, ``image_urls.2``)."""
        spec = self.spec
        spec_base = Path(spec.path).parent

        def field(group: str, written: str) -> Callable[[str], Problem]:
            key = f"{group}.{written}"
            line = spec.lines.get(key, 1)
            return lambda message: Problem(spec.path, line, key, message, "field")

        if param in combo:
            return spec_base, field("matrix", _written(ep, param, spec.matrix))
        if param in cells or any(c.startswith(param + ".") for c in cells):
            return self.cells_base, lambda message: at_cell(at, message)
        given = {k: v for k, v in self.sets.items() if not is_blank(v)}
        name = _written(ep, param, given)
        if name is not None:
            return Path(), lambda message: Problem("--set", None, name, message, "field")
        name = _written(ep, param, spec.per_endpoint.get(ep.id, {}))
        if name is not None:
            return spec_base, field(f"per_endpoint.{ep.id}", name)
        name = _written(ep, param, spec.defaults)
        if name is not None:
            return spec_base, field("defaults", name)
        return Path(), lambda message: Problem(
            ep.source, None, f"parameters.{param}.default", message, "field"
        )


def file_values(ep: EndpointSpec, payload: dict[str, Any]) -> Iterator[tuple[str, str, Param, str]]:
    """Every file value of a coerced ``payload``: its parameter, its place (the parameter's
    name, or ``image_urls.2``, ``elements.1.frontal_image_url`` inside a list or object), the
    parameter that describes it, and the value."""
    for name, param in ep.params.items():
        if param.holds_files and name in payload:
            for at, leaf, value in param.file_leaves(payload[name]):
                yield name, dotted(name, at), leaf, value


def _written(ep: EndpointSpec, param: str, names: dict[str, Any]) -> Any:
    """The name in ``names`` that sets ``param`` (the last one, as later ones win), or None."""
    found = [
        n
        for n in names
        if (name := ep.lookup(n) or n.strip().lower()) == param or name.startswith(param + ".")
    ]
    return found[-1] if found else None


def check_image_column(table: Table, column_param: dict[str, str], ep: EndpointSpec) -> None:
    """A folder of images needs an endpoint whose file parameter takes the image column."""
    if not table.images:
        return
    param = ep.params.get(column_param.get(IMAGE_COLUMN, ""))
    if param is None or not param.is_file:
        raise InputError.one(
            table.path,
            f"a folder of images needs an endpoint that takes an image ({IMAGE_COLUMN} or an "
            f"alias of it); {ep.id} has none: choose one with --endpoint, or describe yours "
            "with --endpoint-spec FILE",
        )
