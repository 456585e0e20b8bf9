"""Endpoint specs: schema as data, friendly coercion, strict validation, price."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from batchgen.errors import InputError
from batchgen.plan.endpoint import DEFAULT_ENDPOINT, builtin_specs, load_spec_file, resolve
from batchgen.plan.params import Param

KLING = builtin_specs()[DEFAULT_ENDPOINT]


def test_builtin_kling_spec_matches_the_protocol_doc() -> None:
    """The built-in Kling spec has the fields, defaults and limits the protocol doc gives."""
    params = KLING.params
    assert list(params) == ["prompt", "duration", "aspect_ratio", "negative_prompt", "cfg_scale"]
    assert params["prompt"].required
    assert params["prompt"].max_length == 2500
    assert params["duration"].enum == ("5", "10")
    assert params["duration"].default == "5"
    assert params["aspect_ratio"].enum == ("16:9", "9:16", "1:1")
    assert params["negative_prompt"].default == "blur, distort, and low quality"
    assert (params["cfg_scale"].minimum, params["cfg_scale"].maximum) == (0, 1)
    assert KLING.owner_app == "fal-ai/kling-video"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"duration": 5}, "5"),
        ({"duration": 10.0}, "10"),
        ({"duration": "10"}, "10"),
    ],
)
def test_duration_numbers_become_the_enum_text(values: dict[str, object], expected: str) -> None:
    """A number where the enum holds text is coerced when the meaning is certain."""
    payload, problems = KLING.check({"prompt": "p", **values})
    assert problems == []
    assert payload["duration"] == expected


def test_numbers_written_as_text_are_coerced() -> None:
    """'0.70' becomes 0.7 and defaults fill what is blank."""
    payload, problems = KLING.check({"prompt": "p", "cfg_scale": "0.70"})
    assert problems == []
    assert payload == {
        "prompt": "p",
        "duration": "5",
        "aspect_ratio": "16:9",
        "negative_prompt": "blur, distort, and low quality",
        "cfg_scale": 0.7,
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("duration", 5.5, "'5.5' is not one of the allowed values: '5', '10'"),
        ("cfg_scale", True, "True is not a number"),
        ("cfg_scale", "nan", "'nan' is not a number"),
        ("cfg_scale", 1.01, "1.01 is above the maximum 1"),
        ("aspect_ratio", "16x9", "'16x9' is not one of the allowed values"),
        ("prompt", ["a"], "must be a single value, not a list"),
    ],
)
def test_strict_where_meaning_is_uncertain(field: str, value: object, message: str) -> None:
    """Values whose meaning is not certain are refused with the allowed values."""
    _, problems = KLING.check({"prompt": "p", field: value})
    assert len(problems) == 1
    assert problems[0][0] == field
    assert message in problems[0][1]


def test_price_rule() -> None:
    """$0.35 for 5 s plus $0.07 per extra second."""
    assert KLING.cost({"duration": "5"}) == 0.35
    assert KLING.cost({"duration": "10"}) == 0.7


def test_unknown_endpoint_is_passthrough_with_unknown_price() -> None:
    """An endpoint with no spec sends parameters as given and has no price."""
    spec = resolve("someone/some-model/v1")
    assert spec.passthrough
    payload, problems = spec.check({"prompt": "p", "steps": "30", "x": None})
    assert (payload, problems) == ({"prompt": "p", "steps": "30"}, [])
    assert spec.cost(payload) is None
    assert resolve("workflows/me/flow/run").owner_app == "workflows/me/flow"


def test_user_spec_file(tmp_path: Path) -> None:
    """A user's spec file defines parameters, a flat price and its own latency."""
    path = tmp_path / "mine.yaml"
    path.write_text(
        "id: me/model\ntypical_latency_s: 20\nparameters:\n  prompt: {required: true}\n"
        "  steps: {type: integer, minimum: 1, maximum: 50, default: 20}\n"
        "price: {flat_usd: 0.02}\n"
    )
    spec = load_spec_file(path)
    assert spec.check({"prompt": "p", "steps": "30"}) == ({"prompt": "p", "steps": 30}, [])
    assert spec.check({"prompt": "p", "steps": "2.5"})[1] == [
        ("steps", "'2.5' is not a whole number")
    ]
    assert spec.cost({}) == 0.02
    assert spec.typical_latency_s == 20


