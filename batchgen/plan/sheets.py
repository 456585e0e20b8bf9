"""Reading what spreadsheets export: CSV (``,`` ``;`` or tab), TSV, plain text, XLSX.

A ``.csv`` may be separated by commas, semicolons (European Excel) or tabs: the separator is
the one that makes the header name a ``prompt`` column (else the one that splits the header
into the most cells). Text is UTF-8, UTF-16 with a BOM, or cp1252 where UTF-8 fails (with a
note; see ``encodings``). A ``.txt`` is one prompt per line, unless it is a tab-separated sheet
with a ``prompt`` column (Excel's "Unicode Text"). In an XLSX, ``sheet`` names the sheet to
read; without it, the first sheet with a ``prompt`` column is read (else the first sheet).
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchgen.errors import InputError
from batchgen.plan.encodings import CP1252, describe, sniff_encoding
from batchgen.plan.files import open_regular, text_lines
from batchgen.plan.table import Record, Table, has_prompt, rows_table
from batchgen.plan.text import fold, is_blank

DELIMITERS = (",", ";", "\t")
_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}


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


def read_xlsx(name: str, data: bytes, sheet: str | None = None) -> Table:
    """The chosen sheet of a workbook as a Table (rows are sheet rows)."""
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
        first = ws.min_row or 1
        table = rows_table(
            where,
            ((first + i, list(row)) for i, row in enumerate(ws.iter_rows(values_only=True))),
            "sheet row",
        )
    finally:
        book.close()
    table.sheet = chosen
    table.other_sheets = [n for n in names if n != chosen]
    return table


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
