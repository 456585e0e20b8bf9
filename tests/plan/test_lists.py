"""List and object parameters: JSON cells, numbered columns, YAML and JSONL lists, every item
checked at its file, line and column, files inside lists found, ``"auto"`` durations priced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from media_files import mp4, png, wav, write
from media_files import png_files as images

from batchgen.errors import InputError
from batchgen.plan.build import build_plan
from batchgen.plan.endpoint import builtin_specs, parse_spec
from batchgen.plan.params import ValueProblems

KLING3 = "fal-ai/kling-video/v3/pro/image-to-video"
KLING3_T2V = "fal-ai/kling-video/v3/pro/text-to-video"
VEO_REF = "fal-ai/veo3.1/reference-to-video"
SEEDANCE2 = "bytedance/seedance-2.0/text-to-video"


def problems_of(path: Path, endpoint: str, **options: object) -> list[str]:
    with pytest.raises(InputError) as caught:
        build_plan(path, endpoint=endpoint, output=path.parent / "out", **options)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def test_a_json_cell_and_numbered_columns_build_lists_of_objects_and_files(
    tmp_path: Path,
) -> None:
    """A JSON multi_prompt cell and numbered element columns (blank ones dropped) become the
    payload's lists; each local file inside them is found once, known by its place."""
    images(tmp_path)
    source = tmp_path / "shots.csv"
    source.write_text(
        "prompt,start_image_url,multi_prompt,elements.1.frontal_image_url,"
        "elements.1.reference_image_urls.1,elements.1.reference_image_urls.2\n"
        ',img0.png,"[{""prompt"": ""a cat walks"", ""duration"": ""4""}, '
        '{""prompt"": ""it sleeps"", ""duration"": 6}]",img1.png,img2.png,\n'
        "a dog runs,img1.png,,img0.png,img2.png,img1.png\n"
    )
    plan = build_plan(source, endpoint=KLING3, output=tmp_path / "out")
    first, second = plan.jobs
    assert first.payload["multi_prompt"] == [
        {"prompt": "a cat walks", "duration": "4"},
        {"prompt": "it sleeps", "duration": "6"},
    ]
    assert "prompt" not in first.payload
    assert first.filename.startswith("00001-a-cat-walks")  # named after its first shot
    elements = second.payload["elements"]
    assert len(elements) == 1
    assert len(elements[0]["reference_image_urls"]) == 2
    assert all(ref.startswith("sha256:") for ref in elements[0]["reference_image_urls"])
    assert [f.param for f in second.files] == [
        "start_image_url",
        "elements.1.frontal_image_url",
        "elements.1.reference_image_urls.1",
        "elements.1.reference_image_urls.2",
    ]
    assert [f.param for f in first.files][-1] == "elements.1.reference_image_urls.1"
    assert plan.summary()["local_files"]["count"] == 3


def test_every_item_problem_is_reported_at_its_cell_all_at_once(tmp_path: Path) -> None:
    """A bad enum inside a JSON cell, a missing field, an unknown field, a bad numbered cell
    and broken JSON are each reported with file, line, column and the item's place."""
    images(tmp_path, 1)
    source = tmp_path / "bad.csv"
    source.write_text(
        "prompt,start_image_url,multi_prompt,multi_prompt.1.duration\n"
        'x,img0.png,"[{""prompt"": ""a"", ""duration"": ""99""}, {""duration"": ""4""}, '
        '{""prompt"": ""b"", ""extra"": 1}]",\n'
        "y,img0.png,,abc\n"
        'z,img0.png,"[{""prompt"": ""a""",\n'
    )
    found = problems_of(source, KLING3)
    name = str(source)
    assert f"{name}:2: column 'multi_prompt': item 1, duration: '99' is not one of" in found[0]
    assert found[1] == f"{name}:2: column 'multi_prompt': item 2, prompt: is required and is empty"
    assert found[2].startswith(f"{name}:2: column 'multi_prompt': item 3, extra: is not a field")
    assert f"{name}:3: column 'multi_prompt.1.duration': 'abc' is not one of" in "\n".join(found)
    assert f"{name}:4: column 'multi_prompt': is not valid JSON" in "\n".join(found)


def test_a_list_given_whole_and_by_numbered_columns_is_refused(tmp_path: Path) -> None:
    """One row giving image_urls both as a JSON cell and as image_urls.1 is a problem at the
    list's column, not a silent choice of one."""
    images(tmp_path, 2)
    source = tmp_path / "both.csv"
    source.write_text('prompt,image_urls,image_urls.1\nx,"[""img0.png""]",img1.png\n')
    (problem,) = problems_of(source, VEO_REF)
    assert "column 'image_urls': is given both whole and by its numbered columns" in problem


