"""Reading prompt rows from CSV, TSV, XLSX, YAML and JSONL, each record with its line.

``read_table(path)`` returns a ``Table``: the column names as the file spells them and one
``Record`` per data record, with the line where the user finds it (the file line for CSV, YAML
and JSONL; the sheet row for XLSX). Blank cells are ``None``. Completely blank records are
skipped and do not count as records. Any malformed file raises ``InputError`` with every
problem found, never a traceback.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from batchgen.errors import InputError, Problem

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


class Loader(yaml.SafeLoader):
    """YAML's safe loader without YAML 1.1's base-60 numbers.

    Plain YAML reads an unquoted ``16:9`` as the integer 969 and ``2:1`` as 121; an aspect
    ratio must stay the text it looks like.
    """


Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)

SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "xlsx",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass(slots=True)
class Record:
    """One data record: where it is, and its cells by column name (blank = ``None``)."""

    line: int
    values: dict[str, Any]
    # Per-column lines where they differ from ``line`` (YAML mappings span several lines).
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, column: str) -> int:
        return self.lines.get(column, self.line)


@dataclass(slots=True)
class Table:
    """The records of one input, with its columns in the order the file first shows them."""

    path: str
    columns: list[str]
    records: list[Record]
    # Where the column names are: the header row, or the first record of YAML and JSONL.
    header_line: int = 1


def read_table(path: str | Path) -> Table:
    """Read an input file, choosing the format by its extension."""
    path = Path(path)
    name = str(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(SUFFIXES))
        raise InputError.one(name, f"unknown file type {path.suffix!r}; batchgen reads {known}")
    if not path.is_file():
        raise InputError.one(name, "no such file" if not path.exists() else "not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError.one(name, f"cannot read: {exc.strerror}") from None
    if kind == "xlsx":
        return _read_xlsx(name, data)
    text = _decode(name, data)
    if kind in ("csv", "tsv"):
        return _read_delimited(name, text, "," if kind == "csv" else "\t")
    if kind == "yaml":
        return read_yaml_rows(name, text)
    return _read_jsonl(name, text)


def _decode(name: str, data: bytes) -> str:
    if b"\x00" in data:
        raise InputError.one(name, "this is a binary file, not text", 1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError.one(
            name, f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8", line
        ) from None
    if not text.strip():
        raise InputError.one(name, "the file is empty", 1)
    return text


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()  # spreadsheet date cells: keep them JSON-friendly
    return value


def _header(name: str, cells: list[Any], line: int) -> list[str]:
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


def _records_from_rows(name: str, rows: Iterator[tuple[int, list[Any]]], unit: str) -> Table:
    """Turn (line, cells) rows, the first non-blank being the header, into a Table."""
    columns: list[str] | None = None
    header_line = 1
    records: list[Record] = []
    problems: list[Problem] = []
    for line, cells in rows:
        if all(_blank(c) for c in cells):
            continue
        if columns is None:
            # Spreadsheets pad rows with empty trailing cells; a header has no use for them.
            while cells and _blank(cells[-1]):
                cells = cells[:-1]
            columns = _header(name, cells, line)
            header_line = line
            continue
        if len(cells) > len(columns):
            extra = cells[len(columns) :]
            if not all(_blank(c) for c in extra):
                problems.append(
                    Problem(
                        name,
                        line,
                        None,
                        f"this {unit} has {len(cells)} cells but the header "
                        f"has {len(columns)} columns",
                    )
                )
                continue
        values = {
            col: _clean(cells[i]) if i < len(cells) else None for i, col in enumerate(columns)
        }
        records.append(Record(line, values))
    if problems:
        raise InputError(problems)
    if columns is None:
        raise InputError.one(name, "the file has no header row and no data", 1)
    return Table(name, columns, records, header_line)


def _read_delimited(name: str, text: str, delimiter: str) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)

    def rows() -> Iterator[tuple[int, list[Any]]]:
        start = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                message = str(exc)
                if "unexpected end of data" in message:
                    message = "a quoted cell that starts in this record is never closed"
                else:
                    message = f"malformed CSV: {message}"
                raise InputError.one(name, message, start) from None
            yield start, cells
            start = reader.line_num + 1

    return _records_from_rows(name, rows(), "row")


def _read_xlsx(name: str, data: bytes) -> Table:
    try:
        import openpyxl
    except ImportError:
        raise InputError.one(
            name, "reading .xlsx needs openpyxl: pip install 'batchgen[xlsx]'"
        ) from None
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many unrelated types for a damaged file
        raise InputError.one(
            name, f"not a readable .xlsx workbook ({exc.__class__.__name__})", 1
        ) from None
    try:
        sheet = book.worksheets[0]
        first = sheet.min_row or 1
        table = _records_from_rows(
            name,
            ((first + i, list(row)) for i, row in enumerate(sheet.iter_rows(values_only=True))),
            "sheet row",
        )
    finally:
        book.close()
    return table


def read_yaml_rows(name: str, text: str) -> Table:
    """A YAML list whose items are mappings (or plain strings, each a prompt)."""
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError.one(name, "the file is empty", 1)
        if not isinstance(node, yaml.SequenceNode):
            raise InputError.one(
                name,
                "a YAML prompt file is a list of rows (- prompt: ...)",
                node.start_mark.line + 1,
            )
        return yaml_sequence_rows(name, loader, node)
    except yaml.YAMLError as exc:
        raise yaml_problem(name, exc) from None
    finally:
        loader.dispose()


def yaml_problem(name: str, exc: yaml.YAMLError) -> InputError:
    """An InputError for a YAML syntax error, at the line and column YAML names."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return InputError.one(name, f"not valid YAML: {what}")
    return InputError.one(
        name, f"not valid YAML: {what} (at column {mark.column + 1})", mark.line + 1
    )


