"""What an XLSX sheet's values do not say: formulas never calculated, error values, hidden rows.

A workbook stores, for each formula cell, the formula and the value the program that saved it
calculated (its saved, or cached, value); reading values (openpyxl's ``data_only``) gives the
latter. A workbook written by a script (openpyxl, pandas through openpyxl) holds formulas with no
saved value, which read as blank, and a blank cell means "the endpoint's default": the default
would be sent and paid for without a word. ``scan_sheet`` reads the sheet's XML beside openpyxl
for what the values hide: each formula cell with no saved value, each error value (``#DIV/0!``,
which would be sent as text), and the rows marked hidden (by hand, a filter, a folded outline).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO
from xml.etree.ElementTree import Element, iterparse

from openpyxl.formula.translate import Translator, TranslatorError
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string, get_column_letter

# Odd cells kept of one sheet: enough to show the pattern, bounded for a sheet of millions.
MAX_CELLS = 1000
# What a sheet's XML holds when it has a formula (``<f>``, ``<x:f ...>``), an error value or a
# hidden row (or column: a second look costs little).
_MARKERS = (b"<f>", b"<f ", b":f>", b":f ", b'hidden="1"', b'hidden="true"', b't="e"')
_OVERLAP = 16
_BLOCK = 1 << 20
# A saved value may be empty only for text: an empty string is what the formula gave.
_TEXT_TYPES = frozenset({"str", "inlineStr"})


@dataclass(frozen=True, slots=True)
class OddCell:
    """A cell whose value as read is not what the sheet shows."""

    row: int
    column: int  # 1 for column A
    formula: str | None  # "=0.2+0.1"; "=" when its text is not known; None: no formula
    error: str | None = None  # the error value shown ("#DIV/0!"); None: no saved value at all

    @property
    def ref(self) -> str:
        return f"{get_column_letter(self.column)}{self.row}"

    def message(self, header: bool = False) -> str:
        """What is wrong with the cell and how to mend it, its reference first (``header``:
        it is a cell of the header row)."""
        ref = f"{self.ref} (the header)" if header else self.ref
        formula = self.formula if self.formula and self.formula != "=" else None
        if self.error is not None:
            if self.formula is None:
                return f"cell {ref} holds the error value {self.error}: type the value"
            shown = f"formula {formula}" if formula else "its formula"
            return f"cell {ref}: {shown} gives the error {self.error}: mend it or type the value"
        shown = f"formula {formula}" if formula else "a formula"
        return (
            f"cell {ref}: {shown} has no saved value: open and save the file in Excel or "
            "LibreOffice, or type the value"
        )


@dataclass(slots=True)
class SheetScan:
    """The hidden rows of a sheet and its odd cells (``more`` past ``MAX_CELLS``)."""

    hidden: set[int] = field(default_factory=set)
    cells: list[OddCell] = field(default_factory=list)
    more: int = 0


def scan_sheet(open_xml: Callable[[], IO[bytes]], skip_hidden: bool = False) -> SheetScan:
    """Read a worksheet's XML (``open_xml`` opens it); with ``skip_hidden`` the cells of
    hidden rows are not looked at (those rows are left out)."""
    scan = SheetScan()
    with open_xml() as source:
        if not _may_hold(source):
            return scan
    shared: dict[str, tuple[str, str]] = {}  # a shared formula's id -> (its cell, its text)
    number = 0
    with open_xml() as source:
        for _, element in iterparse(source):
            if _local(element.tag) != "row":
                continue
            number = _row_number(element.get("r"), number)
            hidden = element.get("hidden") in ("1", "true")
            if hidden:
                scan.hidden.add(number)
            if not (hidden and skip_hidden):
                for cell in _odd_cells(element, number, shared):
                    if len(scan.cells) < MAX_CELLS:
                        scan.cells.append(cell)
                    else:
                        scan.more += 1
            element.clear()  # an empty row stays in the tree, as in openpyxl's own reading
    return scan


def _may_hold(source: IO[bytes]) -> bool:
    """False when the XML has no formula, no error value and no hidden row: a plain sheet
    of values (most) is not parsed a second time."""
    tail = b""
    while block := source.read(_BLOCK):
        text = tail + block
        if any(marker in text for marker in _MARKERS):
            return True
        tail = text[-_OVERLAP:]
    return False


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _row_number(text: str | None, previous: int) -> int:
    try:
        return int(float(text)) if text else previous + 1
    except ValueError:
        return previous + 1


def _odd_cells(row: Element, number: int, shared: dict[str, tuple[str, str]]) -> Iterable[OddCell]:
    column = 0
    for cell in row:
        if _local(cell.tag) != "c":
            continue
        ref = cell.get("r")
        try:
            column = column_index_from_string(coordinate_from_string(ref)[0]) if ref else column + 1
        except ValueError:
            column += 1
        kind = cell.get("t", "n")
        formula = value = None
        for child in cell:
            if _local(child.tag) == "f":
                formula = _formula(child, f"{get_column_letter(column)}{number}", shared)
            elif _local(child.tag) == "v":
                value = child.text or ""
        if kind == "e":
            yield OddCell(number, column, formula, value or "#VALUE!")
        elif formula is not None and not value and kind not in _TEXT_TYPES:
            yield OddCell(number, column, formula)


def _formula(element: Element, ref: str, shared: dict[str, tuple[str, str]]) -> str:
    """The formula of a cell, ``=`` first; a shared formula's other cells hold only its id,
    and their formula is the first cell's, moved (as Excel shows it)."""
    text = element.text or ""
    if element.get("t") != "shared":
        return f"={text}"
    index = element.get("si", "")
    if text:
        shared[index] = (ref, text)
        return f"={text}"
    if index not in shared:
        return "="
    origin, first = shared[index]
    try:
        return str(Translator(f"={first}", origin=origin).translate_formula(ref))
    except (TranslatorError, ValueError):
        return "="
