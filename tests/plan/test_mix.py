"""Plans over several endpoints: a matrix of endpoints, an endpoint column, per_endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from media_files import png
from mixes import KLING, OTHER, OTHER_SPEC

from batchgen.errors import InputError
from batchgen.plan.build import build_plan, job_key


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def other(tmp_path: Path) -> Path:
    return write(tmp_path / "other.yaml", OTHER_SPEC)


def spec_file(tmp_path: Path, body: str, rows: str = "prompt\na cat\na dog\n") -> Path:
    write(tmp_path / "p.csv", rows)
    return write(tmp_path / "spec.yaml", "input: p.csv\nendpoint_spec: other.yaml\n" + body)


def problems(excinfo: pytest.ExceptionInfo[InputError]) -> list[str]:
    return [str(p) for p in excinfo.value.problems]


def test_matrix_of_endpoints_runs_every_row_on_each(tmp_path: Path, other: Path) -> None:
    """matrix: {endpoint: [A, B]} makes one job per row per endpoint, each checked by its own."""
    plan = build_plan(spec_file(tmp_path, f"matrix:\n  endpoint: [{KLING}, {OTHER}]\n"))
    assert [(j.row, j.endpoint) for j in plan.jobs] == [
        (1, KLING),
        (1, OTHER),
        (2, KLING),
        (2, OTHER),
    ]
    kling, theirs = plan.jobs[0], plan.jobs[1]
    assert kling.payload["duration"] == "5"
    assert "generate_audio" not in kling.payload
    assert theirs.payload == {
        "prompt": "a cat",
        "duration": "8s",
        "generate_audio": True,
        "aspect_ratio": "16:9",
    }
    assert theirs.key == job_key(OTHER, theirs.payload, 0)
    assert (kling.cost_usd, theirs.cost_usd) == (0.35, 0.5)
    assert list(plan.endpoints) == [KLING, OTHER]
    assert plan.summary()["endpoints"] == [KLING, OTHER]
    assert [(g["endpoint"], g["jobs"], g["cost_usd"]) for g in plan.breakdown()] == [
        (KLING, 2, 0.7),
        (OTHER, 2, 1.0),
    ]
    assert plan.estimated_cost == pytest.approx(1.7)
    assert plan.typical_latency_s == 40


def test_per_endpoint_defaults_apply_to_that_endpoint_only(tmp_path: Path, other: Path) -> None:
    """per_endpoint values reach only their endpoint's jobs; plain defaults reach every
    endpoint that has the parameter."""
    body = (
        f"matrix:\n  endpoint: [{KLING}, {OTHER}]\n"
        "defaults:\n  aspect_ratio: '9:16'\n"
        f"per_endpoint:\n  {OTHER}:\n    duration: 4s\n    generate_audio: false\n"
    )
    plan = build_plan(spec_file(tmp_path, body))
    by_endpoint = {j.endpoint: j.payload for j in plan.jobs if j.row == 1}
    assert by_endpoint[KLING]["duration"] == "5"
    assert by_endpoint[KLING]["aspect_ratio"] == "9:16"
    assert by_endpoint[OTHER]["duration"] == "4s"
    assert by_endpoint[OTHER]["generate_audio"] is False
    assert by_endpoint[OTHER]["aspect_ratio"] == "9:16"


def test_a_column_goes_only_to_endpoints_that_have_it(tmp_path: Path, other: Path) -> None:
    """A cfg_scale column is sent to Kling and not to an endpoint without cfg_scale."""
    body = f"matrix:\n  endpoint: [{KLING}, {OTHER}]\n"
    plan = build_plan(spec_file(tmp_path, body, "prompt,cfg_scale\na cat,0.9\n"))
    payloads = {j.endpoint: j.payload for j in plan.jobs}
    assert payloads[KLING]["cfg_scale"] == 0.9
    assert "cfg_scale" not in payloads[OTHER]


def test_endpoint_column_picks_each_rows_endpoint(tmp_path: Path, other: Path) -> None:
    """An endpoint column runs each row on the endpoint it names; a blank cell on the plan's."""
    rows = f"prompt,Endpoint,duration\na,{OTHER},4s\nb,,10\nc,{KLING}/,5\n"
    plan = build_plan(spec_file(tmp_path, f"endpoint: {KLING}\n", rows))
    assert [(j.row, j.endpoint, j.payload["duration"]) for j in plan.jobs] == [
        (1, OTHER, "4s"),
        (2, KLING, "10"),
        (3, KLING, "5"),
    ]
    assert "Endpoint" not in plan.extra_columns


