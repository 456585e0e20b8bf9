"""Spreadsheets as exported: loose headers, separators, encodings, text, sheets, no header."""

from __future__ import annotations

import tomllib
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from batchgen.cli import cli
from batchgen.errors import InputError
from batchgen.plan.build import build_plan

REPO = Path(__file__).resolve().parents[2]


def plan_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["plan", *args])
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.output


def workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


@pytest.mark.parametrize(
    "header", ["Aspect Ratio", "aspect-ratio", "ASPECT_RATIO", " aspect ratio "]
)
def test_header_names_match_loosely(tmp_path: Path, header: str) -> None:
    """Case, spaces, hyphens and underscores in a header do not count."""
    path = tmp_path / "p.csv"
    path.write_text(f'Prompt,"{header}",Negative-Prompt\na cat,9:16,rain\n')
    plan = build_plan(path)
    assert plan.jobs[0].payload["aspect_ratio"] == "9:16"
    assert plan.jobs[0].payload["negative_prompt"] == "rain"
    assert plan.extra_columns == []


def test_two_spellings_of_one_parameter_are_an_error(tmp_path: Path) -> None:
    """Two columns that both mean one parameter are refused, naming both."""
    path = tmp_path / "p.csv"
    path.write_text("prompt,aspect_ratio,Aspect Ratio\na,16:9,9:16\n")
    with pytest.raises(InputError, match="second column for parameter 'aspect_ratio' \\(the first"):
        build_plan(path)


def test_a_misspelt_parameter_column_stops_the_plan(tmp_path: Path) -> None:
    """cfg and neg prompt stop plan with exit 2 and a suggestion; --extra-columns ok keeps them."""
    path = tmp_path / "p.csv"
    path.write_text("prompt,cfg,neg prompt,notes\na,0.9,blur,hero\n")
    code, output = plan_cli(str(path))
    assert code == 2
    assert f"{path}:1: column 'cfg': is not a parameter of" in output
    assert "did you mean 'negative_prompt'?" in output
    assert "2 problems found; nothing was sent." in output
    assert plan_cli(str(path), "--extra-columns", "ok")[0] == 0


def test_a_job_spec_can_keep_extra_columns(tmp_path: Path) -> None:
    """A spec's extra_columns: ok keeps them; another value is a problem at its line."""
    (tmp_path / "p.csv").write_text("prompt,cfg\na,0.9\n")
    spec = tmp_path / "job.yaml"
    spec.write_text("input: p.csv\nextra_columns: ok\n")
    assert build_plan(spec).extra_columns == ["cfg"]
    spec.write_text("input: p.csv\nextra_columns: maybe\n")
    with pytest.raises(InputError, match=r"job\.yaml:2: field 'extra_columns': 'maybe' is not one"):
        build_plan(spec)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("semicolons.csv", 'prompt;duration;cfg_scale\n"a cat; sleeping";10;0,5\nb;5;\n'),
        ("tabs.csv", "prompt\tduration\tcfg_scale\na cat; sleeping\t10\t\nb\t5\t\n"),
        ("tabs.tsv", "prompt\tduration\na cat; sleeping\t10\nb\t5\n"),
        ("commas.csv", "id,prompt,duration\n1,a cat; sleeping,10\n2,b,5\n"),
    ],
)
def test_separators_are_detected(tmp_path: Path, name: str, text: str) -> None:
    """European Excel's semicolons (with their decimal commas) and tab-separated .csv files
    are read by their header."""
    path = tmp_path / name
    path.write_text(text)
    plan = build_plan(path)
    if name == "semicolons.csv":  # in a ;-separated file, 0,5 is one half
        assert plan.jobs[0].payload["cfg_scale"] == 0.5
    assert [(j.payload["prompt"], j.payload["duration"]) for j in plan.jobs] == [
        ("a cat; sleeping", "10"),
        ("b", "5"),
    ]


def test_utf16_unicode_text_is_read(tmp_path: Path) -> None:
    """Excel's "Unicode Text" (UTF-16 with BOM, tabs, .txt) and a UTF-16 CSV are read."""
    text = "prompt\tduration\r\nun café à l'aube\t10\r\n"
    unicode_text = tmp_path / "sheet.txt"
    unicode_text.write_bytes(text.encode("utf-16"))
    plan = build_plan(unicode_text)
    assert plan.jobs[0].payload["prompt"] == "un café à l'aube"
    assert plan.jobs[0].payload["duration"] == "10"
    assert plan.warnings == []
    csv_file = tmp_path / "sheet.csv"
    csv_file.write_bytes(text.replace("\t", ",").encode("utf-16-be").join([b"\xfe\xff", b""]))
    assert build_plan(csv_file).jobs[0].payload["prompt"] == "un café à l'aube"


