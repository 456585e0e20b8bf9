"""fal's OpenAPI document for an endpoint, read as an endpoint spec (import and --endpoint-spec)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from batchgen.errors import InputError
from batchgen.plan.endpoint import load_spec_file, parse_spec
from batchgen.plan.openapi import import_openapi, looks_like_openapi

FIXTURES = Path(__file__).parent / "fixtures"
SEEDREAM = FIXTURES / "seedream-v4-text-to-image.openapi.json"
KLING_I2V = FIXTURES / "kling-v2.5-turbo-pro-image-to-video.openapi.json"


def test_a_real_document_becomes_a_spec() -> None:
    """The stored Seedream document: id, field order, types, limits; image_size is left out."""
    spec = load_spec_file(SEEDREAM)
    assert spec.id == "fal-ai/bytedance/seedream/v4/text-to-image"
    assert spec.kind == "t2v"
    assert list(spec.params) == [
        "prompt",
        "num_images",
        "max_images",
        "seed",
        "sync_mode",
        "enable_safety_checker",
    ]
    assert spec.params["prompt"].required
    assert (spec.params["num_images"].minimum, spec.params["num_images"].maximum) == (1, 6)
    assert spec.params["enable_safety_checker"].default is True
    assert spec.output == "images"
    assert spec.cost(spec.check({"prompt": "p"})[0]) is None


def test_file_inputs_enums_and_output_of_a_video_document() -> None:
    """image_url and a nullable tail_image_url are image files; duration keeps its text enum."""
    spec = load_spec_file(KLING_I2V)
    assert spec.kind == "i2v"
    image, tail = spec.params["image_url"], spec.params["tail_image_url"]
    assert (image.type, image.accept, image.required) == ("file", ("image",), True)
    assert (tail.type, tail.accept, tail.required) == ("file", ("image",), False)
    assert spec.params["duration"].enum == ("5", "10")
    assert spec.params["prompt"].max_length == 2500
    assert spec.output == "video"
    payload, problems = spec.check({"prompt": "p", "image_url": "https://x/y.png", "duration": 10})
    assert problems == []
    assert payload["duration"] == "10"


def test_imported_yaml_reads_back_as_the_same_spec() -> None:
    """The YAML written by import parses to the spec the JSON gives, with a dated header."""
    text = import_openapi(KLING_I2V.read_text(), "kling.json", "2026-11-28")
    assert text.startswith("# fal-ai/kling-video/v2.5-turbo/pro/image-to-video: endpoint spec")
    assert "kling.json on 2026-11-28" in text
    assert "Price: unknown" in text
    from_yaml, from_json = parse_spec(text, "k.yaml"), load_spec_file(KLING_I2V)
    assert from_yaml.params == from_json.params
    assert (from_yaml.kind, from_yaml.output) == (from_json.kind, from_json.output)
    seedream = import_openapi(SEEDREAM.read_text(), "s.json", "2026-11-28")
    assert "Left out (no single type): image_size" in seedream


def test_document_is_told_by_content_not_extension(tmp_path: Path) -> None:
    """An OpenAPI document named .yaml is still read as one; a YAML spec is not mistaken."""
    renamed = tmp_path / "endpoint.yaml"
    shutil.copy(KLING_I2V, renamed)
    assert load_spec_file(renamed).kind == "i2v"
    assert not looks_like_openapi("id: me/model\nparameters: {}\n")
    assert not looks_like_openapi('{"id": "me/model"}')


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("paths"), "a JSON object with 'paths'"),
        (
            lambda d: d["components"]["schemas"].pop("KlingVideoV25TurboProImageToVideoInput"),
            "points at no schema",
        ),
        (
            lambda d: d["paths"]["/fal-ai/kling-video/v2.5-turbo/pro/image-to-video"]["post"].pop(
                "requestBody"
            ),
            "no JSON request body",
        ),
        (
            lambda d: d["components"]["schemas"]["KlingVideoV25TurboProImageToVideoInput"].update(
                properties={}
            ),
            "no properties",
        ),
        # Parts of the wrong kind: a string where an object or a list belongs.
        (lambda d: d.update(info="hello"), "a part is not of the expected kind"),
        (
            lambda d: d["paths"]["/fal-ai/kling-video/v2.5-turbo/pro/image-to-video"][
                "post"
            ].update(requestBody="x"),
            "a part is not of the expected kind",
        ),
        (
            lambda d: d["components"]["schemas"]["KlingVideoV25TurboProImageToVideoInput"].update(
                {"x-fal-order-properties": 5}
            ),
            "a part is not of the expected kind",
        ),
        (
            lambda d: d["components"]["schemas"]["KlingVideoV25TurboProImageToVideoInput"][
                "properties"
            ]["prompt"].update(maxLength="abc"),
            "max_length must be a whole number",
        ),
    ],
)
def test_malformed_documents_say_what_is_wrong(tmp_path: Path, edit, message: str) -> None:
    """A document missing its paths, schema or request body is an InputError naming the file."""
    doc = json.loads(KLING_I2V.read_text())
    edit(doc)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"broken\.json: ") as caught:
        load_spec_file(path)
    assert message in str(caught.value)


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    """A document that is not valid JSON says where it breaks; import refuses non-OpenAPI."""
    path = tmp_path / "cut.json"
    path.write_text('{\n  "openapi": "3.0.4",\n  "paths": {\n')
    with pytest.raises(InputError, match=r"cut\.json: OpenAPI document: not valid JSON \(line 4"):
        load_spec_file(path)
    with pytest.raises(InputError, match="not an OpenAPI document"):
        import_openapi("id: me/model\n", "spec.yaml", "2026-11-28")


def test_a_document_nested_too_deep_is_refused(tmp_path: Path) -> None:
    """JSON nested deeper than Python recurses is an InputError, not a RecursionError."""
    path = tmp_path / "deep.json"
    path.write_text('{"openapi": "3.0.0", "paths": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}")
    with pytest.raises(InputError, match=r"deep\.json: OpenAPI document: not valid JSON: nested"):
        load_spec_file(path)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("max_items: two", "max_items must be a whole number, 0 or more, not 'two'"),
        ("max_length: abc", "max_length must be a whole number"),
        ("minimum: [1]", "minimum must be a number"),
        ("required: maybe", "required must be true or false"),
        ("enum: calm", "enum must be a list of values"),
        ("default: 99", "its default 99 is above the maximum 10"),
    ],
)
def test_a_spec_files_rules_of_the_wrong_kind_are_input_errors(rule: str, message: str) -> None:
    """A rule that is not what it must be, or a default its own rules refuse, is an
    InputError when the spec is read, never a TypeError later."""
    text = f"id: me/x\nparameters:\n  n: {{type: integer, maximum: 10, {rule}}}\n"
    if rule.startswith(("max_items", "enum")):
        text = f"id: me/x\nparameters:\n  n: {{type: list, items: {{type: string}}, {rule}}}\n"
    with pytest.raises(InputError) as caught:
        parse_spec(text, "spec.yaml")
    assert message in str(caught.value)
