"""The price language: per second (flat or by parameters), per video by a table, unknown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchgen.errors import InputError
from batchgen.plan.endpoint import builtin_specs, load_spec_file
from batchgen.plan.price import money, parse_price, seconds_of

SPECS = builtin_specs()

# Prices from shared/fal-video-endpoints.md (Pixverse: the higher of two sources, see its file).
REFERENCE: list[tuple[str, dict[str, Any], float]] = [
    ("fal-ai/kling-video/v2.5-turbo/pro/text-to-video", {"duration": "10"}, 0.70),
    ("fal-ai/kling-video/v2.5-turbo/pro/image-to-video", {"duration": "5"}, 0.35),
    ("fal-ai/kling-video/v2.1/master/text-to-video", {"duration": "10"}, 2.80),
    ("fal-ai/kling-video/v2.1/master/image-to-video", {"duration": "5"}, 1.40),
    ("fal-ai/kling-video/v2.1/pro/image-to-video", {"duration": "10"}, 0.98),
    ("fal-ai/kling-video/v2.6/pro/image-to-video", {"generate_audio": False}, 0.35),
    ("fal-ai/kling-video/v2.6/pro/image-to-video", {"duration": "10"}, 1.40),
    ("fal-ai/veo3.1", {"resolution": "1080p"}, 3.20),
    ("fal-ai/veo3.1", {"generate_audio": "false", "duration": "4s"}, 0.80),
    ("fal-ai/veo3.1/image-to-video", {"resolution": "4k"}, 4.80),
    ("fal-ai/veo3.1/image-to-video", {"resolution": "4k", "generate_audio": False}, 3.20),
    ("fal-ai/veo3.1/fast", {"generate_audio": False}, 0.80),
    ("fal-ai/veo3.1/fast/image-to-video", {"duration": "6s"}, 0.90),
    ("fal-ai/veo3.1/fast/image-to-video", {"resolution": "4k", "duration": "4s"}, 1.40),
    ("fal-ai/sora-2/text-to-video", {"duration": 12}, 1.20),
    ("fal-ai/sora-2/image-to-video", {}, 0.40),
    ("fal-ai/minimax/hailuo-02/standard/image-to-video", {}, 0.27),
    ("fal-ai/minimax/hailuo-02/standard/image-to-video", {"resolution": "512P"}, 0.102),
    ("fal-ai/minimax/hailuo-02/standard/text-to-video", {"duration": "10"}, 0.45),
    ("fal-ai/wan-25-preview/image-to-video", {"resolution": "480p"}, 0.25),
    ("fal-ai/wan-25-preview/text-to-video", {"resolution": "720p", "duration": "10"}, 1.00),
    ("fal-ai/wan-25-preview/text-to-video", {}, 0.75),
    ("fal-ai/bytedance/seedance/v1/pro/image-to-video", {}, 0.62),
    ("fal-ai/bytedance/seedance/v1/pro/text-to-video", {"resolution": "720p"}, 0.27),
    ("fal-ai/luma-dream-machine/ray-2-flash/image-to-video", {}, 0.20),
    ("fal-ai/luma-dream-machine/ray-2-flash/image-to-video", {"resolution": "1080p"}, 0.80),
    (
        "fal-ai/luma-dream-machine/ray-2-flash/image-to-video",
        {"resolution": "720p", "duration": "9s"},
        0.80,
    ),
    ("fal-ai/pixverse/v4.5/image-to-video/fast", {"resolution": "360p"}, 0.30),
    ("fal-ai/pixverse/v4.5/image-to-video/fast", {"resolution": "540p"}, 0.30),  # as 360p
    ("fal-ai/pixverse/v4.5/image-to-video/fast", {}, 0.40),
]


@pytest.mark.parametrize(("endpoint", "values", "usd"), REFERENCE)
def test_builtin_prices_match_the_reference(endpoint: str, values: dict[str, Any], usd: float):
    """Each built-in prices a checked payload (defaults filled) as the reference table does."""
    spec = SPECS[endpoint]
    files = {n: "https://example.com/x.png" for n, p in spec.params.items() if p.required}
    payload, problems = spec.check({**files, "prompt": "a cat", **values})
    assert problems == []
    assert spec.cost(payload) == pytest.approx(usd)


def test_every_builtin_has_a_price_and_names_its_drivers() -> None:
    """A built-in's price is known or says why not (no source publishes one: never a
    guess), and every parameter a rule reads is a parameter of its spec."""
    for spec in SPECS.values():
        assert spec.price.known or "no published price" in spec.price.unknown_reason, spec.id
        assert set(spec.price.drivers) <= set(spec.params), spec.id
    veo = SPECS["fal-ai/veo3.1"].price
    assert veo.drivers == ("duration", "resolution", "generate_audio")
    luma = SPECS["fal-ai/luma-dream-machine/ray-2-flash/image-to-video"].price
    assert luma.drivers == ("resolution", "duration")


@pytest.mark.parametrize(
    ("endpoint", "summary"),
    [
        ("fal-ai/kling-video/v2.5-turbo/pro/text-to-video", "$0.35 per 5 s, +$0.07/s"),
        ("fal-ai/veo3.1", "$0.20–0.60/s by resolution, generate_audio"),
        ("fal-ai/sora-2/text-to-video", "$0.10/s"),
        ("fal-ai/pixverse/v4.5/image-to-video/fast", "$0.30–0.40 per video by resolution"),
        (
            "fal-ai/luma-dream-machine/ray-2-flash/image-to-video",
            "$0.20–1.60 per video by resolution, duration",
        ),
    ],
)
def test_summary_is_one_line_for_listings(endpoint: str, summary: str) -> None:
    """The summary states the rate or its range and what it depends on."""
    assert SPECS[endpoint].price.summary() == summary


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("8s", 8.0), ("5", 5.0), (4, 4.0), (" 10 S ", 10.0), ("x", None), (True, None), (None, None)],
)
def test_durations_read_as_seconds(value: object, seconds: float | None) -> None:
    """'8s', '5' and 4 are seconds; anything else is no duration (and an unknown price)."""
    assert seconds_of(value) == seconds


def test_money_keeps_cents_and_significant_digits() -> None:
    """$0.20, $0.098, $0.0243: at least cents, no trailing zeros past them."""
    assert (money(0.2), money(0.098), money(0.0243), money(1.6)) == (
        "$0.20",
        "$0.098",
        "$0.0243",
        "$1.60",
    )


def test_unknown_price_costs_none_never_zero() -> None:
    """'unknown', no block, and a per-second rule without its duration all cost None."""
    assert parse_price("unknown", "f").cost({}) is None
    assert parse_price(None, "f").cost({"duration": "5"}) is None
    assert parse_price({"unknown": "not published"}, "f").summary() == "unknown (not published)"
    rule = parse_price({"per_second": {"parameter": "duration", "usd": 0.1}}, "f")
    assert rule.cost({"duration": "long"}) is None
    table = parse_price({"per_clip": {"rates": [{"when": {"q": "hi"}, "usd": 1}]}}, "f")
    assert (table.cost({"q": "HI"}), table.cost({"q": "lo"})) == (1.0, None)


def test_user_spec_with_a_table_and_multipliers(tmp_path: Path) -> None:
    """A user's per-video table with multipliers prices and summarises like a built-in."""
    path = tmp_path / "mine.yaml"
    path.write_text(
        "id: me/model\nparameters:\n  prompt: {required: true}\n"
        "  quality: {enum: [low, high], default: low}\n  loop: {type: boolean, default: false}\n"
        "price:\n  per_clip:\n    usd: 0.1\n    rates:\n      - {when: {quality: high}, usd: 0.3}\n"
        "    multiply: {loop: {true: 1.5}}\n"
    )
    spec = load_spec_file(path)
    assert spec.cost(spec.check({"prompt": "p"})[0]) == 0.1
    assert spec.cost(spec.check({"prompt": "p", "quality": "high", "loop": "yes"})[0]) == 0.45
    assert spec.price.summary() == "$0.10–0.45 per video by quality, loop"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("[1, 2]", "must be a mapping"),
        ("{flat_usd: 1, per_clip: {usd: 1}}", "exactly one of"),
        ("{flat_usd: cheap}", "flat_usd must be a number"),
        ("{flat_usd: -1}", "must not be negative"),
        ("{per_second: {usd: 0.1}}", "per_second needs 'parameter'"),
        ("{per_second: {parameter: duration, usd: 0.1, base_usd: 1}}", "either base_usd"),
        ("{per_second: {parameter: duration, rate: 0.1}}", "unknown key 'rate'"),
        ("{per_clip: {usd: 1, rates: {a: 1}}}", "rates must be a list"),
        ("{per_clip: {usd: 1, rates: [{when: {}, usd: 1}]}}", "rates item 1"),
        ("{per_clip: {usd: 1, multiply: [resolution]}}", "multiply must map"),
        ("{per_clip: {}}", "per_clip.usd must be a number"),
    ],
)
def test_malformed_price_blocks_name_the_file(tmp_path: Path, block: str, message: str) -> None:
    """Every malformed price block is an InputError naming the spec file and the fault."""
    path = tmp_path / "bad-price.yaml"
    path.write_text(f"id: me/model\nprice: {block}\n")
    with pytest.raises(InputError, match=r"bad-price\.yaml: price: ") as caught:
        load_spec_file(path)
    assert message in str(caught.value)


def test_plan_breakdown_groups_by_every_price_driver(tmp_path: Path) -> None:
    """A Veo plan's cost breakdown has one group per duration, resolution and audio setting."""
    from batchgen.plan.build import build_plan

    rows = tmp_path / "veo.csv"
    rows.write_text(
        "prompt,duration,resolution,generate_audio\n"
        "a,8s,720p,true\nb,8s,720p,yes\nc,4s,4k,false\nd,8s,1080p,true\n"
    )
    plan = build_plan(rows, endpoint="fal-ai/veo3.1", output=tmp_path / "out")
    assert plan.breakdown() == [
        {
            "duration": "4s",
            "resolution": "4k",
            "generate_audio": False,
            "jobs": 1,
            "cost_usd": 1.6,
        },
        {
            "duration": "8s",
            "resolution": "1080p",
            "generate_audio": True,
            "jobs": 1,
            "cost_usd": 3.2,
        },
        {
            "duration": "8s",
            "resolution": "720p",
            "generate_audio": True,
            "jobs": 2,
            "cost_usd": 6.4,
        },
    ]
    assert plan.estimated_cost == pytest.approx(11.2)