def test_cp1252_is_read_with_a_note(tmp_path: Path) -> None:
    """A Windows 'CSV' that is not UTF-8 is read as cp1252, and the plan says so."""
    path = tmp_path / "windows.csv"
    path.write_bytes("prompt\r\nun café – l’aube\r\n".encode("cp1252"))
    plan = build_plan(path)
    assert plan.jobs[0].payload["prompt"] == "un café – l’aube"
    assert plan.warnings == [
        f"{path}: not UTF-8; read as Windows-1252 (cp1252), as Excel saves 'CSV' on Windows "
        "(check accented characters, or save it as 'CSV UTF-8')"
    ]
    code, output = plan_cli(str(path))
    assert code == 0
    assert "warning: " in output
    assert "not UTF-8; read as Windows-1252" in output


def test_txt_is_one_prompt_per_line(tmp_path: Path) -> None:
    """A .txt holds one prompt per non-blank line, commas and all, each at its line."""
    path = tmp_path / "ideas.txt"
    path.write_text("A red fox, in snow, at dawn\n\n  a barista pours latte art  \n")
    plan = build_plan(path)
    assert [(j.payload["prompt"], j.line) for j in plan.jobs] == [
        ("A red fox, in snow, at dawn", 1),
        ("a barista pours latte art", 3),
    ]


def test_a_csv_of_only_prompts_needs_no_header(tmp_path: Path) -> None:
    """One column of sentences and no header: every line is a prompt, with a note."""
    path = tmp_path / "prompts.csv"
    path.write_text('"A red fox, trotting through snow"\nA barista pours latte art\n')
    plan = build_plan(path)
    assert [j.payload["prompt"] for j in plan.jobs] == [
        "A red fox, trotting through snow",
        "A barista pours latte art",
    ]
    assert plan.warnings == [
        f"{path}: no header row; each row is read as one prompt "
        "(add a first row 'prompt' to name the column)"
    ]


def test_no_header_and_several_columns_says_to_add_one(tmp_path: Path) -> None:
    """Sentences split by unquoted commas: the message says to add a prompt header."""
    path = tmp_path / "prompts.csv"
    path.write_text("A red fox trotting, cinematic\nA barista pours latte art, close-up\n")
    code, output = plan_cli(str(path))
    assert code == 2
    assert f"{path}:1: no 'prompt' column (columns found: 'A red fox trotting', 'cinematic')" in (
        output
    )
    assert "the first row reads like a prompt, not a header: add a first row naming" in output


def test_xlsx_reads_the_first_sheet_with_prompts_or_the_one_named(tmp_path: Path) -> None:
    """Without --sheet the first sheet with a prompt column is read; --sheet picks one."""
    path = workbook(
        tmp_path / "book.xlsx",
        {
            "Notes": [["written by", "maya"]],
            "Shots": [["Prompt", "Duration"], ["a cat", 10]],
            "Old": [["prompt"], ["a dog"], ["a cow"]],
        },
    )
    assert [j.payload["prompt"] for j in build_plan(path).jobs] == ["a cat"]
    assert len(build_plan(path, sheet="old").jobs) == 2
    code, output = plan_cli(str(path), "--sheet", "Old")
    assert (code, "(2 records)" in output) == (0, True)
    code, output = plan_cli(str(path), "--sheet", "Archive")
    assert code == 2
    assert f"{path}: no sheet named 'Archive' (--sheet); its sheets: 'Notes', 'Shots', 'Old'" in (
        output
    )


def test_xlsx_errors_name_the_sheet_and_the_others(tmp_path: Path) -> None:
    """A problem names the sheet read; no prompt column names the other sheets."""
    path = workbook(
        tmp_path / "book.xlsx",
        {"Shots": [["prompt", "duration"], ["a cat", 7]], "Notes": [["text"], ["x"]]},
    )
    code, output = plan_cli(str(path))
    assert code == 2
    assert f"{path}[Shots]:2: column 'duration': '7' is not one of" in output
    code, output = plan_cli(str(path), "--sheet", "Notes")
    assert code == 2
    assert (
        f"{path}[Notes]:1: no 'prompt' column (columns found: 'text'); sheet 'Notes' was read "
        "(other sheets: 'Shots'; choose one with --sheet NAME)"
    ) in output


def test_filename_fields_match_columns_loosely(tmp_path: Path) -> None:
    """{ID}, {id} and {shot_no} name the columns id and Shot No."""
    path = tmp_path / "p.csv"
    path.write_text("id,Shot No,prompt\nA-7,3,a cat\n")
    plan = build_plan(path, filename="{ID}-{id}-{shot_no}-{Prompt}")
    assert plan.jobs[0].filename == "A-7-A-7-3-a cat.mp4"


def test_messages_say_one_in_the_singular(tmp_path: Path) -> None:
    """1 record, 1 job, 1 column: never "1 records"."""
    path = tmp_path / "p.csv"
    path.write_text("prompt\na\nb,c\n")
    code, output = plan_cli(str(path))
    assert code == 2
    assert "this row has 2 cells but the header has 1 column\n" in output
    path.write_text("prompt\na\n")
    code, output = plan_cli(str(path))
    assert code == 0
    assert "(1 record)" in output
    assert "duration=5: 1 job, $0.35" in output


def test_openpyxl_is_a_base_dependency() -> None:
    """XLSX needs no extra; the xlsx extra still installs."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("openpyxl") for dep in project["dependencies"])
    assert "xlsx" in project["optional-dependencies"]
