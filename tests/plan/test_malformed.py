"""A corpus of malformed inputs: each one is exit 2, names its file and line, and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchgen.cli import cli

LONG = "x" * 2501


def _bomb(levels: int = 9) -> bytes:
    """A billion-laughs ladder: anchors a0..aN, each alias nine times the one before."""
    lines = ["  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines).encode() + b"\n"


ROWS = b"rows:\n  - prompt: a\n"

# name -> (file bytes, expected line, a phrase the message must contain)
CORPUS: dict[str, tuple[bytes, int, str]] = {
    "unterminated_quote.csv": (b'prompt,duration\n"a cat,5\nb,5\n', 2, "never closed"),
    "stray_quote.csv": (b'prompt,duration\n"a" cat,5\n', 2, "malformed CSV"),
    "empty.csv": (b"", 1, "empty"),
    "whitespace_only.csv": (b"  \r\n\r\n", 1, "empty"),
    "no_prompt_column.csv": (b"id,text\n1,a cat\n", 1, "no 'prompt' column"),
    "binary.csv": (b"prompt\n\x00\x01\x02\xff", 2, "binary"),
    # UTF-8 in one place and not in another: two exports pasted together, not cp1252.
    "mixed_encodings.csv": ("prompt\ncafé\n".encode() + b"caf\xe9\n", 3, "not UTF-8"),
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
    # Job spec fields of the wrong shape: the field's line, never a traceback.
    "spec_defaults_text.yaml": (
        ROWS + b"defaults: abc\n",
        3,
        "field 'defaults': must be a mapping of names to single values, not 'abc'",
    ),
    "spec_matrix_list.yaml": (ROWS + b"matrix: [1, 2]\n", 3, "field 'matrix': must be a mapping"),
    "spec_run_number.yaml": (ROWS + b"run: 7\n", 3, "field 'run': must be a mapping"),
    "spec_output_mapping.yaml": (ROWS + b"output: {a: 1}\n", 3, "'output': must be a path"),
    "spec_rows_number.yaml": (b"endpoint: x/y\nrows: 5\n", 2, "'rows': must be a list of rows"),
    "spec_input_list.yaml": (b"input: [a.csv]\n", 1, "'input': must be a path (text), not a list"),
    "spec_filename_number.yaml": (ROWS + b"filename: 5\n", 3, "'filename': must be a non-empty"),
    "spec_repeat_text.yaml": (ROWS + b"repeat: abc\n", 3, "'repeat': must be a whole number"),
    "spec_repeat_huge.yaml": (ROWS + b"repeat: 100000000\n", 3, "must be from 1 to 10,000"),
    "spec_endpoint_list.yaml": (ROWS + b"endpoint: [x]\n", 3, "'endpoint': must be a non-empty"),
    "spec_provider_number.yaml": (ROWS + b"provider: 3\n", 3, "'provider': must be a non-empty"),
    "spec_run_value_list.yaml": (
        ROWS + b"run:\n  concurrency: 2\n  provider: [fal]\n",
        5,
        "field 'run.provider': must be a single value, not a list",
    ),
    # A pool of keys: each key's problem at its own line.
    "spec_keys_text.yaml": (
        ROWS + b"run:\n  keys: FAL_KEY_A\n",
        4,
        "field 'run.keys': must be a list of keys ({env: NAME, concurrency: N}), not 'FAL_KEY_A'",
    ),
    "spec_key_unknown_field.yaml": (
        ROWS + b"run:\n  keys:\n    - env: A\n      cap: 2\n",
        6,
        "field 'run.keys[1].cap': is not a field of a key; known: env, concurrency",
    ),
    "spec_key_without_env.yaml": (
        ROWS + b"run:\n  keys:\n    - {env: A}\n    - {concurrency: 2}\n",
        6,
        "field 'run.keys[2]': needs env: the variable that holds the key",
    ),
    "spec_key_bad_cap.yaml": (
        ROWS + b"run:\n  keys:\n    - {env: A, concurrency: 0}\n",
        5,
        "field 'run.keys[1].concurrency': 0 must be above zero",
    ),
    "spec_keys_and_key_env.yaml": (
        ROWS + b"run:\n  api_key_env: A\n  keys: [{env: B}]\n",
        5,
        "field 'run.keys': give either keys or api_key_env, not both",
    ),
    "spec_default_list.yaml": (
        ROWS + b"defaults:\n  duration: [5]\n",
        4,
        "field 'defaults.duration': must be a single value",
    ),
    "spec_matrix_value.yaml": (ROWS + b"matrix:\n  duration: 5\n", 4, "non-empty list"),
    "spec_field_twice.yaml": (ROWS + b"repeat: 2\nrepeat: 3\n", 4, "appears twice (first on"),
    "spec_matrix_too_big.yaml": (
        ROWS
        + b"matrix:\n"
        + b"".join(f"  p{i}: [{', '.join('abcdefghij')}]\n".encode() for i in range(7))
        + b"endpoint: me/passthrough\n",
        3,
        "makes 10,000,000 combinations",
    ),
    # YAML alias bombs: refused while composing, at the alias that crosses the bound.
    "bomb_spec_defaults.yaml": (ROWS + b"defaults:\n" + _bomb(), 9, "a YAML bomb?"),
    "bomb_spec_repeat.yaml": (
        ROWS + b"x:\n" + _bomb() + b"repeat: *a9\n",
        9,
        "stand for more than 100,000 values",
    ),
    "bomb_rows.yaml": (
        b"- prompt: a\n  x: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + b"".join(
            f"- prompt: a\n  x: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n".encode()
            for i in range(1, 10)
        ),
        12,
        "a YAML bomb?",
    ),
    "alias_inside_itself.yaml": (b"- prompt: &p [a, *p]\n", 1, "is inside the node it names"),
    # A prompt with nothing visible in it.
    "spec_blank_prompt_default.yaml": (
        b"rows:\n  - duration: '5'\ndefaults:\n  prompt: '  '\n",
        4,
        "field 'defaults.prompt': is blank",
    ),
    "spec_blank_prompt_matrix.yaml": (
        b"rows:\n  - duration: '5'\nmatrix:\n  prompt: [a, \"\\u200b\"]\n",
        4,
        "field 'matrix.prompt': is blank",
    ),
    "invisible_prompt.csv": (
        "prompt,duration\na,5\n\u200b\u202e\ufeff,5\n".encode(),
        3,
        "column 'prompt': is required and is empty",
    ),
    "invisible_prompt.jsonl": (
        b'{"prompt": "a"}\n{"prompt": "\\u2060 ", "duration": "5"}\n',
        2,
        "is required and is empty",
    ),
    "all_rows_blank.csv": (b'prompt,duration\n,\n" ",\n', 1, "no rows to run"),
    # Bytes and lines reported where they are.
    "nul_in_row.csv": (b"prompt\nok\nbad\x00cell\n", 3, "a NUL byte"),
    "utf16.jsonl": ('{"prompt": "a"}\n'.encode("utf-16"), 1, "UTF-16"),
    "long_cell_across_lines.csv": (
        b'prompt\na\n"' + b"y" * 1000 + b"\n" * 140 + b"y" * 1000 * 130 + b'"\n',
        3,
        "longer than 131,072 characters",
    ),
    "jsonl_line_separator.jsonl": (
        '{"prompt": "a\u2028b"}\n{"prompt": "c", "cfg_scale": 9}\n'.encode(),
        2,
        "above the maximum",
    ),
    "jsonl_duplicate_key.jsonl": (
        b'{"prompt": "a"}\n{"prompt": "a", "prompt": "b"}\n',
        2,
        "column 'prompt': appears twice in this record",
    ),
    "jsonl_case_collision.jsonl": (
        b'{"prompt": "a"}\n{"prompt": "a", "Prompt": "b"}\n',
        2,
        "column 'Prompt': is the same column as 'prompt' (case is ignored)",
    ),
    "yaml_case_collision.yaml": (
        b"- prompt: a\n  Prompt: b\n",
        2,
        "is the same column as 'prompt' on line 1",
    ),
    "jsonl_lone_surrogate.jsonl": (b'{"prompt": "a\\ud800"}\n', 1, "not a character"),
    "jsonl_long_number.jsonl": (
        b'{"prompt": "a", "cfg_scale": ' + b"1" * 5000 + b"}\n",
        1,
        "too long",
    ),
    "yaml_long_number.yaml": (b"- prompt: a\n  cfg_scale: " + b"1" * 5000 + b"\n", 2, "too long"),
    # Nesting deeper than Python's recursion limit: a clear problem, not a RecursionError.
    "jsonl_deep.jsonl": (
        b'{"prompt": "a"}\n{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
        2,
        "nested",
    ),
    "yaml_deep.yaml": (
        b"- prompt: a\n- x: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        2,
        "nested",
    ),
    "spec_deep.yaml": (
        b"rows:\n  - prompt: a\nmatrix: " + b"{a: " * 5000 + b"}" * 5000 + b"\n",
        3,
        "nested",
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


def test_every_key_problem_of_a_spec_is_reported_at_once(tmp_path: Path) -> None:
    """Each bad key of run.keys is reported at its own line, all in one go."""
    path = tmp_path / "keys.yaml"
    path.write_bytes(
        ROWS
        + b"run:\n  keys:\n    - {env: A, concurrency: 2.5}\n    - {env: 'A B'}\n"
        + b"    - just-a-name\n    - {env: C, concurrency: -1}\n"
    )
    code, output = _invoke(path)
    assert code == 2
    assert f"{path}:5: field 'run.keys[1].concurrency': 2.5 is not a whole number" in output
    assert f"{path}:6: field 'run.keys[2].env': 'A B' is not an environment variable" in output
    wanted = "must be {env: NAME, concurrency: N}, not 'just-a-name'"
    assert f"{path}:7: field 'run.keys[3]': {wanted}" in output
    assert f"{path}:8: field 'run.keys[4].concurrency': -1 must be above zero" in output
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
    ("name", "phrase"), [("missing.csv", "no such file"), ("prompts.doc", "unknown file type")]
)
def test_missing_or_unknown_file_is_named(tmp_path: Path, name: str, phrase: str) -> None:
    """A missing file or an unknown extension is named with a clear reason."""
    path = tmp_path / name
    if name.endswith(".doc"):
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
