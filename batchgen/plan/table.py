"""The rows of an input as batchgen holds them: a ``Table`` of ``Record``s with their lines.

``rows_table`` turns the rows of a sheet (CSV, TSV, XLSX: the first non-blank row is the header)
into a Table. A sheet with no header whose one column is clearly prompts (its first row is a
sentence, not a column name) is read as prompts, with a note saying so.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from batchgen.errors import InputError, Problem
from batchgen.plan.text import counted, fold, is_blank

# A first row with this many words is a sentence (a prompt), not a column name.
_PROSE_WORDS = 3


@dataclass(slots=True)
class Record:
    """One data record: where it is, and its cells by column name (blank = ``None``)."""

    line: int
    values: dict[str, Any]
    # Per-column lines where they differ from ``line`` (YAML mappings span several lines).
    lines: dict[str, int] = field(default_factory=dict)
    # The file this record stands for (an image of a folder input): problems name it, no line.
    source: str | None = None

    def line_of(self, column: str) -> int:
        return self.lines.get(column, self.line)

    def place(self, path: str, column: str | None = None) -> tuple[str, int | None]:
        """Where a problem of this record (in ``column``) is reported: its own file, or
        ``path`` (the input's) at the record's line."""
        if self.source is not None:
            return self.source, None
        return path, self.line if column is None else self.line_of(column)


@dataclass(slots=True)
class Table:
    """The records of one input, with its columns in the order the file first shows them."""

    path: str
    columns: list[str]
    records: list[Record]
    # Where the column names are: the header row, or the first record of YAML and JSONL.
    header_line: int = 1
    # What the user should know of how the file was read (an encoding guessed, no header).
    notes: list[str] = field(default_factory=list)
    # The header row reads like a prompt: the file probably has no header.
    header_is_prose: bool = False
    # XLSX: the sheet read and the workbook's other sheets.
    sheet: str | None = None
    other_sheets: list[str] = field(default_factory=list)
    # A folder (or glob) of images: one record per image, see ``imagefolder``.
    images: bool = False
    # What identifies the input when it is no single file (a folder's names, sizes, prompts).
    digest: str | None = None
    # Cells whose value is unknown (an XLSX formula with no saved value): problems that the
    # plan reports with those of the rows, in place of what the blank would have caused.
    problems: list[Problem] = field(default_factory=list)
    # XLSX: records read from hidden rows, and hidden rows left out (--skip-hidden-rows).
    hidden_rows: int = 0
    hidden_left_out: int = 0
    # A comma is a decimal mark in its text cells (a ``;``-separated file, an XLSX).
    decimal_comma: bool = False


def clean(value: Any) -> Any:
    """A cell as batchgen uses it: text trimmed, blank text ``None``, dates as ISO text."""
    if isinstance(value, str):
        return None if is_blank(value) else value.strip()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()  # spreadsheet date cells: keep them JSON-friendly
    if isinstance(value, datetime.timedelta):  # a duration cell ([h]:mm:ss): its seconds
        seconds = value.total_seconds()
        return int(seconds) if seconds.is_integer() else seconds
    return value


def is_prose(value: Any) -> bool:
    """True for a cell that reads like a sentence rather than a column name."""
    return isinstance(value, str) and len(value.split()) >= _PROSE_WORDS


def has_prompt(cells: list[Any]) -> bool:
    """True when one of ``cells`` names the prompt column."""
    return any(isinstance(c, str) and fold(c) == "prompt" for c in cells)


def header(name: str, cells: list[Any], line: int) -> list[str]:
    """Column names from a header row; unnamed columns get ``column_N``."""
    columns: list[str] = []
    seen: dict[str, int] = {}
    problems = []
    for index, cell in enumerate(cells, start=1):
        label = "" if cell is None else str(cell).strip()
        label = label or f"column_{index}"
        folded = label.lower()
        if folded in seen:
            problems.append(
                Problem(
                    name,
                    line,
                    label,
                    f"appears twice in the header (columns {seen[folded]} and {index})",
                )
            )
        seen[folded] = index
        columns.append(label)
    if problems:
        raise InputError(problems)
    return columns


def _no_header(cells: list[Any]) -> bool:
    """A first row that is one sentence and names no prompt column: a prompt, no header."""
    filled = [c for c in cells if not is_blank(c)]
    return (
        len(filled) == 1
        and not is_blank(cells[0])
        and is_prose(cells[0])
        and "prompt" not in str(cells[0]).lower()
    )


def rows_table(name: str, rows: Iterator[tuple[int, list[Any]]], unit: str) -> Table:
    """Turn (line, cells) rows, the first non-blank being the header, into a Table."""
    columns: list[str] | None = None
    header_line = 1
    headerless = False
    records: list[Record] = []
    problems: list[Problem] = []
    for line, cells in rows:
        if all(is_blank(c) for c in cells):
            continue
        if columns is None:
            header_line = line
            if _no_header(cells):
                columns, headerless = ["prompt"], True
            else:
                # Spreadsheets pad rows with empty trailing cells; a header has no use for them.
                while cells and is_blank(cells[-1]):
                    cells = cells[:-1]
                columns = header(name, cells, line)
                continue
        if len(cells) > len(columns):
            extra = cells[len(columns) :]
            if not all(is_blank(c) for c in extra):
                if headerless:
                    raise InputError.one(
                        name,
                        f"this {unit} has several cells, and the file no header row (its first "
                        "row reads like a prompt); add a first row naming the columns: prompt, ...",
                        line,
                    )
                problems.append(
                    Problem(
                        name,
                        line,
                        None,
                        f"this {unit} has {counted(len(cells), 'cell')} but the header "
                        f"has {counted(len(columns), 'column')}",
                    )
                )
                continue
        values = {col: clean(cells[i]) if i < len(cells) else None for i, col in enumerate(columns)}
        records.append(Record(line, values))
    if problems:
        raise InputError(problems)
    if columns is None:
        raise InputError.one(name, "the file is empty: no header row and no data", 1)
    table = Table(name, columns, records, header_line)
    if headerless:
        table.notes.append(
            f"{name}: no header row; each {unit} is read as one prompt (add a first row "
            "'prompt' to name the column)"
        )
    elif not has_prompt(columns) and any(is_prose(c) for c in columns):
        table.header_is_prose = True
    return table