def test_bad_spec_file_is_an_input_error(tmp_path: Path) -> None:
    """A spec file that is not a mapping with an id is refused with its name."""
    path = tmp_path / "bad.yaml"
    path.write_text("- just a list\n")
    with pytest.raises(InputError, match=r"bad\.yaml"):
        load_spec_file(path)


def test_every_builtin_names_its_sources_kind_and_file_kinds() -> None:
    """Built-ins have a kind, a dated header naming the reference doc, and typed file inputs."""
    specs = builtin_specs()
    assert len(specs) >= 20
    assert len({spec.id.rsplit("/", 1)[0] for spec in specs.values()}) >= 12
    for spec in specs.values():
        assert spec.kind in ("t2v", "i2v")
        assert "fal-video-endpoints.md" in spec.notes or "endpoints.ts" in spec.notes, spec.id
        assert "2026" in spec.notes, spec.id
        assert spec.typical_latency_s, spec.id
        assert spec.title, spec.id
        files = [p for p in _leaves(spec.params.values()) if p.is_file]
        assert (spec.kind == "i2v") == any("image" in p.accept for p in files), spec.id
        for param in files:
            assert param.accept, (spec.id, param.name)
            assert param.max_bytes, (spec.id, param.name)
    wan = specs["fal-ai/wan-25-preview/image-to-video"].params["audio_url"]
    assert (wan.accept, wan.max_bytes) == (("audio",), 15_000_000)
    kling26 = specs["fal-ai/kling-video/v2.6/pro/image-to-video"]
    assert kling26.lookup("image_url") == "start_image_url"
    assert not kling26.params["end_image_url"].required


def _leaves(params: Iterable[Param]) -> Iterator[Param]:
    """Every parameter, and every item and field inside lists and objects."""
    for param in params:
        yield param
        yield from _leaves(param.children())


def test_spec_kind_must_be_t2v_or_i2v(tmp_path: Path) -> None:
    """A spec's kind defaults from its file inputs; another word is refused."""
    path = tmp_path / "kind.yaml"
    path.write_text("id: me/model\nparameters:\n  image_url: {type: file, accept: [image]}\n")
    assert load_spec_file(path).kind == "i2v"
    path.write_text("id: me/model\nkind: movie\n")
    with pytest.raises(InputError, match=r"kind\.yaml: 'kind' must be one of t2v, i2v"):
        load_spec_file(path)


def test_the_facts_corrected_in_2026_12_hold() -> None:
    """PixVerse 4.5 fast: $0.30 at 360p and 540p, $0.40 at 720p, camera_movement from its 20
    values, prompts counted in UTF-8 bytes; Kling 2.1 Pro takes an end frame; prompt limits
    of Hailuo 02, Luma Ray 2 Flash and Veo 3.1 (shared/fal-video-endpoints.md)."""
    specs = builtin_specs()
    pixverse = specs["fal-ai/pixverse/v4.5/image-to-video/fast"]
    base = {"prompt": "a", "image_url": "https://example.com/a.png"}
    for resolution, usd in (("360p", 0.30), ("540p", 0.30), ("720p", 0.40)):
        payload, problems = pixverse.check({**base, "resolution": resolution})
        assert (problems, pixverse.cost(payload)) == ([], usd)
    assert len(pixverse.params["camera_movement"].enum or ()) == 20
    assert pixverse.check({**base, "camera_movement": "zoom_in"})[1] == []
    assert pixverse.check({**base, "camera_movement": "dolly"})[1] != []
    assert pixverse.check({**base, "prompt": "é" * 1024})[1] == []  # 2048 bytes
    _, problems = pixverse.check({**base, "prompt": "é" * 1025})
    assert problems == [
        (
            "prompt",
            "is 2050 bytes long in UTF-8, above the maximum 2048 bytes (an accented letter "
            "takes 2, many other letters 3)",
        )
    ]
    assert specs["fal-ai/kling-video/v2.1/pro/image-to-video"].params["tail_image_url"].is_file
    limits = {
        "fal-ai/minimax/hailuo-02/standard/image-to-video": 2000,
        "fal-ai/minimax/hailuo-02/standard/text-to-video": 2000,
        "fal-ai/luma-dream-machine/ray-2-flash/image-to-video": 5000,
        "fal-ai/veo3.1": 20000,
        "fal-ai/veo3.1/fast/image-to-video": 20000,
    }
    assert {i: specs[i].params["prompt"].max_length for i in limits} == limits