def test_each_row_is_checked_against_its_endpoint(tmp_path: Path, other: Path) -> None:
    """A value one endpoint refuses is a problem at its cell, naming that endpoint."""
    rows = f"prompt,endpoint,duration\na,{OTHER},5\nb,{KLING},8s\n"
    with pytest.raises(InputError) as excinfo:
        build_plan(spec_file(tmp_path, "", rows))
    found = problems(excinfo)
    assert len(found) == 2
    assert found[0].startswith(f"{tmp_path / 'p.csv'}:2: column 'duration': '5' is not one of")
    assert found[0].endswith(f"(on {OTHER})")
    assert found[1].startswith(f"{tmp_path / 'p.csv'}:3: column 'duration': '8s'")
    assert found[1].endswith(f"(on {KLING})")


def test_unknown_endpoints_are_problems_with_a_suggestion(tmp_path: Path, other: Path) -> None:
    """A misspelt endpoint id in a column or the matrix is refused at its line, not run blind."""
    rows = "prompt,endpoint\na,fal-ai/kling-video/v2.5-turbo/pro/text-to-vid\n"
    with pytest.raises(InputError) as excinfo:
        build_plan(spec_file(tmp_path, "", rows))
    assert problems(excinfo) == [
        f"{tmp_path / 'p.csv'}:2: column 'endpoint': "
        "'fal-ai/kling-video/v2.5-turbo/pro/text-to-vid' is not a known endpoint; did you "
        f"mean '{KLING}'? see `batchgen endpoints`, or describe it with --endpoint-spec FILE"
    ]
    with pytest.raises(InputError) as excinfo:
        build_plan(spec_file(tmp_path, f"matrix:\n  endpoint: [{KLING}, fal-ai/nope]\n"))
    assert [p.line for p in excinfo.value.problems] == [4]
    assert "'fal-ai/nope' is not a known endpoint" in problems(excinfo)[0]


def test_wrong_names_and_values_are_reported_once_each(tmp_path: Path, other: Path) -> None:
    """A default no endpoint has, a per_endpoint value its endpoint refuses, a per_endpoint for
    an endpoint the plan does not use, a blank default both refuse: all at once, at their
    lines, each once."""
    body = (
        f"matrix:\n  endpoint: [{KLING}, {OTHER}]\n"
        "defaults:\n  seed: 3\n  prompt: ' '\n"
        f"per_endpoint:\n  {OTHER}:\n    duration: '5'\n  fal-ai/unused/model:\n    duration: '5'\n"
    )
    with pytest.raises(InputError) as excinfo:
        build_plan(spec_file(tmp_path, body))
    found = {(p.line, p.column): p.message for p in excinfo.value.problems}
    assert len(found) == 4, found
    assert len(excinfo.value.problems) == 4
    assert found[(6, "defaults.seed")].startswith("is not a parameter of any endpoint")
    assert found[(7, "defaults.prompt")].endswith("(for every endpoint)")
    assert found[(10, f"per_endpoint.{OTHER}.duration")].startswith("'5' is not one of")
    assert found[(11, "per_endpoint.fal-ai/unused/model")].startswith("no job of this plan")


def test_endpoint_column_and_matrix_together_are_refused(tmp_path: Path, other: Path) -> None:
    """Naming endpoints in both a column and the matrix is ambiguous: a problem."""
    rows = f"prompt,endpoint\na,{OTHER}\n"
    with pytest.raises(InputError) as excinfo:
        build_plan(spec_file(tmp_path, f"matrix:\n  endpoint: [{KLING}]\n", rows))
    assert "name each row's endpoint there, or every row's in the matrix" in problems(excinfo)[0]