def test_yaml_and_jsonl_lists_are_native_and_a_plain_cell_is_a_list_of_one(
    tmp_path: Path,
) -> None:
    """YAML sequences and JSONL arrays are lists as written; a CSV cell with one plain value
    in a list column is a list of that one item; a list for a scalar parameter is refused."""
    images(tmp_path)
    yaml_source = tmp_path / "refs.yaml"
    yaml_source.write_text(
        "- prompt: three views\n  image_urls: [img0.png, img1.png, img2.png]\n"
        "- prompt: two\n  image_urls:\n    - img2.png\n    - ''\n    - img0.png\n"
    )
    plan = build_plan(yaml_source, endpoint=VEO_REF, output=tmp_path / "out")
    assert [len(j.payload["image_urls"]) for j in plan.jobs] == [3, 2]
    jsonl = tmp_path / "refs.jsonl"
    jsonl.write_text(json.dumps({"prompt": "one", "image_urls": ["img1.png"]}) + "\n")
    assert build_plan(jsonl, endpoint=VEO_REF, output=tmp_path / "o2").jobs[0].files[0].param == (
        "image_urls.1"
    )
    csv = tmp_path / "one.csv"
    csv.write_text("prompt,image_urls\nx,img2.png\n")
    assert len(build_plan(csv, endpoint=VEO_REF, output=tmp_path / "o3").jobs[0].files) == 1
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("- prompt: [a, b]\n  image_urls: [img0.png]\n")
    (problem,) = problems_of(wrong, VEO_REF)
    assert problem == f"{wrong}:1: column 'prompt': must be a single value, not a list"


def test_a_missing_file_inside_a_list_names_its_item(tmp_path: Path) -> None:
    """A local file that does not exist, third in a YAML list, is reported at its key's line
    naming the item."""
    images(tmp_path, 2)
    source = tmp_path / "refs.yaml"
    source.write_text("- prompt: p\n  image_urls: [img0.png, img1.png, gone.png]\n")
    (problem,) = problems_of(source, VEO_REF)
    assert problem.startswith(f"{source}:2: column 'image_urls': item 3: gone.png: no such file")


def test_list_limits_and_a_required_list(tmp_path: Path) -> None:
    """More items than max_items, and no item at all where the list is required, are
    problems of the list."""
    images(tmp_path, 1)
    source = tmp_path / "many.yaml"
    source.write_text("- prompt: p\n  voice_ids: [a, b, c]\n  start_image_url: img0.png\n")
    (problem,) = problems_of(source, "fal-ai/kling-video/v2.6/pro/image-to-video")
    assert "column 'voice_ids': has 3 items, more than the 2 it may hold" in problem
    empty = tmp_path / "empty.csv"
    empty.write_text('prompt,image_urls\nx,"[]"\n')
    (problem,) = problems_of(empty, VEO_REF)
    assert "column 'image_urls': is required and is empty" in problem


def test_one_of_prompt_or_multi_prompt(tmp_path: Path) -> None:
    """Kling 3.0 needs a prompt or a multi_prompt: a file with only multi_prompt plans, a row
    with neither is refused saying both names."""
    source = tmp_path / "shots.csv"
    source.write_text("multi_prompt.1.prompt,shot_type\na cat,\n,intelligent\n")
    found = problems_of(source, KLING3_T2V)
    assert found == [f"{source}:3: column 'prompt': is empty: give prompt or multi_prompt"]
    source.write_text("multi_prompt.1.prompt,multi_prompt.2.prompt\na cat,a dog\n")
    (job,) = build_plan(source, endpoint=KLING3_T2V, output=tmp_path / "out").jobs
    assert job.payload["multi_prompt"] == [
        {"prompt": "a cat", "duration": "5"},
        {"prompt": "a dog", "duration": "5"},
    ]


