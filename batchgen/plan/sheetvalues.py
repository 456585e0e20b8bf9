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

_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_TIME = re.compile(r"(\d{1,2}):(\d{2}):00")


class SheetValues:
    """Reads the cells of one table (see the module docstring); ``notes`` says what it read."""

    __slots__ = ("_decimal_comma", "_times")

    def __init__(self, decimal_comma: bool) -> None:
        self._decimal_comma = decimal_comma
        self._times: Counter[tuple[str, str, str]] = Counter()  # (column, cell, read as)

    def read(
        self, ep: EndpointSpec, cells: dict[str, Any], columns: dict[str, str]
    ) -> dict[str, Any]:
        """``cells`` (parameter -> value) with each cell read as meant; ``columns`` names the
        column of each parameter, for the notes."""
        out = dict(cells)
        for name, value in cells.items():
            param = ep.param_at(name) if not ep.passthrough else None
            if param is None or not isinstance(value, str):
                continue
            text = value.strip()
            if param.type == "number" and self._decimal_comma and _DECIMAL_COMMA.fullmatch(text):
                out[name] = float(text.replace(",", "."))
            elif param.type == "string" and param.enum and (time := _TIME.fullmatch(text)):
                ratio = f"{int(time[1])}:{int(time[2])}"
                if ratio in param.enum and text not in param.enum:
                    out[name] = ratio
                    self._times[(columns.get(name, name), text, ratio)] += 1
        return out

    def notes(self, path: str) -> list[str]:
        """One line per column and time read as an aspect ratio."""
        return [
            f"{path}: column {column!r}: {count} cell{'s' if count > 1 else ''} Excel stored as "
            f"the time {text} read as {ratio} (format the column as text to keep what you type)"
            for (column, text, ratio), count in self._times.items()
        ]