def test_matrix_values_an_endpoint_lacks_make_one_job(tmp_path: Path, other: Path) -> None:
    """A cfg_scale axis gives Kling two jobs and the other endpoint, without cfg_scale, one."""
    body = f"matrix:\n  endpoint: [{KLING}, {OTHER}]\n  cfg_scale: [0.2, 0.8]\n"
    plan = build_plan(spec_file(tmp_path, body, "prompt\na\n"))
    assert [j.endpoint for j in plan.jobs] == [KLING, KLING, OTHER]
    assert not plan.warnings


def test_model_and_endpoint_fill_file_names(tmp_path: Path, other: Path) -> None:
    """{model} and {endpoint} name a job's endpoint in its file name."""
    body = f"matrix:\n  endpoint: [{KLING}, {OTHER}]\nfilename: '{{row}}-{{model}}'\n"
    plan = build_plan(spec_file(tmp_path, body, "prompt\na\n"))
    assert [j.filename for j in plan.jobs] == [
        "1-kling-video-v2-5-turbo-pro.mp4",
        "1-testco-fast.mp4",
    ]


def test_images_go_to_the_image_endpoints_of_a_comparison(tmp_path: Path) -> None:
    """One image column feeds Kling 2.5 i2v's image_url and Kling 2.6's start_image_url (an
    alias) as the same file reference; the text-to-video endpoint gets no image; a per_endpoint
    file is read relative to the spec."""
    (tmp_path / "cat.png").write_bytes(png(1))
    (tmp_path / "end.png").write_bytes(png(2))
    i2v, v26 = (
        "fal-ai/kling-video/v2.5-turbo/pro/image-to-video",
        "fal-ai/kling-video/v2.6/pro/image-to-video",
    )
    write(tmp_path / "p.csv", "prompt,image_url\nslow push-in,cat.png\n")
    spec = write(
        tmp_path / "spec.yaml",
        f"input: p.csv\nmatrix:\n  endpoint: [{KLING}, {i2v}, {v26}]\n"
        f"per_endpoint:\n  {i2v}:\n    tail_image_url: end.png\n",
    )
    plan = build_plan(spec)
    jobs = {j.endpoint: j for j in plan.jobs}
    assert "image_url" not in jobs[KLING].payload
    assert jobs[KLING].files == ()
    cat = jobs[v26].files[0]
    assert jobs[v26].payload["start_image_url"] == cat.ref
    assert jobs[i2v].payload["image_url"] == cat.ref
    assert jobs[i2v].payload["tail_image_url"].startswith("sha256:")
    assert {f.path for f in jobs[i2v].files} == {
        str((tmp_path / "cat.png").resolve()),
        str((tmp_path / "end.png").resolve()),
    }


THIRD = "me/third/text-to-video"
THIRD_SPEC = f"""id: {THIRD}
parameters:
  prompt: {{type: string, required: true}}
  seconds: {{type: integer, enum: [4, 8], default: 4}}
price: {{flat_usd: 0.2}}
"""


@pytest.fixture
def third(tmp_path: Path) -> Path:
    return write(tmp_path / "third.yaml", THIRD_SPEC)


def test_several_spec_files_compare_uncatalogued_models(
    tmp_path: Path, other: Path, third: Path
) -> None:
    """Two spec files, each its own endpoint: a matrix or a column names them by id;
    --endpoint picks the plan's for blank cells; a built-in runs beside them."""
    csv = write(tmp_path / "p.csv", "prompt\na cat\n")
    matrix = f"matrix:\n  endpoint: [{OTHER}, {THIRD}, {KLING}]\n"
    spec = write(tmp_path / "m.yaml", f"input: {csv.name}\n{matrix}")
    plan = build_plan(spec, endpoint_spec=[other, third])
    assert [j.endpoint for j in plan.jobs] == [OTHER, THIRD, KLING]
    assert plan.jobs[1].payload == {"prompt": "a cat", "seconds": 4}
    sources = [ep.source for ep in plan.endpoints.values()]
    assert sources[:2] == [str(other), str(third)]
    assert sources[2].startswith("built-in")
    rows = write(tmp_path / "rows.csv", f"prompt,endpoint\na,{THIRD}\nb,\nc,{OTHER}\n")
    plan = build_plan(rows, endpoint_spec=(other, third), endpoint=THIRD)
    assert [j.endpoint for j in plan.jobs] == [THIRD, THIRD, OTHER]
    plan = build_plan(csv, endpoint_spec=[other, third], endpoint=KLING)
    assert [j.endpoint for j in plan.jobs] == [KLING]
    assert plan.warnings == [
        f"the endpoint spec for {OTHER!r} is not used: no row runs on it",
        f"the endpoint spec for {THIRD!r} is not used: no row runs on it",
    ]


