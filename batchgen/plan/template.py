"""A ready-to-fill prompt sheet for an endpoint, from its spec: CSV or XLSX.

The CSV is the header row (UTF-8 with a BOM and CRLF, as Excel opens it). The XLSX has the
header on a sheet ``prompts`` with, below it, a dropdown for each enum column and a range check
for each number column (Excel's data validation), text formatting for text columns (so that
``16:9`` stays text and is not read as a time of day), and a second sheet ``columns`` that
explains each column: type, required, default, allowed values, description.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from batchgen.errors import UsageError
from batchgen.plan.endpoint import EndpointSpec
from batchgen.plan.params import Param

FORMATS = (".csv", ".xlsx")
# Rows of the sheet that carry the dropdowns and checks (the header is row 1).
VALIDATED_ROWS = 1000
_EXPLAINED = ("column", "type", "required", "default", "allowed values", "description")


def columns(spec: EndpointSpec) -> list[Param]:
    """The columns of a template: ``prompt`` first, then the spec's order."""
    params = list(spec.params.values())
    return sorted(params, key=lambda p: p.name != "prompt")


def allowed(param: Param) -> str:
    """The values a column takes, in words."""
    if param.enum is not None:
        return ", ".join(str(v) for v in param.enum)
    bounds = []
    if param.minimum is not None:
        bounds.append(f"from {param.minimum}")
    if param.maximum is not None:
        bounds.append(f"to {param.maximum}")
    if param.max_length is not None:
        bounds.append(f"at most {param.max_length:,} characters")
    if param.max_utf8_bytes is not None:
        bounds.append(f"at most {param.max_utf8_bytes:,} bytes in UTF-8")
    return " ".join(bounds) if bounds else "any"


def write_template(spec: EndpointSpec, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the template for ``spec`` to ``path`` (``.csv`` or ``.xlsx``); returns the path.

    Raises UsageError for another extension, for a passthrough spec (no columns known), or
    for an existing file unless ``overwrite``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"--to {path}: a template is a .csv or an .xlsx file")
    if spec.passthrough:
        raise UsageError(
            f"no spec for endpoint {spec.id!r}: its columns are unknown (see batchgen endpoints, "
            "or pass --endpoint-spec FILE)"
        )
    if path.exists() and not overwrite:
        raise UsageError(f"{path} already exists; pass --force to write over it")
    data = _xlsx(spec) if suffix == ".xlsx" else _csv(spec)
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _csv(spec: EndpointSpec) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([p.name for p in columns(spec)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _xlsx(spec: EndpointSpec) -> bytes:
    import openpyxl
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "prompts"
    params = columns(spec)
    sheet.append([p.name for p in params])
    last = VALIDATED_ROWS + 1
    for index, param in enumerate(params, start=1):
        letter = get_column_letter(index)
        sheet.cell(row=1, column=index).font = Font(bold=True)
        sheet.column_dimensions[letter].width = 60 if param.name == "prompt" else 18
        if param.type == "string":
            for row in range(2, last + 1):
                sheet.cell(row=row, column=index).number_format = "@"
        check = _validation(param, DataValidation)
        if check is not None:
            check.add(f"{letter}2:{letter}{last}")
            sheet.add_data_validation(check)
    sheet.freeze_panes = "A2"
    notes = book.create_sheet("columns")
    notes.append(list(_EXPLAINED))
    for cell in notes[1]:
        cell.font = Font(bold=True)
    for param in params:
        default = "" if param.default is None else str(param.default)
        required = "yes" if param.required else "no"
        notes.append([param.name, param.type, required, default, allowed(param), param.description])
    for letter, width in zip("ABCDEF", (18, 10, 10, 30, 30, 60), strict=True):
        notes.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _validation(param: Param, kind: Any) -> Any:
    """Excel's data validation for one column: a dropdown, a range, or a length; or None."""
    title, blank = param.name, True
    if param.enum is not None:
        listed = ",".join(str(v) for v in param.enum)
        check = kind(type="list", formula1=f'"{listed}"', allow_blank=blank)
        check.error = f"{title}: one of {listed}"
    elif param.type in ("number", "integer") and (
        param.minimum is not None or param.maximum is not None
    ):
        low = param.minimum if param.minimum is not None else -1e15
        high = param.maximum if param.maximum is not None else 1e15
        whole = "whole" if param.type == "integer" else "decimal"
        check = kind(
            type=whole, operator="between", formula1=str(low), formula2=str(high), allow_blank=blank
        )
        check.error = f"{title}: a number {allowed(param)}"
    elif param.max_length is not None:
        check = kind(
            type="textLength",
            operator="lessThanOrEqual",
            formula1=str(param.max_length),
            allow_blank=blank,
        )
        check.error = f"{title}: {allowed(param)}"
    else:
        return None
    check.errorTitle = f"{title}"
    check.showErrorMessage = True
    check.prompt = param.description or allowed(param)
    check.showInputMessage = True
    return check