def test_set_and_job_spec_defaults_take_items_and_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--set image_urls.1=...`` gives every row that item; a job spec's default may be a
    whole YAML list."""
    images(tmp_path, 2)
    monkeypatch.chdir(tmp_path)  # --set paths are relative to the current folder
    source = tmp_path / "p.csv"
    source.write_text("prompt\na\nb\n")
    plan = build_plan(
        source, endpoint=VEO_REF, output=tmp_path / "out", sets={"image_urls.1": "img0.png"}
    )
    assert all(len(job.files) == 1 for job in plan.jobs)
    spec = tmp_path / "job.yaml"
    spec.write_text(
        f"input: p.csv\nendpoint: {VEO_REF}\ndefaults:\n  image_urls: [img0.png, img1.png]\n"
    )
    plan = build_plan(spec, output=tmp_path / "out2")
    assert [len(job.payload["image_urls"]) for job in plan.jobs] == [2, 2]


def test_auto_duration_is_priced_at_the_longest_and_the_plan_says_so(tmp_path: Path) -> None:
    """Seedance 2.0's default duration "auto" is priced as 15 s at 720p ($4.50), with a
    warning; "5" is $1.50; 1080p has no published rate and stays unknown."""
    source = tmp_path / "p.csv"
    source.write_text("prompt,duration,resolution\na,,\nb,5,\nc,,1080p\n")
    plan = build_plan(source, endpoint=SEEDANCE2, output=tmp_path / "out")
    assert [job.cost_usd for job in plan.jobs] == [pytest.approx(4.5), pytest.approx(1.5), None]
    (said,) = [w for w in plan.warnings if "auto" in w]
    assert "2 jobs on bytedance/seedance-2.0/text-to-video ask duration auto" in said
    assert "priced at the longest, 15 s" in said


def test_integer_durations_are_numbers_in_the_payload(tmp_path: Path) -> None:
    """LTX 2.3's duration is an integer enum (6, 8, 10): "8" is sent as 8, 7 is refused;
    Wan 2.7's 2..15 seconds price by the second."""
    source = tmp_path / "p.csv"
    source.write_text("prompt,duration\na,8\nb,7\n")
    (problem,) = problems_of(source, "fal-ai/ltx-2.3/text-to-video")
    assert "'duration': 7 is not one of the allowed values: 6, 8, 10" in problem
    source.write_text("prompt,duration\na,8\n")
    (job,) = build_plan(source, endpoint="fal-ai/ltx-2.3/text-to-video", output=tmp_path / "o").jobs
    assert job.payload["duration"] == 8
    assert job.cost_usd is None
    (job,) = build_plan(
        source, endpoint="fal-ai/wan/v2.7/text-to-video", output=tmp_path / "w"
    ).jobs
    assert job.cost_usd == pytest.approx(0.8)


def test_a_spec_file_describes_lists_and_objects_and_round_trips() -> None:
    """A spec's list and object parameters survive as_data and parse back the same; a list
    without items is refused."""
    spec = builtin_specs()[KLING3]
    data = spec.as_data()
    assert (
        data["parameters"]["elements"]["items"]["fields"]["reference_image_urls"]["items"]["type"]
        == "file"
    )
    text = json.dumps({k: v for k, v in data.items() if k in ("id", "parameters", "one_of")})
    again = parse_spec(text, "again.json")
    assert again.params == spec.params
    assert again.one_of == spec.one_of
    with pytest.raises(InputError, match="a list needs 'items'"):
        parse_spec("id: x/y\nparameters:\n  urls: {type: list}\n", "bad.yaml")


def test_value_problems_name_each_place() -> None:
    """A list's problems keep item numbers as written, blanks counted."""
    param = builtin_specs()[VEO_REF].params["aspect_ratio"]
    with pytest.raises(ValueError, match="is not one of"):
        param.coerce("4:3")
    images_param = builtin_specs()[KLING3].params["multi_prompt"]
    with pytest.raises(ValueProblems) as caught:
        images_param.coerce([{"prompt": "a"}, None, {"prompt": "b", "duration": "0"}])
    assert caught.value.found == [((3, "duration"), caught.value.found[0][1])]


def test_a_multi_shot_video_is_priced_by_its_shots(tmp_path: Path) -> None:
    """Kling 3.0 image to video with shots of 4 s and 6 s costs 10 s at $0.112/s, not the
    5 s of its duration parameter; without shots, its duration prices it."""
    images(tmp_path, 1)
    source = tmp_path / "shots.csv"
    source.write_text(
        "start_image_url,multi_prompt.1.prompt,multi_prompt.1.duration,multi_prompt.2.prompt,"
        "multi_prompt.2.duration,prompt,generate_audio\n"
        "img0.png,a,4,b,6,,false\n"
        "img0.png,,,,,one shot,false\n"
    )
    shots, single = build_plan(source, endpoint=KLING3, output=tmp_path / "out").jobs
    assert shots.cost_usd == pytest.approx(1.12)
    assert single.cost_usd == pytest.approx(0.56)


