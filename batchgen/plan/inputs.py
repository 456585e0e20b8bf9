"""Reading prompt rows from CSV, TSV, TXT, XLSX, YAML and JSONL, each record with its line.

``read_table(path)`` returns a ``Table``: the column names as the file spells them and one
``Record`` per data record, with the line where the user finds it (the file line for CSV, YAML
and JSONL; the sheet row for XLSX). Blank cells (nothing visible in them) are ``None``.
Completely blank records are skipped and do not count as records. Any malformed file raises
``InputError`` with every problem found, never a traceback; text files are read line by line
(``files.text_lines``), so a NUL byte, a bad byte or an endless line is named at its line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from batchgen.errors import InputError, Problem
from batchgen.plan.files import MAX_LINE_CHARS, not_a_file, open_regular, text_lines
from batchgen.plan.imagefolder import is_image_set, read_images
from batchgen.plan.sheets import read_sheet_text, read_xlsx
from batchgen.plan.table import Record, Table, clean
from batchgen.plan.text import is_blank, unicode_problem
from batchgen.plan.yamlload import Loader, yaml_problem

__all__ = ["Loader", "Record", "Table", "read_table", "yaml_problem", "yaml_sequence_rows"]

SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "txt",
    ".xlsx": "xlsx",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def read_table(
    path: str | Path,
    *,
    max_line: int = MAX_LINE_CHARS,
    sheet: str | None = None,
    skip_hidden_rows: bool = False,
) -> Table:
    """Read an input file, choosing the format by its extension; a folder or glob of images
    (see ``imagefolder``) gives one record per image.

    ``max_line`` bounds the characters of one line of a text file (see ``files``); ``sheet``
    names the sheet of an XLSX to read and ``skip_hidden_rows`` leaves its hidden rows out (see
    ``sheets``); an XLSX's unknown cells are the table's ``problems``, not raised.
    """
    path = Path(path)
    if is_image_set(path):
        return read_images(path)
    name = str(path)
    kind = SUFFIXES.get(path.suffix.lower())
    reason = not_a_file(path)
    if kind is None and reason is None:
        known = ", ".join(sorted(SUFFIXES))
        raise InputError.one(name, f"unknown file type {path.suffix!r}; batchgen reads {known}")
    if kind in ("csv", "tsv", "txt"):
        return read_sheet_text(path, name, kind, max_line)
    with open_regular(path, name) as handle:
        if kind == "xlsx":
            return read_xlsx(name, handle.read(), sheet, skip_hidden_rows)
        lines = text_lines(name, handle, max_line)
        if kind == "yaml":
            return read_yaml_rows(name, "".join(text for _, text in lines))
        return _read_jsonl(name, lines)


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


class _Columns:
    """Column names of records that name their own keys (YAML, JSONL).

    A column keeps the spelling of its first appearance: ``Prompt`` in one row and ``prompt``
    in the next are one column. A record that names one column twice (``prompt`` and
    ``Prompt``, or the same key again, which JSON and YAML readers would silently drop) is a
    problem at its line, as is text that cannot be written as UTF-8.
    """

    __slots__ = ("name", "spelling")

    def __init__(self, name: str) -> None:
        self.name = name
        self.spelling: dict[str, str] = {}  # folded name -> first spelling

    def record(
        self, line: int, cells: list[tuple[Any, Any, int]], problems: list[Problem]
    ) -> Record | None:
        """A Record of ``(key, value, line)`` cells, or None when blank or in error."""
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        seen: dict[str, tuple[str, int]] = {}
        before = len(problems)
        for raw_key, value, key_line in cells:
            key = str(raw_key).strip()
            folded = key.lower()
            if folded in seen:
                first, first_line = seen[folded]
                where = f" on line {first_line}" if first_line != key_line else ""
                message = (
                    f"appears twice in this record{where}; keep one"
                    if first == key
                    else f"is the same column as {first!r}{where} (case is ignored); keep one"
                )
                problems.append(Problem(self.name, key_line, key, message))
                continue
            seen[folded] = (key, key_line)
            for text in (key, value):
                wrong = unicode_problem(text) if isinstance(text, str) else None
                if wrong:
                    problems.append(Problem(self.name, key_line, key, wrong))
            column = self.spelling.setdefault(folded, key)
            values[column] = clean(value)
            lines[column] = key_line
        if len(problems) > before or all(is_blank(v) for v in values.values()):
            return None
        return Record(line, values, lines)

    def table(self, records: list[Record]) -> Table:
        columns = list(self.spelling.values())
        return Table(self.name, columns, records, records[0].line if records else 1)


def yaml_sequence_rows(name: str, loader: Loader, node: yaml.SequenceNode) -> Table:
    """Records from a YAML sequence node, each item's keys with their own lines."""
    columns = _Columns(name)
    records: list[Record] = []
    problems: list[Problem] = []
    for item in node.value:
        line = item.start_mark.line + 1
        if isinstance(item, yaml.ScalarNode):
            cells: list[tuple[Any, Any, int]] = [
                ("prompt", loader.construct_object(item, deep=True), line)
            ]
        elif isinstance(item, yaml.MappingNode):
            loader.flatten_mapping(item)  # merge keys (<<: *base) into the row
            cells = []
            for key_node, value_node in item.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    problems.append(Problem(name, key_line, None, "a column name must be text"))
                    continue
                key = loader.construct_object(key_node, deep=True)
                # A list or mapping is a list or object parameter's value (the spec checks it).
                cells.append((key, loader.construct_object(value_node, deep=True), key_line))
        else:
            problems.append(Problem(name, line, None, "a row must be a mapping (prompt: ...)"))
            continue
        record = columns.record(line, cells, problems)
        if record is not None:
            records.append(record)
    if problems:
        raise InputError(problems)
    return columns.table(records)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key-value pairs in order, duplicates kept (to be reported)."""


def _plain(value: Any) -> Any:
    """A JSON value with its nested objects as dicts (a field written twice: the last wins,
    as in any JSON reader; only a record's own columns are checked for that)."""
    if isinstance(value, _Pairs):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _read_jsonl(name: str, lines: Iterator[tuple[int, str]]) -> Table:
    columns = _Columns(name)
    records: list[Record] = []
    problems: list[Problem] = []
    empty = True
    for line_no, raw in lines:
        if not raw.strip():
            continue
        empty = False
        try:
            value = json.loads(raw, object_pairs_hook=_Pairs)
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(name, line_no, None, f"not valid JSON: {exc.msg} (at column {exc.colno})")
            )
            continue
        except ValueError:  # Python refuses to read an integer of more than 4,300 digits
            problems.append(Problem(name, line_no, None, "not valid JSON: a number too long"))
            continue
        except RecursionError:
            problems.append(Problem(name, line_no, None, "not valid JSON: nested too deep"))
            continue
        if not isinstance(value, _Pairs):
            problems.append(Problem(name, line_no, None, "each line must be a JSON object"))
            continue
        # A nested array or object is a list or object parameter's value (the spec checks it).
        cells: list[tuple[Any, Any, int]] = [(key, _plain(item), line_no) for key, item in value]
        record = columns.record(line_no, cells, problems)
        if record is not None:
            records.append(record)
    if empty:
        raise InputError.one(name, "the file is empty", 1)
    if problems:
        raise InputError(problems)
    return columns.table(records)
