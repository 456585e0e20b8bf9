"""XLSX sheets as scripts and spreadsheets write them: formulas with and without saved values,
error values, hidden rows (named, or left out with --skip-hidden-rows)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from batchgen.cli import cli
from batchgen.errors import InputError
from batchgen.plan.build import build_plan
from batchgen.plan.xlsxcells import MAX_CELLS

NOTHING_SENT = "nothing was sent."
SAVE = "has no saved value: open and save the file in Excel or LibreOffice, or type the value"


def plan_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["plan", *args])
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.output


def write(path: Path, rows: list[list[object]], hidden: tuple[int, ...] = ()) -> Path:
    """A workbook as openpyxl writes it: formulas (``=...``) with no saved value."""
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for number in hidden:
        sheet.row_dimensions[number].hidden = True
    book.save(path)
    return path


def patch(path: Path, *swaps: tuple[str, str]) -> Path:
    """Edit the first sheet's XML, as Excel or LibreOffice would have saved it."""
    member = "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(path) as source:
        items = [(info, source.read(info.filename)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w") as out:
        for info, data in items:
            if info.filename == member:
                text = data.decode()
                for old, new in swaps:
                    assert old in text, (old, text)
                    text = text.replace(old, new)
                data = text.encode()
            out.writestr(info, data)
    return path


def test_a_formula_with_no_saved_value_stops_the_plan_at_its_cell(tmp_path: Path) -> None:
    """openpyxl's formulas (no saved value) are problems naming cell and formula, with the
    other rows' problems, instead of a default sent and priced; exit 2."""
    path = write(
        tmp_path / "in.xlsx",
        [
            ["prompt", "duration", "cfg_scale"],
            ["a fox", "=5*2", 0.5],
            ['="a cat "&"at dawn"', 10, 0.5],
            ["a dog", 7, "=0.2+0.1"],
        ],
    )
    code, output = plan_cli(str(path))
    assert code == 2
    assert output.splitlines() == [
        f"{path}:2: column 'duration': cell B2: formula =5*2 {SAVE}",
        f'{path}:3: column \'prompt\': cell A3: formula ="a cat "&"at dawn" {SAVE}',
        f"{path}:4: column 'cfg_scale': cell C4: formula =0.2+0.1 {SAVE}",
        f"{path}:4: column 'duration': '7' is not one of the allowed values: '5', '10'",
        f"4 problems found; {NOTHING_SENT}",
    ]


def test_a_formula_with_a_saved_value_is_read_by_it(tmp_path: Path) -> None:
    """A formula saved with its value (as Excel and LibreOffice save) sends that value."""
    path = write(tmp_path / "in.xlsx", [["prompt", "duration"], ["a fox", "=5*2"]])
    patch(path, ("<f>5*2</f><v /></c>", "<f>5*2</f><v>10</v></c>"))
    plan = build_plan(path)
    assert [(j.payload["duration"], j.cost_usd) for j in plan.jobs] == [("10", 0.7)]


def test_a_formula_that_gives_empty_text_is_a_blank_cell(tmp_path: Path) -> None:
    """=IF(...,"",...) saved as empty text is a blank cell: the default, no problem."""
    path = write(tmp_path / "in.xlsx", [["prompt", "duration"], ["a fox", '=IF(1,"",5)']])
    patch(path, ('<c r="B2"><f>', '<c r="B2" t="str"><f>'))
    assert [j.payload["duration"] for j in build_plan(path).jobs] == ["5"]


def test_an_error_value_is_a_problem_not_text_to_send(tmp_path: Path) -> None:
    """A saved #DIV/0! (or a typed #N/A, which openpyxl too writes as an error) is never sent
    as a prompt; the formula is named."""
    path = write(tmp_path / "in.xlsx", [["prompt", "duration"], ["=1/0", 5], ["#N/A", 5]])
    patch(
        path,
        ('<c r="A2"><f>1/0</f><v /></c>', '<c r="A2" t="e"><f>1/0</f><v>#DIV/0!</v></c>'),
    )
    with pytest.raises(InputError) as caught:
        build_plan(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:2: column 'prompt': cell A2: formula =1/0 gives the error #DIV/0!: mend it or "
        "type the value",
        f"{path}:3: column 'prompt': cell A3 holds the error value #N/A: type the value",
    ]


def test_a_shared_formula_is_named_as_its_cell_has_it(tmp_path: Path) -> None:
    """The other cells of a shared formula show it moved to them (=B2*2, =B3*2)."""
    path = write(tmp_path / "in.xlsx", [["prompt", "n", "duration"], ["a", 5, "=B2*2"], ["b", 5]])
    patch(
        path,
        ("<f>B2*2</f>", '<f t="shared" ref="C2:C3" si="0">B2*2</f>'),
        (
            '<c r="B3" t="n"><v>5</v></c>',
            '<c r="B3" t="n"><v>5</v></c><c r="C3"><f t="shared" si="0"/></c>',
        ),
    )
    with pytest.raises(InputError) as caught:
        build_plan(path, extra_columns="ok")
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:2: column 'duration': cell C2: formula =B2*2 {SAVE}",
        f"{path}:3: column 'duration': cell C3: formula =B3*2 {SAVE}",
    ]


def test_a_formula_in_the_header_or_a_blank_looking_row_is_named(tmp_path: Path) -> None:
    """A header cell, and a row whose only cell is a formula (it would read as blank)."""
    rows: list[list[object]] = [["prompt", '="no"&"tes"', "duration"], ["a fox", "x", 5], ["=A2"]]
    path = write(tmp_path / "in.xlsx", rows)
    with pytest.raises(InputError) as caught:
        build_plan(path, extra_columns="ok")
    assert [str(p) for p in caught.value.problems] == [
        f'{path}:1: cell B1 (the header): formula ="no"&"tes" {SAVE}',
        f"{path}:3: column 'prompt': cell A3: formula =A2 {SAVE}",
    ]


def test_a_sheet_of_formulas_lists_the_first_thousand(tmp_path: Path) -> None:
    """Thousands of formulas: the first 1,000 are listed and the rest counted."""
    rows: list[list[object]] = [["prompt"], *([f'="shot {i}"'] for i in range(MAX_CELLS + 5))]
    path = write(tmp_path / "in.xlsx", rows)
    with pytest.raises(InputError) as caught:
        build_plan(path)
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == MAX_CELLS + 1
    assert problems[-1] == f"{path}: and 5 more cells like these (not listed)"


def test_rows_are_their_sheet_rows_when_the_table_starts_lower(tmp_path: Path) -> None:
    """A table that starts at B3 reports its problems at their sheet rows."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["B3"], sheet["C3"], sheet["B4"], sheet["C4"] = "prompt", "duration", "a fox", 7
    book.save(tmp_path / "in.xlsx")
    with pytest.raises(InputError) as caught:
        build_plan(tmp_path / "in.xlsx")
    assert str(caught.value).startswith(f"{tmp_path / 'in.xlsx'}:4: column 'duration': '7'")


def test_hidden_rows_are_named_and_skip_hidden_rows_leaves_them_out(tmp_path: Path) -> None:
    """Hidden rows are read, counted in the summary and named; --skip-hidden-rows leaves them
    out (their formulas too), as if deleted, and says which."""
    rows: list[list[object]] = [["prompt", "duration"], *([f"shot {i}", 5] for i in range(2, 14))]
    rows[8] = ["shot 9", "=5*2"]  # a hidden row's formula stops only a plan that reads it
    path = write(tmp_path / "in.xlsx", rows, hidden=(5, 9, 12))
    code, output = plan_cli(str(path))
    assert code == 2
    assert f"{path}:9: column 'duration': cell B9: formula =5*2 {SAVE}" in output
    rows[8] = ["shot 9", 10]
    write(path, rows, hidden=(5, 9, 12))
    code, output = plan_cli(str(path))
    assert code == 0
    assert (
        f"warning: {path}: 3 hidden rows (5, 9, 12) are included; --skip-hidden-rows leaves "
        "them out\n"
    ) in output
    assert f"input:    {path}, sheet 'Sheet' (12 records, 3 in hidden rows)\n" in output
    rows[8] = ["shot 9", "=5*2"]
    write(path, rows, hidden=(5, 9, 12))
    code, output = plan_cli(str(path), "--skip-hidden-rows")
    assert code == 0, output
    assert (
        f"warning: {path}: 3 hidden rows (5, 9, 12) are left out (--skip-hidden-rows)\n" in output
    )
    assert f"input:    {path}, sheet 'Sheet' (9 records; 3 hidden rows left out)\n" in output
    plan = build_plan(path, skip_hidden_rows=True)
    assert (plan.summary()["hidden_rows"], plan.summary()["hidden_rows_left_out"]) == (0, 3)
    assert [j.payload["prompt"] for j in plan.jobs][2:4] == ["shot 4", "shot 6"]
    assert [(j.row, j.line) for j in plan.jobs][2:4] == [(3, 4), (4, 6)]


def test_a_job_spec_can_skip_hidden_rows(tmp_path: Path) -> None:
    """``skip_hidden_rows: true`` in a job spec; anything but true or false is a problem."""
    write(tmp_path / "in.xlsx", [["prompt"], ["a"], ["b"], ["c"]], hidden=(3,))
    spec = tmp_path / "job.yaml"
    spec.write_text("input: in.xlsx\nskip_hidden_rows: true\n")
    assert [j.payload["prompt"] for j in build_plan(spec).jobs] == ["a", "c"]
    assert len(build_plan(spec, skip_hidden_rows=False).jobs) == 3
    spec.write_text("input: in.xlsx\nskip_hidden_rows: sometimes\n")
    with pytest.raises(InputError) as caught:
        build_plan(spec)
    assert str(caught.value) == (
        f"{spec}:2: field 'skip_hidden_rows': must be true or false, not 'sometimes'"
    )


def test_one_hidden_row_is_named_in_the_singular(tmp_path: Path) -> None:
    """1 hidden row (3) is included; ... leaves it out."""
    path = write(tmp_path / "in.xlsx", [["prompt"], ["a"], ["b"]], hidden=(3,))
    assert build_plan(path).warnings == [
        f"{path}: 1 hidden row (3) is included; --skip-hidden-rows leaves it out"
    ]


def test_a_resumed_run_keeps_leaving_hidden_rows_out(tmp_path: Path) -> None:
    """`run --skip-hidden-rows`, then `run --out DIR` alone: the same jobs, none left over."""
    path = write(tmp_path / "in.xlsx", [["prompt"], ["a"], ["b"], ["c"]], hidden=(3,))
    out = tmp_path / "out"
    fast = ["--mock", "--mock-time-scale", "0.001", "--progress", "none", "--yes"]
    runner = CliRunner()
    first = runner.invoke(cli, ["run", str(path), "--out", str(out), "--skip-hidden-rows", *fast])
    assert first.exit_code == 0, first.output
    again = runner.invoke(cli, ["run", "--out", str(out), *fast])
    assert again.exit_code == 0, again.output
    assert "1 hidden row (3) is left out (--skip-hidden-rows)" in again.output
    assert "2 of 2 done" in again.output