def test_every_active_builtin_plans_a_one_row_file(tmp_path: Path) -> None:
    """Each active built-in endpoint (at least 30) plans one YAML row holding its required
    inputs: a prompt, and a local file of its first accepted kind for each required file or
    list of files."""
    media = {
        "image": write(tmp_path / "in.png", png()),
        "video": write(tmp_path / "in.mp4", mp4()),
        "audio": write(tmp_path / "in.wav", wav()),
    }
    active = {i: s for i, s in builtin_specs().items() if s.status == "active"}
    assert len(active) >= 30
    for ident, spec in active.items():
        row: dict[str, object] = {"prompt": "a lighthouse at dusk"}
        for name, param in spec.params.items():
            if param.required and param.is_file:
                row[name] = str(media[param.accept[0]])
            elif param.required and param.items is not None and param.items.is_file:
                row[name] = [str(media[param.items.accept[0]])]
        source = tmp_path / f"{len(list(tmp_path.iterdir()))}.yaml"
        source.write_text(json.dumps([row]))  # JSON is YAML
        plan = build_plan(source, endpoint=ident, output=tmp_path / "out" / source.stem)
        assert len(plan.jobs) == 1, ident


def test_a_rows_list_replaces_a_default_list_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row giving image_urls (whole or by numbered columns) replaces the --set or job
    spec default of it whole, never "given both"; --set replaces the spec's default."""
    images(tmp_path, 3)
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "p.csv"
    source.write_text('prompt,image_urls,image_urls.1\na,"[""img1.png""]",\nb,,img2.png\nc,,\n')
    plan = build_plan(
        source, endpoint=VEO_REF, output=tmp_path / "out", sets={"image_urls.2": "img0.png"}
    )
    assert [[f.path for f in job.files] for job in plan.jobs] == [
        [str(tmp_path / "img1.png")],
        [str(tmp_path / "img2.png")],
        [str(tmp_path / "img0.png")],  # row c gives none: the --set item stands alone
    ]
    spec = tmp_path / "job.yaml"
    spec.write_text(
        f"input: p.csv\nendpoint: {VEO_REF}\ndefaults:\n  image_urls: [img0.png, img1.png]\n"
    )
    plan = build_plan(spec, output=tmp_path / "o2", sets={"image_urls.1": "img2.png"})
    assert [len(job.files) for job in plan.jobs] == [1, 1, 1]


def test_shots_over_the_total_an_empty_shot_and_an_object_for_a_list_are_refused(
    tmp_path: Path,
) -> None:
    """Shots lasting 20 s where 15 s is the most, a shot written with an empty prompt, and
    an object where a list belongs are each a problem; none adds a "give prompt or
    multi_prompt" of its own."""
    images(tmp_path, 1)
    source = tmp_path / "s.csv"
    source.write_text(
        "start_image_url,multi_prompt\n"
        'img0.png,"[{""prompt"": ""a"", ""duration"": ""10""}, '
        '{""prompt"": ""b"", ""duration"": ""10""}]"\n'
        'img0.png,"[{""prompt"": ""a dog"", ""duration"": ""3""}, {""prompt"": """"}]"\n'
        'img0.png,"{}"\n'
    )
    found = problems_of(source, KLING3)
    assert found == [
        f"{source}:2: column 'multi_prompt': its items' duration add up to 20, above the 15 "
        "the endpoint allows in all",
        f"{source}:3: column 'multi_prompt': item 2, prompt: is required and is empty",
        f"{source}:4: column 'multi_prompt': is an object, not a list ([...])",
    ]


def test_a_column_another_endpoint_takes_is_said_out_loud(tmp_path: Path) -> None:
    """image_urls on a text-to-video endpoint is kept as a note, never sent, with a warning
    naming an endpoint that takes it; --extra-columns ok silences it."""
    source = tmp_path / "p.csv"
    source.write_text("prompt,image_urls,notes\na,x.png,hi\n")
    plan = build_plan(source, output=tmp_path / "out")
    (said,) = plan.warnings
    assert said.startswith(
        "column 'image_urls' is not a parameter of fal-ai/kling-video/v2.5-turbo/pro/"
        "text-to-video: it is kept as a note, never sent ("
    )
    assert "pass --endpoint ID" in said
    assert build_plan(source, output=tmp_path / "o2", extra_columns="ok").warnings == []


