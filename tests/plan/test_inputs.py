"""Reading rows from every supported format, as spreadsheets and editors write them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchgen.plan.inputs import read_table


def test_csv_as_a_spreadsheet_exports_it(tmp_path: Path) -> None:
    """BOM, CRLF, quoted commas, quotes and newlines, blank cells and unicode all read right."""
    path = tmp_path / "sheet.csv"
    text = (
        ' Prompt ,Duration,notes\r\n"a cat, surfing",5,"say ""hi"""\r\n'
        '"two\r\nlines",,\r\n,,\r\n東京 🌃,10,  \r\n'
    )
    path.write_bytes(text.encode("utf-8-sig"))
    table = read_table(path)
    assert table.columns == ["Prompt", "Duration", "notes"]
    assert [r.values for r in table.records] == [
        {"Prompt": "a cat, surfing", "Duration": "5", "notes": 'say "hi"'},
        {"Prompt": "two\r\nlines", "Duration": None, "notes": None},
        {"Prompt": "東京 🌃", "Duration": "10", "notes": None},
    ]
    assert [r.line for r in table.records] == [2, 3, 6]


def test_short_rows_are_padded_and_trailing_empty_header_cells_dropped(tmp_path: Path) -> None:
    """Rows shorter than the header mean blank cells; empty trailing header cells are ignored."""
    path = tmp_path / "short.csv"
    path.write_text("prompt,duration,,\na\nb,10,,\n")
    table = read_table(path)
    assert table.columns == ["prompt", "duration"]
    assert [r.values for r in table.records] == [
        {"prompt": "a", "duration": None},
        {"prompt": "b", "duration": "10"},
    ]


def test_tsv(tmp_path: Path) -> None:
    """TSV is read by its extension."""
    path = tmp_path / "p.tsv"
    path.write_text("prompt\tduration\na, with comma\t10\n")
    assert read_table(path).records[0].values == {"prompt": "a, with comma", "duration": "10"}


def test_yaml_rows_keep_each_key_line(tmp_path: Path) -> None:
    """YAML rows may be mappings or plain strings; each key keeps its own line."""
    path = tmp_path / "p.yaml"
    path.write_text("- a plain prompt\n- prompt: b\n  aspect_ratio: 9:16\n  duration: 10\n")
    table = read_table(path)
    assert [r.values for r in table.records] == [
        {"prompt": "a plain prompt"},
        {"prompt": "b", "aspect_ratio": "9:16", "duration": 10},
    ]
    assert table.records[1].line_of("duration") == 4


def test_jsonl_skips_blank_lines(tmp_path: Path) -> None:
    """JSONL records keep their physical line numbers; blank lines are skipped."""
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "a"}) + "\n\n" + json.dumps({"prompt": "b"}) + "\n")
    assert [r.line for r in read_table(path).records] == [1, 3]


def test_xlsx_rows_are_sheet_rows(tmp_path: Path) -> None:
    """XLSX numbers and dates arrive as values; records carry their sheet row."""
    openpyxl = pytest.importorskip("openpyxl")
    import datetime

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["prompt", "duration", "when"])
    sheet.append(["a", 5, datetime.date(2026, 1, 2)])
    sheet.append([None, None, None])
    sheet.append(["b", 10, None])
    path = tmp_path / "p.xlsx"
    book.save(path)
    table = read_table(path)
    assert [(r.line, r.values) for r in table.records] == [
        (2, {"prompt": "a", "duration": 5, "when": "2026-01-02T00:00:00"}),
        (4, {"prompt": "b", "duration": 10, "when": None}),
    ]


def test_jsonl_rows_spelling_a_column_differently_share_it(tmp_path: Path) -> None:
    """`Prompt` in one JSONL row and `prompt` in the next are one column, first spelling kept."""
    path = tmp_path / "p.jsonl"
    path.write_text('{"Prompt": "a"}\n{"prompt": "b", "duration": "5"}\n')
    table = read_table(path)
    assert table.columns == ["Prompt", "duration"]
    assert [r.values for r in table.records] == [
        {"Prompt": "a"},
        {"Prompt": "b", "duration": "5"},
    ]
