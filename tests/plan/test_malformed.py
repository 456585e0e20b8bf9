"""A corpus of malformed inputs: each one is exit 2, names its file and line, and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchgen.cli import cli

LONG = "x" * 2501

# name -> (file bytes, expected line, a phrase the message must contain)
CORPUS: dict[str, tuple[bytes, int, str]] = {
    "unterminated_quote.csv": (b'prompt,duration\n"a cat,5\nb,5\n', 2, "never closed"),
    "stray_quote.csv": (b'prompt,duration\n"a" cat,5\n', 2, "malformed CSV"),
    "empty.csv": (b"", 1, "empty"),
    "whitespace_only.csv": (b"  \r\n\r\n", 1, "empty"),
    "no_prompt_column.csv": (b"id,text\n1,a cat\n", 1, "no 'prompt' column"),
    "binary.csv": (b"prompt\n\x00\x01\x02\xff", 1, "binary"),
    "latin1.csv": (b"prompt\nok\ncaf\xe9\n", 3, "not UTF-8"),
    "too_many_cells.csv": (b"prompt,duration\na,5\nb,5,oops\n", 3, "3 cells"),
    "duplicate_header.csv": (b"prompt,Prompt\na,b\n", 1, "appears twice"),
    "bad_enum.csv": (b"prompt,duration\na,5\nb,7\n", 3, "'7' is not one of the allowed"),
    "cfg_above_max.csv": (b"prompt,cfg_scale\na,1.5\n", 2, "1.5 is above the maximum 1"),
    "cfg_below_min.csv": (b"prompt,cfg_scale\na,-0.1\n", 2, "below the minimum 0"),
    "cfg_not_number.csv": (b"prompt,cfg_scale\na,high\n", 2, "'high' is not a number"),
    "prompt_too_long.csv": (f"prompt\n{LONG}\n".encode(), 2, "above the maximum 2500"),
    "blank_prompt.csv": (b"prompt,duration\na,5\n,10\n", 3, "is required"),
    "bad_aspect.tsv": (b"prompt\taspect_ratio\na\t4:3\n", 2, "'4:3' is not one of"),
    "broken.yaml": (b"- prompt: a\n- prompt: [b\n", 3, "not valid YAML"),
    "scalar_row.yaml": (b"- prompt: a\n- [1, 2]\n", 2, "must be a mapping"),
    "nested_value.yaml": (b"- prompt: a\n  duration:\n    - 5\n", 2, "single value"),
    "yaml_bad_enum.yaml": (b"- prompt: a\n- prompt: b\n  duration: 15\n", 3, "'15' is not"),
    "bad_json.jsonl": (b'{"prompt": "a"}\n{"prompt": "b",}\n', 2, "not valid JSON"),
    "not_object.jsonl": (b'[1, 2]\n{"prompt": "a"}\n', 1, "JSON object"),
    "jsonl_bad_type.jsonl": (b'{"prompt": "a", "cfg_scale": true}\n', 1, "is not a number"),
    "spec_unknown_field.yaml": (
        b"endpoint: fal-ai/kling-video/v2.5-turbo/pro/text-to-video\nrows:\n  - prompt: a\n"
        b"concurency: 4\n",
        4,
        "not a job spec field",
    ),
    "spec_bad_matrix.yaml": (
        b"rows:\n  - prompt: a\nmatrix:\n  duration: ['5', '7']\n",
        4,
        "'7' is not one of",
    ),
    "spec_bad_default.yaml": (
        b"rows:\n  - prompt: a\ndefaults:\n  cfg_scale: 3\n",
        4,
        "above the maximum",
    ),
    "spec_bad_run.yaml": (b"rows:\n  - prompt: a\nrun:\n  concurrency: 0\n", 4, "above zero"),
    "spec_missing_input.yaml": (b"endpoint: x/y\ninput: nowhere.csv\n", 2, "no such prompt"),
    "spec_no_rows.yaml": (
        b"endpoint: fal-ai/kling-video/v2.5-turbo/pro/text-to-video\n",
        1,
        "needs 'input'",
    ),
    "spec_bad_template.yaml": (
        b"rows:\n  - prompt: a\nfilename: '{row}-{nope}'\n",
        3,
        "cannot be filled",
    ),
    "spec_bad_row.yaml": (
        b"rows:\n  - prompt: a\n  - prompt: b\n    aspect_ratio: 2:1\n",
        4,
        "'2:1' is not one of",
    ),
}


def _invoke(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["plan", str(path)])
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_malformed_input_is_reported_with_file_and_line(tmp_path: Path, name: str) -> None:
    """Each malformed input exits 2 with FILE:LINE and a clear phrase, never a traceback."""
    data, line, phrase = CORPUS[name]
    path = tmp_path / name
    path.write_bytes(data)
    code, output = _invoke(path)
    assert code == 2, output
    assert f"{path}:{line}:" in output, output
    assert phrase in output, output
    assert "Traceback" not in output
    assert "nothing was sent" in output


def test_corpus_is_at_least_twenty_files() -> None:
    """The malformed corpus keeps at least twenty distinct inputs."""
    assert len(CORPUS) >= 20


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    """Every bad cell of every row is reported in one go, not just the first."""
    path = tmp_path / "many.csv"
    path.write_text("prompt,duration,cfg_scale\na,7,0.5\n,5,2\nc,5,0.1\nd,10,x\n")
    code, output = _invoke(path)
    assert code == 2
    assert f"{path}:2: column 'duration'" in output
    assert f"{path}:3: column 'prompt'" in output
    assert f"{path}:3: column 'cfg_scale'" in output
    assert f"{path}:5: column 'cfg_scale'" in output
    assert "4 problems found" in output


def test_line_counts_newlines_inside_quoted_cells(tmp_path: Path) -> None:
    """A record after a multi-line quoted cell is reported at its real file line."""
    path = tmp_path / "multiline.csv"
    path.write_text('prompt,duration\n"line one\nline two\nline three",5\nb,9\n')
    code, output = _invoke(path)
    assert code == 2
    assert f"{path}:5: column 'duration'" in output


def test_xlsx_problem_names_the_sheet_row(tmp_path: Path) -> None:
    """An XLSX problem is reported at the sheet row the user sees."""
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["prompt", "duration"])
    sheet.append(["a cat", 5])
    sheet.append([None, None])
    sheet.append(["a dog", 8])
    path = tmp_path / "sheet.xlsx"
    book.save(path)
    code, output = _invoke(path)
    assert code == 2
    assert f"{path}:4: column 'duration': '8' is not one of" in output


def test_damaged_xlsx_is_a_clear_error(tmp_path: Path) -> None:
    """A file named .xlsx that is not a workbook gets one clear message."""
    path = tmp_path / "damaged.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    code, output = _invoke(path)
    assert code == 2
    assert f"{path}:1: not a readable .xlsx workbook" in output


@pytest.mark.parametrize(
    ("name", "phrase"), [("missing.csv", "no such file"), ("prompts.txt", "unknown file type")]
)
def test_missing_or_unknown_file_is_named(tmp_path: Path, name: str, phrase: str) -> None:
    """A missing file or an unknown extension is named with a clear reason."""
    path = tmp_path / name
    if name.endswith(".txt"):
        path.write_text("prompt\na\n")
    code, output = _invoke(path)
    assert code == 2
    assert str(path) in output
    assert phrase in output


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    """Through a real process, bad input gives exit 2 and only the message on stderr."""
    path = tmp_path / "bad.csv"
    path.write_text("prompt,cfg_scale\na,1.5\n")
    proc = subprocess.run(
        [sys.executable, "-m", "batchgen", "plan", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"{path}:2: column 'cfg_scale': 1.5 is above the maximum 1" in proc.stderr
    assert "Traceback" not in proc.stderr