def test_a_file_problem_is_at_the_numbered_column_that_holds_it(tmp_path: Path) -> None:
    """With gaps in the numbering (image_urls.1 blank, .2 and .10 given), a missing file is
    reported at image_urls.10, the column that holds it, not at the item's place once the
    gap is closed; so is a missing frontal image in elements.3."""
    images(tmp_path, 3)
    source = tmp_path / "gaps.csv"
    source.write_text("prompt,image_urls.2,image_urls.10,image_urls.1\np1,img2.png,gone.png,\n")
    (problem,) = problems_of(source, VEO_REF)
    assert problem.startswith(f"{source}:2: column 'image_urls.10': gone.png: no such file")
    shots = tmp_path / "el.csv"
    shots.write_text("prompt,start_image_url,elements.3.frontal_image_url\na,img0.png,nope.png\n")
    (problem,) = problems_of(shots, KLING3)
    assert problem.startswith(f"{shots}:2: column 'elements.3.frontal_image_url': nope.png")


def test_a_rows_files_are_checked_even_when_another_cell_is_wrong(tmp_path: Path) -> None:
    """A row with a bad cfg_scale and a missing image: both problems at once."""
    source = tmp_path / "p.csv"
    source.write_text("prompt,start_image_url,cfg_scale\na,gone.png,7\n")
    found = problems_of(source, KLING3)
    assert len(found) == 2
    assert "column 'cfg_scale': 7 is above the maximum 1" in found[0]
    assert "column 'start_image_url': gone.png: no such file" in found[1]


def test_a_misspelt_yaml_key_is_reported_at_its_own_line(tmp_path: Path) -> None:
    """In YAML a misspelt key is named at the line of the record that writes it, not at the
    first record's; a CSV's stays at its header."""
    source = tmp_path / "rows.yaml"
    source.write_text('- prompt: a\n  duration: "5"\n- prompt: b\n  durration: 7\n')
    (problem,) = problems_of(source, "fal-ai/kling-video/v2.5-turbo/pro/text-to-video")
    assert problem.startswith(f"{source}:4: column 'durration': is not a parameter")
    sheet = tmp_path / "rows.csv"
    sheet.write_text("prompt,durration\na,5\n")
    (problem,) = problems_of(sheet, "fal-ai/kling-video/v2.5-turbo/pro/text-to-video")
    assert problem.startswith(f"{sheet}:1: column 'durration'")


def test_a_misspelt_header_does_not_hide_the_cells_problems(tmp_path: Path) -> None:
    """A column that looks like a misspelt parameter and a bad cell: both at once."""
    source = tmp_path / "m.csv"
    source.write_text("prompt,cfg,duration\na,0.5,7\n")
    found = problems_of(source, "fal-ai/kling-video/v2.5-turbo/pro/text-to-video")
    assert len(found) == 2
    assert "column 'cfg': is not a parameter" in found[0]
    assert "column 'duration': '7' is not one of the allowed values" in found[1]


def test_a_value_close_to_an_allowed_one_is_named(tmp_path: Path) -> None:
    """Veo's duration 8 suggests '8s', a resolution 720P suggests '720p'; still refused."""
    source = tmp_path / "v.csv"
    source.write_text("prompt,duration,resolution\na,8,720P\n")
    found = problems_of(source, "fal-ai/veo3.1")
    assert found[0].endswith(
        "'8' is not one of the allowed values: '4s', '6s', '8s'; did you mean '8s'?"
    )
    assert found[1].endswith("did you mean '720p'?")


def test_endpoint_picks_one_endpoint_of_a_matrix_axis(repo: Path) -> None:
    """--endpoint overrides the spec: on a comparison it runs that one of the axis's
    endpoints (the others' per_endpoint defaults set aside); one the axis lacks is refused."""
    plan = build_plan(repo / "jobs" / "compare.yaml", endpoint="fal-ai/veo3.1/fast")
    assert {job.endpoint for job in plan.jobs} == {"fal-ai/veo3.1/fast"}
    assert {job.payload["duration"] for job in plan.jobs} == {"8s"}
    with pytest.raises(InputError, match="is not one of the endpoints of"):
        build_plan(repo / "jobs" / "compare.yaml", endpoint="fal-ai/veo3.1")


def test_a_blank_set_value_leaves_the_specs_default(tmp_path: Path) -> None:
    """--set duration= is no default, as a blank cell: the job spec's duration stands."""
    (tmp_path / "p.csv").write_text("prompt\na\n")
    spec = tmp_path / "job.yaml"
    spec.write_text('input: p.csv\ndefaults:\n  duration: "10"\n')
    (job,) = build_plan(spec, output=tmp_path / "out", sets={"duration": ""}).jobs
    assert job.payload["duration"] == "10"
