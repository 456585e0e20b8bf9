"""Reading what spreadsheets export: CSV (``,`` ``;`` or tab), TSV, plain text, XLSX.

A ``.csv`` may be separated by commas, semicolons (European Excel) or tabs: the separator is
the one that makes the header name a ``prompt`` column (else the one that splits the header
into the most cells). Text is UTF-8, UTF-16 with a BOM, or cp1252 where UTF-8 fails (with a
note; see ``encodings``). A ``.txt`` is one prompt per line, unless it is a tab-separated sheet
with a ``prompt`` column (Excel's "Unicode Text"). In an XLSX, ``sheet`` names the sheet to
read; without it, the first sheet with a ``prompt`` column is read (else the first sheet). Its
formulas are read by their saved values: one with none (a sheet written by a script) is a
problem at its cell, never a blank; hidden rows are read, and named (see ``xlsxcells``).
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchgen.errors import InputError, Problem
from batchgen.plan.encodings import CP1252, describe, sniff_encoding
from batchgen.plan.files import open_regular, text_lines
from batchgen.plan.table import Record, Table, has_prompt, rows_table
from batchgen.plan.text import fold, is_blank
from batchgen.plan.xlsxcells import SheetScan, scan_sheet

DELIMITERS = (",", ";", "\t")
_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}
# Hidden rows a note names by number; past these it counts the rest.
_NAMED_ROWS = 10


def read_sheet_text(path: Path, name: str, kind: str, max_line: int) -> Table:
    """A ``csv``, ``tsv`` or ``txt`` file as a Table."""
    with open_regular(path, name) as handle:
        encoding = sniff_encoding(handle)
        lines = text_lines(name, handle, max_line, encoding)
        head, lines = _first_line(lines)
        if kind == "txt":
            cells = _split(head, "\t")
            if "\t" in head and has_prompt(cells):
                table = _read_delimited(name, lines, "\t")
            else:
                table = _read_prompt_lines(name, lines)
        else:
            delimiter = "\t" if kind == "tsv" else _delimiter(head)
            table = _read_delimited(name, lines, delimiter)
            table.decimal_comma = delimiter == ";"  # European Excel: 0,7 is seven tenths
    if encoding == CP1252:
        table.notes.insert(
            0,
            f"{name}: not UTF-8; read as {describe(encoding)}, as Excel saves 'CSV' on Windows "
            "(check accented characters, or save it as 'CSV UTF-8')",
        )
    return table


def _first_line(
    lines: Iterator[tuple[int, str]],
) -> tuple[str, Iterator[tuple[int, str]]]:
    """The first non-blank line, and every line again (that one included)."""
    seen: list[tuple[int, str]] = []
    for number, text in lines:
        seen.append((number, text))
        if text.strip():
            return text, itertools.chain(seen, lines)
    return "", iter(seen)


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter), [])
    except csv.Error:
        return [line]


def _delimiter(head: str) -> str:
    """The separator of a CSV, judged on its header line."""
    splits = {d: _split(head, d) for d in DELIMITERS}
    naming = [d for d in DELIMITERS if has_prompt(splits[d])]
    candidates = naming or list(DELIMITERS)
    # max keeps the first of equals: a comma unless another separator splits more.
    return max(candidates, key=lambda d: len(splits[d]))


def _read_delimited(name: str, lines: Iterator[tuple[int, str]], delimiter: str) -> Table:
    # csv's own cell limit (131,072 characters) stays: it bounds a quoted cell across lines.
    reader = csv.reader((text for _, text in lines), delimiter=delimiter, strict=True)

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
                elif "field larger than field limit" in message:
                    message = (
                        f"a cell in this record is longer than {csv.field_size_limit():,} "
                        "characters (a quote never closed?)"
                    )
                else:
                    message = f"malformed CSV ({_NAMES[delimiter]} between cells): {message}"
                raise InputError.one(name, message, start) from None
            yield start, cells
            start = reader.line_num + 1

    return rows_table(name, rows(), "row")


def _read_prompt_lines(name: str, lines: Iterator[tuple[int, str]]) -> Table:
    """One prompt per non-blank line."""
    records = [
        Record(number, {"prompt": text.strip()}) for number, text in lines if not is_blank(text)
    ]
    if not records:
        raise InputError.one(name, "the file is empty: no prompts", 1)
    return Table(name, ["prompt"], records, records[0].line)


def read_xlsx(name: str, data: bytes, sheet: str | None = None, skip_hidden: bool = False) -> Table:
    """The chosen sheet of a workbook as a Table (rows are sheet rows).

    A formula with no saved value or an error value is a problem of the table (see
    ``xlsxcells``); hidden rows are named in a note, or with ``skip_hidden`` left out (as if
    deleted, before the header is looked for) and named in a note.
    """
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many unrelated types for a damaged file
        raise InputError.one(
            name, f"not a readable .xlsx workbook ({exc.__class__.__name__})", 1
        ) from None
    try:
        names = [ws.title for ws in book.worksheets]  # chartsheets hold no rows
        chosen = _choose(name, book, names, sheet)
        ws = book[chosen]
        where = f"{name}[{chosen}]" if len(names) > 1 else name
        # openpyxl keeps no hidden rows in read-only mode, nor a formula beside its value.
        scan = scan_sheet(ws._get_source, skip_hidden)
        skipped: list[int] = []

        def rows() -> Iterator[tuple[int, list[Any]]]:
            # iter_rows starts at A1 whatever the sheet's first cell: the count is the row.
            for number, cells in enumerate(ws.iter_rows(values_only=True), start=1):
                if skip_hidden and number in scan.hidden:
                    if not all(is_blank(c) for c in cells):
                        skipped.append(number)
                    continue
                yield number, list(cells)

        try:
            table = rows_table(where, rows(), "sheet row")
        except InputError as exc:
            raise InputError([*_cell_problems(where, scan, None), *exc.problems]) from None
    finally:
        book.close()
    table.sheet = chosen
    table.decimal_comma = True  # a number there is a number cell; text "0,7" is European
    table.other_sheets = [n for n in names if n != chosen]
    table.problems = _cell_problems(where, scan, table)
    table.hidden_left_out = len(skipped)
    if skipped:
        table.notes.append(f"{where}: {_rows(skipped)} left out (--skip-hidden-rows)")
    hidden = [r.line for r in table.records if r.line in scan.hidden]
    table.hidden_rows = len(hidden)
    if hidden:
        them = "it" if len(hidden) == 1 else "them"
        table.notes.append(
            f"{where}: {_rows(hidden)} included; --skip-hidden-rows leaves {them} out"
        )
    return table


def _rows(numbers: list[int]) -> str:
    """``3 hidden rows (5, 9, 12) are``: the first few named."""
    shown = ", ".join(str(n) for n in numbers[:_NAMED_ROWS])
    if len(numbers) > _NAMED_ROWS:
        shown += f" and {len(numbers) - _NAMED_ROWS:,} more"
    if len(numbers) == 1:
        return f"1 hidden row ({shown}) is"
    return f"{len(numbers):,} hidden rows ({shown}) are"


def _cell_problems(where: str, scan: SheetScan, table: Table | None) -> list[Problem]:
    """A problem for each odd cell, at its row and, for a data row, its column."""
    problems = []
    for cell in scan.cells:
        column = None
        header = table is not None and cell.row == table.header_line
        if table is not None and cell.row > table.header_line and cell.column <= len(table.columns):
            column = table.columns[cell.column - 1]
        problems.append(Problem(where, cell.row, column, cell.message(header)))
    if scan.more:
        problems.append(
            Problem(where, None, None, f"and {scan.more:,} more cells like these (not listed)")
        )
    return problems


def _choose(name: str, book: Any, names: list[str], sheet: str | None) -> str:
    """The sheet to read: the one asked for, or the first with a ``prompt`` column."""
    listed = ", ".join(repr(n) for n in names)
    if sheet is not None:
        for match in (lambda n: n == sheet, lambda n: fold(n) == fold(sheet)):
            found = [n for n in names if match(n)]
            if len(found) == 1:
                return found[0]
        raise InputError.one(name, f"no sheet named {sheet!r} (--sheet); its sheets: {listed}")
    for candidate in names:
        for row in book[candidate].iter_rows(values_only=True):
            if not all(is_blank(c) for c in row):
                if has_prompt(list(row)):
                    return candidate
                break
    return names[0]