def yaml_sequence_rows(name: str, loader: Loader, node: yaml.SequenceNode) -> Table:
    """Records from a YAML sequence node, each item's keys with their own lines."""
    columns: dict[str, None] = {}
    records: list[Record] = []
    problems: list[Problem] = []
    for item in node.value:
        line = item.start_mark.line + 1
        if isinstance(item, yaml.ScalarNode):
            value = loader.construct_object(item, deep=True)
            if _blank(value):
                continue
            columns.setdefault("prompt")
            records.append(Record(line, {"prompt": _clean(value)}))
            continue
        if not isinstance(item, yaml.MappingNode):
            problems.append(Problem(name, line, None, "a row must be a mapping (prompt: ...)"))
            continue
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in item.value:
            key = str(loader.construct_object(key_node, deep=True)).strip()
            value = loader.construct_object(value_node, deep=True)
            if isinstance(value, list | dict):
                problems.append(
                    Problem(
                        name,
                        key_node.start_mark.line + 1,
                        key,
                        "must be a single value, not a list or mapping",
                    )
                )
                continue
            columns.setdefault(key)
            values[key] = _clean(value)
            lines[key] = key_node.start_mark.line + 1
        if all(_blank(v) for v in values.values()):
            continue
        records.append(Record(line, values, lines))
    if problems:
        raise InputError(problems)
    return Table(name, list(columns), records, records[0].line if records else 1)


def _read_jsonl(name: str, text: str) -> Table:
    columns: dict[str, None] = {}
    records: list[Record] = []
    problems: list[Problem] = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(name, line_no, None, f"not valid JSON: {exc.msg} (at column {exc.colno})")
            )
            continue
        if not isinstance(value, dict):
            problems.append(Problem(name, line_no, None, "each line must be a JSON object"))
            continue
        bad = [k for k, v in value.items() if isinstance(v, list | dict)]
        for key in bad:
            problems.append(
                Problem(name, line_no, key, "must be a single value, not a list or object")
            )
        if bad:
            continue
        for key in value:
            columns.setdefault(key.strip())
        records.append(Record(line_no, {k.strip(): _clean(v) for k, v in value.items()}))
    if problems:
        raise InputError(problems)
    return Table(name, list(columns), records, records[0].line if records else 1)
