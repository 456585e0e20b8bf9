"""Sheets as people save them: decimal commas and Excel's times read as meant, else a
message saying what the sheet probably did."""

from __future__ import annotations

import datetime
from pathlib import Path

import openpyxl
import pytest

from batchgen.errors import InputError
from batchgen.plan.build import build_plan


def only_problem(source: Path, out: Path) -> str:
    """The one problem planning ``source`` finds, as printed."""
    with pytest.raises(InputError) as caught:
        build_plan(source, output=out)
    (problem,) = caught.value.problems
    return str(problem)


def test_decimal_commas_in_a_semicolon_file_are_numbers(tmp_path: Path) -> None:
    """``0,7`` in a ``;``-separated file is 0.7; in a comma file it is refused with a hint."""
    source = tmp_path / "eu.csv"
    source.write_text("prompt;cfg_scale\na;0,7\nb;0,25\n")
    plan = build_plan(source, output=tmp_path / "out")
    assert [job.payload["cfg_scale"] for job in plan.jobs] == [0.7, 0.25]
    comma = tmp_path / "us.csv"
    comma.write_text('prompt,cfg_scale\na,"0,7"\n')
    problem = only_problem(comma, tmp_path / "o2")
    assert "'0,7' is not a number (a decimal comma? write it with a point)" in problem


def test_excel_times_and_text_decimals_in_an_xlsx(tmp_path: Path) -> None:
    """An XLSX whose aspect ratio Excel made the time 16:09 reads as 16:9 with a note; a
    text cell 0,5 is 0.5; a time that is no allowed ratio says Excel stored it as a time."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["prompt", "aspect_ratio", "cfg_scale"])
    sheet.append(["a", datetime.time(16, 9), "0,5"])
    sheet.append(["b", datetime.time(9, 16), None])
    source = tmp_path / "book.xlsx"
    book.save(source)
    plan = build_plan(source, output=tmp_path / "out")
    assert [job.payload["aspect_ratio"] for job in plan.jobs] == ["16:9", "9:16"]
    assert plan.jobs[0].payload["cfg_scale"] == 0.5
    notes = [w for w in plan.warnings if "Excel stored" in w]
    assert notes == [
        f"{source}: column 'aspect_ratio': 1 cell Excel stored as the time 16:09:00 read as "
        "16:9 (format the column as text to keep what you type)",
        f"{source}: column 'aspect_ratio': 1 cell Excel stored as the time 09:16:00 read as "
        "9:16 (format the column as text to keep what you type)",
    ]
    sheet.append(["c", datetime.time(4, 3), None])
    book.save(source)
    with pytest.raises(InputError) as caught:
        build_plan(source, output=tmp_path / "o2")
    (problem,) = caught.value.problems
    assert str(problem).endswith(
        "'04:03:00' is not one of the allowed values: '16:9', '9:16', '1:1'; Excel stored it "
        "as a time: format the column as text and type the value again"
    )


def test_a_european_thousands_mark_is_asked_about_and_commas_are_said(tmp_path: Path) -> None:
    """In a ;-file 12.000 for a number may be twelve thousand: refused, saying both
    readings; the decimal commas read are counted in a note."""
    source = tmp_path / "eu.csv"
    source.write_text("prompt;cfg_scale\na;12.000\nb;0,5\nc;0,25\n")
    problem = only_problem(source, tmp_path / "out")
    assert "'12.000' may mean 12000 (a thousands separator" in problem
    source.write_text("prompt;cfg_scale\nb;0,5\nc;0,25\n")
    plan = build_plan(source, output=tmp_path / "o2")
    assert f"{source}: column 'cfg_scale': 2 cells with a decimal comma read as numbers" in (
        "\n".join(plan.warnings)
    )


def test_an_excel_duration_cell_is_its_seconds(tmp_path: Path) -> None:
    """A cell Excel holds as a duration (0:00:10) is 10 seconds: duration "10" for Kling."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["prompt", "duration"])
    sheet.append(["a", datetime.timedelta(seconds=10)])
    source = tmp_path / "book.xlsx"
    book.save(source)
    (job,) = build_plan(source, output=tmp_path / "out").jobs
    assert job.payload["duration"] == "10"
