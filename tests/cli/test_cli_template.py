"""`batchgen template`: a ready-to-fill sheet that `batchgen plan` accepts once filled."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
from click.testing import CliRunner
from media_files import png

from batchgen.cli import cli


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.output


COLUMNS = ["prompt", "duration", "aspect_ratio", "negative_prompt", "cfg_scale"]


def test_csv_template_is_the_header_and_plans_once_filled(tmp_path: Path) -> None:
    """The CSV holds the endpoint's columns; filled in, plan accepts it."""
    path = tmp_path / "sheet.csv"
    code, output = invoke("template", "--to", str(path))
    assert code == 0, output
    assert output.startswith(f"wrote {path}: columns {', '.join(COLUMNS)}\n")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.endswith(b"\r\n")
    with path.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerow(["a fox in snow", "10", "9:16", "", ""])
    code, output = invoke("plan", str(path))
    assert code == 0, output
    assert "duration=10: 1 job, $0.70" in output


def test_xlsx_template_has_dropdowns_ranges_and_a_guide(tmp_path: Path) -> None:
    """Enum columns get a dropdown, numbers a range, text a length; a second sheet explains."""
    path = tmp_path / "sheet.xlsx"
    assert (
        invoke("template", "fal-ai/kling-video/v2.5-turbo/pro/text-to-video", "--to", str(path))[0]
        == 0
    )
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["prompts", "columns"]
    sheet = book["prompts"]
    assert [c.value for c in sheet[1]] == COLUMNS
    checks = {str(v.sqref): v for v in sheet.data_validations.dataValidation}
    assert checks["B2:B1001"].type == "list"
    assert checks["B2:B1001"].formula1 == '"5,10"'
    assert checks["C2:C1001"].formula1 == '"16:9,9:16,1:1"'
    assert (checks["E2:E1001"].type, checks["E2:E1001"].formula1) == ("decimal", "0")
    assert checks["E2:E1001"].formula2 == "1"
    assert (checks["A2:A1001"].type, checks["A2:A1001"].formula1) == ("textLength", "2500")
    assert sheet["C2"].number_format == "@"  # 16:9 typed in stays text, not a time
    guide = [[c.value for c in row] for row in book["columns"].iter_rows()]
    assert guide[0] == ["column", "type", "required", "default", "allowed values", "description"]
    assert guide[3][:5] == ["aspect_ratio", "string", "no", "16:9", "16:9, 9:16, 1:1"]
    assert guide[5][4] == "from 0 to 1"
    assert guide[1][5] == "What the video shows, in words."
    sheet.append(["a fox in snow", "10", "9:16", None, 0.7])
    sheet.append(["a barista", None, None, None, None])
    book.save(path)
    code, output = invoke("plan", str(path))
    assert code == 0, output
    assert "(2 records)" in output
    assert "estimated cost: $1.05" in output


def test_template_refuses_to_overwrite_unknown_endpoints_and_formats(tmp_path: Path) -> None:
    """An existing file needs --force; an endpoint with no spec and a .txt are refused."""
    path = tmp_path / "sheet.csv"
    path.write_text("mine\n")
    code, output = invoke("template", "--to", str(path))
    assert (code, output) == (2, f"error: {path} already exists; pass --force to write over it\n")
    assert invoke("template", "--to", str(path), "--force")[0] == 0
    code, output = invoke("template", "me/model", "--to", str(tmp_path / "x.csv"))
    assert code == 2
    assert "no spec for endpoint 'me/model'" in output
    code, output = invoke("template", "--to", str(tmp_path / "x.txt"))
    assert code == 2
    assert "a template is a .csv or an .xlsx file" in output


def test_the_next_step_names_the_endpoint_of_the_template(tmp_path: Path) -> None:
    """For another endpoint than the default, the command the template prints names it,
    and typed as printed it plans the filled sheet on that endpoint with its lists."""
    path = tmp_path / "refs.csv"
    endpoint = "fal-ai/veo3.1/reference-to-video"
    code, output = invoke("template", endpoint, "--to", str(path))
    assert code == 0, output
    step = output.splitlines()[-1]
    assert step == f"fill one row per video, then: batchgen plan {path} --endpoint {endpoint}"
    (tmp_path / "a.png").write_bytes(png())
    header = next(csv.reader([path.read_text(encoding="utf-8-sig").splitlines()[0]]))
    row = {"prompt": "a face", "image_urls": '["a.png"]'}
    with path.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerow([row.get(c, "") for c in header])
    code, output = invoke(*step.split(": ", 1)[1].split()[1:], "--json")
    assert code == 0, output
    assert f'"endpoint": "{endpoint}"' in output
