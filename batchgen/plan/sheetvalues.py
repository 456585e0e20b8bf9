"""Cells as spreadsheets save them, read as the user meant: decimal commas and Excel times.

A European sheet writes seven tenths as ``0,7``: in a ``;``-separated file or an XLSX text cell
(``Table.decimal_comma``), a number parameter's cell of digits, one comma and digits is that
number. Excel turns ``16:9`` typed in a cell not formatted as text into the time 16:09:00: a
string parameter whose allowed values hold ``16:9`` reads ``16:09:00`` as ``16:9``, and the plan
says how many cells it read so. Anything else is left to the parameter, whose message then
says what the sheet probably did (``params``).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from batchgen.plan.endpoint import EndpointSpec
from batchgen.plan.params import DECIMAL_COMMA

_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+")  # 12.000: a European thousands mark?
_TIME = re.compile(r"(\d{1,2}):(\d{2}):00")


class SheetValues:
    """Reads the cells of one table (see the module docstring); ``notes`` says what it read."""

    __slots__ = ("_commas", "_decimal_comma", "_times")

    def __init__(self, decimal_comma: bool) -> None:
        self._decimal_comma = decimal_comma
        self._times: Counter[tuple[str, str, str]] = Counter()  # (column, cell, read as)
        self._commas: Counter[str] = Counter()  # column -> cells read with a decimal comma

    def read(
        self, ep: EndpointSpec, cells: dict[str, Any], columns: dict[str, str]
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """``cells`` (parameter -> value) with each cell read as meant, and ``(parameter,
        problem)`` for each cell whose meaning is not certain (``12.000``: twelve, or twelve
        thousand?); ``columns`` names the column of each parameter, for the notes."""
        out = dict(cells)
        doubts: list[tuple[str, str]] = []
        for name, value in cells.items():
            param = ep.param_at(name) if not ep.passthrough else None
            if param is None or not isinstance(value, str):
                continue
            text = value.strip()
            numeric = param.type in ("number", "integer")
            if numeric and self._decimal_comma and _THOUSANDS.fullmatch(text):
                doubts.append(
                    (
                        name,
                        f"{text!r} may mean {text.replace('.', '')} (a thousands separator, as "
                        f"in this sheet's decimal commas) or {text}: write it without the dot",
                    )
                )
            elif param.type == "number" and self._decimal_comma and DECIMAL_COMMA.fullmatch(text):
                out[name] = float(text.replace(",", "."))
                self._commas[columns.get(name, name)] += 1
            elif param.type == "string" and param.enum and (time := _TIME.fullmatch(text)):
                ratio = f"{int(time[1])}:{int(time[2])}"
                if ratio in param.enum and text not in param.enum:
                    out[name] = ratio
                    self._times[(columns.get(name, name), text, ratio)] += 1
        return out, doubts

    def notes(self, path: str) -> list[str]:
        """One line per column and time read as an aspect ratio."""
        commas = [
            f"{path}: column {column!r}: {count} cell{'s' if count > 1 else ''} with a decimal "
            "comma read as numbers (0,7 is 0.7)"
            for column, count in self._commas.items()
        ]
        return [
            *commas,
            *(
                f"{path}: column {column!r}: {count} cell{'s' if count > 1 else ''} Excel "
                f"stored as the time {text} read as {ratio} (format the column as text to keep "
                "what you type)"
                for (column, text, ratio), count in self._times.items()
            ),
        ]