def test_several_spec_files_need_the_plans_endpoint_named(
    tmp_path: Path, other: Path, third: Path
) -> None:
    """With several spec files and no --endpoint, a row that names no endpoint is a problem
    saying what to do: at the flag, at the job spec's field, or at the first blank cell."""
    csv = write(tmp_path / "p.csv", "prompt\na cat\n")
    advice = (
        f"2 endpoint specs ({OTHER}, {THIRD}) and no endpoint named for the plan: name it with "
        "--endpoint ID (or endpoint: in a job spec), or each row's in an 'endpoint' column or "
        f"the matrix (matrix: {{endpoint: [{OTHER}, {THIRD}]}})"
    )
    with pytest.raises(InputError) as excinfo:
        build_plan(csv, endpoint_spec=[other, third])
    assert problems(excinfo) == [f"--endpoint-spec: {advice}"]
    spec = write(
        tmp_path / "s.yaml", f"input: p.csv\nendpoint_spec:\n  - {other.name}\n  - third.yaml\n"
    )
    with pytest.raises(InputError) as excinfo:
        build_plan(spec)
    assert problems(excinfo) == [f"{spec}:2: field 'endpoint_spec': {advice}"]
    rows = write(tmp_path / "rows.csv", f"prompt,endpoint\na,{THIRD}\nb,\nc,\n")
    with pytest.raises(InputError) as excinfo:
        build_plan(rows, endpoint_spec=[other, third])
    assert problems(excinfo) == [f"{rows}:3: column 'endpoint': is blank (and 1 more); {advice}"]
    named = write(tmp_path / "named.csv", f"prompt,endpoint\na,{THIRD}\nb,{OTHER}\n")
    plan = build_plan(named, endpoint_spec=[other, third])
    assert [j.endpoint for j in plan.jobs] == [THIRD, OTHER]
    assert plan.endpoint.id == THIRD


def test_spec_file_lists_are_checked_at_their_lines(
    tmp_path: Path, other: Path, third: Path
) -> None:
    """endpoint_spec takes a path or a list of paths: an empty list or an entry of another
    shape is a problem at its line; every file's own problems are reported together; two files
    describing one id are refused; one file given twice is read once."""
    write(tmp_path / "p.csv", "prompt\na\n")
    spec = write(
        tmp_path / "s.yaml", "input: p.csv\nendpoint_spec:\n  - other.yaml\n  - [x.yaml]\n"
    )
    with pytest.raises(InputError) as excinfo:
        build_plan(spec)
    assert problems(excinfo) == [
        f"{spec}:4: field 'endpoint_spec[2]': must be a path (text), not a list"
    ]
    write(spec, "input: p.csv\nendpoint_spec: []\n")
    with pytest.raises(InputError) as excinfo:
        build_plan(spec)
    assert problems(excinfo) == [
        f"{spec}:2: field 'endpoint_spec': must be a path (text) or a list of paths, not an "
        "empty list"
    ]
    broken = write(tmp_path / "broken.yaml", "id: me/broken\nparameters:\n  prompt: 7\n")
    twin = write(tmp_path / "twin.yaml", THIRD_SPEC)
    with pytest.raises(InputError) as excinfo:
        build_plan(tmp_path / "p.csv", endpoint_spec=[broken, third, twin, tmp_path / "no.yaml"])
    found = problems(excinfo)
    assert len(found) == 3, found
    assert found[0].startswith(f"{broken}: parameter 'prompt': must be a mapping")
    assert found[1] == f"{twin}: describes {THIRD!r}, as {third} does: give each endpoint one spec"
    assert found[2].startswith(f"{tmp_path / 'no.yaml'}: ")
    plan = build_plan(tmp_path / "p.csv", endpoint_spec=[third, tmp_path / "." / "third.yaml"])
    assert [j.endpoint for j in plan.jobs] == [THIRD]
