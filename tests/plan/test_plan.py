"""Plans: stable keys, defaults and overrides, matrix, repeat, naming, warnings."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from batchgen.errors import InputError
from batchgen.plan.build import build_plan, job_key


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_keys_are_stable_and_independent_of_row_order(tmp_path: Path) -> None:
    """The same rows give the same keys in any order, with any extra columns."""
    a = build_plan(write(tmp_path / "a.csv", "prompt,duration\ncat,5\ndog,10\n"))
    b = build_plan(write(tmp_path / "b.csv", "notes,duration,PROMPT\nx,10,dog\ny,5,cat\n"))
    assert {j.key for j in a.jobs} == {j.key for j in b.jobs}
    payload = {
        "prompt": "cat",
        "duration": "5",
        "aspect_ratio": "16:9",
        "negative_prompt": "blur, distort, and low quality",
        "cfg_scale": 0.5,
    }
    assert a.jobs[0].key == job_key("fal-ai/kling-video/v2.5-turbo/pro/text-to-video", payload, 0)
    # Pinned: a key must never change between versions, or resumes would redo paid work.
    assert a.jobs[0].key == "2d05398b1e1f03f0"


def test_defaults_set_cells_and_matrix_precedence(tmp_path: Path) -> None:
    """Spec defaults < --set < row cells; the matrix expands every row."""
    write(tmp_path / "p.csv", "prompt,cfg_scale\na,0.9\nb,\n")
    spec = write(
        tmp_path / "spec.yaml",
        "input: p.csv\ndefaults:\n  cfg_scale: 0.1\n  duration: 10\n"
        "matrix:\n  aspect_ratio: ['16:9', '9:16']\n",
    )
    plan = build_plan(spec, sets={"cfg_scale": "0.2"})
    got = [(j.row, j.payload["cfg_scale"], j.payload["aspect_ratio"]) for j in plan.jobs]
    assert got == [(1, 0.9, "16:9"), (1, 0.9, "9:16"), (2, 0.2, "16:9"), (2, 0.2, "9:16")]
    assert {j.payload["duration"] for j in plan.jobs} == {"10"}
    assert plan.estimated_cost == pytest.approx(2.8)


def test_repeat_gives_independent_samples(tmp_path: Path) -> None:
    """repeat: N makes N jobs per row with distinct keys and the same payload."""
    write(tmp_path / "p.csv", "prompt\na\n")
    plan = build_plan(write(tmp_path / "s.yaml", "input: p.csv\nrepeat: 3\n"))
    assert [j.repeat for j in plan.jobs] == [0, 1, 2]
    assert len({j.key for j in plan.jobs}) == 3
    assert len({json.dumps(j.payload) for j in plan.jobs}) == 1


def test_identical_rows_are_one_job_with_a_warning(tmp_path: Path) -> None:
    """Two rows asking the very same thing are run once, and the user is told."""
    plan = build_plan(write(tmp_path / "p.csv", "prompt,duration\na,5\nb,5\na,5\n"))
    assert [j.row for j in plan.jobs] == [1, 2]
    assert any("row 3 asks the same as row 1" in w for w in plan.warnings)


def test_extra_columns_are_kept_not_sent_and_misspellings_refused(tmp_path: Path) -> None:
    """Non-parameter columns are kept for the manifest; near-misses are errors, unless ok."""
    path = write(tmp_path / "p.csv", "id,prompt,cfg,aspect,neg prompt,notes\n7,a,1,x,y,z\n")
    with pytest.raises(InputError) as caught:
        build_plan(path)
    text = str(caught.value)
    assert f"{path}:1: column 'cfg': is not a parameter of" in text
    assert "did you mean 'cfg_scale'? Rename the column, or keep it as a note" in text
    assert "column 'aspect': " in text
    assert "did you mean 'aspect_ratio'" in text
    assert "did you mean 'negative_prompt'" in text
    assert "'notes'" not in text
    assert "'id'" not in text
    plan = build_plan(path, extra_columns="ok")
    assert plan.extra_columns == ["id", "cfg", "aspect", "neg prompt", "notes"]
    job = plan.jobs[0]
    assert job.extra == {"id": "7", "cfg": "1", "aspect": "x", "neg prompt": "y", "notes": "z"}
    assert "cfg" not in job.payload
    assert "id" not in job.payload
    assert job.payload["cfg_scale"] == 0.5
    assert plan.warnings == []


def test_row_is_position_among_data_records(tmp_path: Path) -> None:
    """row counts data records (blank ones excluded); line is where the user finds it."""
    plan = build_plan(write(tmp_path / "p.csv", 'prompt\n"a\nb"\n\n,\nc\n'))
    assert [(j.row, j.line) for j in plan.jobs] == [(1, 2), (2, 6)]


@pytest.mark.parametrize(
    "prompt",
    [
        "../../etc/passwd",
        "a/b\\c:d",
        "\x00\x1fctrl",
        "..",
        "CON",
        "x" * 500,
        "🎬" * 80,
        "evil\u202egpm.exe",
        "\u200bzero\ufeffwidth\u2066isolate\u2069",
        "c1\x85\x9fcontrols\u2028line",
    ],
)
def test_file_names_are_safe_whatever_the_row(tmp_path: Path, prompt: str) -> None:
    """Templated names never escape the folder, hold no separators, controls or invisible
    format characters (bidi overrides, zero-width spaces, BOMs), and stay short."""
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": prompt.replace("\x00", ""), "tag": prompt}) + "\n")
    plan = build_plan(path, filename="{tag}/{slug}")
    name = plan.jobs[0].filename
    assert name.endswith(".mp4")
    assert "/" not in name
    assert "\\" not in name
    assert ".." not in name
    assert all(ord(ch) >= 32 for ch in name)
    assert not [ch for ch in name if unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Zl", "Zp"}]
    assert len(name.encode()) <= 124
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()


def test_file_names_are_unique_even_when_the_template_collides(tmp_path: Path) -> None:
    """A template that gives two jobs one name still yields distinct names."""
    plan = build_plan(write(tmp_path / "p.csv", "prompt\na\nb\nc\n"), filename="same")
    names = [j.filename for j in plan.jobs]
    assert len(set(names)) == 3
    assert names[0] == "same.mp4"


def test_passthrough_endpoint_sends_every_column_with_unknown_cost(tmp_path: Path) -> None:
    """An endpoint with no spec plans with a warning and an unknown (not zero) cost."""
    plan = build_plan(write(tmp_path / "p.csv", "prompt,steps\na,30\n"), endpoint="me/model/v1")
    assert plan.jobs[0].payload == {"prompt": "a", "steps": "30"}
    assert plan.estimated_cost is None
    assert plan.summary()["estimated_cost_usd"] is None
    assert any("has no spec" in w for w in plan.warnings)


def test_set_of_unknown_parameter_is_refused(tmp_path: Path) -> None:
    """--set naming no parameter of the endpoint is an input error."""
    with pytest.raises(InputError, match="--set: field 'seed': is not a parameter"):
        build_plan(write(tmp_path / "p.csv", "prompt\na\n"), sets={"seed": "1"})


def test_hundreds_of_problems_are_capped(tmp_path: Path) -> None:
    """A file full of bad rows reports many problems but stops at a readable number."""
    rows = "".join(f"p{i},9\n" for i in range(3000))
    with pytest.raises(InputError) as info:
        build_plan(write(tmp_path / "p.csv", "prompt,duration\n" + rows))
    assert 1000 <= len(info.value.problems) <= 1002


def test_a_spec_ca_bundle_is_relative_to_the_spec(tmp_path: Path) -> None:
    """`run: {ca_bundle: certs/ca.pem}` names a file beside the spec, wherever the command runs."""
    write(tmp_path / "p.csv", "prompt\na\n")
    spec = write(tmp_path / "spec.yaml", "input: p.csv\nrun: {ca_bundle: certs/ca.pem}\n")
    plan = build_plan(spec)
    assert plan.settings.ca_bundle == str(tmp_path.resolve() / "certs" / "ca.pem")
