"""An endpoint batchgen has no spec for, planned from fal's model and pricing APIs (the
emulator on loopback stands in for fal's platform): validated, priced, refused when inactive,
served from the cache once the API is gone; ``endpoints check`` and ``refresh``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from runs import KEY, mock_config

from batchgen.cli import cli
from batchgen.mock import MockServer
from batchgen.plan.endpoint import builtin_specs, parse_spec

NEW = "acme/new-model/text-to-video"
OLD = "acme/old-model/text-to-video"
SPEC = """id: {id}
title: A new model
typical_latency_s: 5
status: {status}
parameters:
  prompt: {{type: string, required: true, max_length: 500}}
  style: {{type: string, enum: [calm, wild], default: calm}}
  duration: {{type: integer, enum: [4, 8], default: 4}}
  image_urls: {{type: list, max_items: 3, items: {{type: file, accept: [image]}}}}
price: {{per_second: {{parameter: duration, usd: 0.05}}}}
"""


def fal_like(**specs: str) -> MockServer:
    """The emulator with the built-ins and the given spec texts, as fal's platform."""
    extra = {ident: parse_spec(text, "test") for ident, text in specs.items()}
    return MockServer(mock_config(specs={**builtin_specs(), **extra}))


def new_models() -> dict[str, str]:
    return {
        NEW: SPEC.format(id=NEW, status="active"),
        OLD: SPEC.format(id=OLD, status="retired"),
    }


def cached(folder: Path) -> list[str]:
    """The names of the cache files in ``folder`` (none when it does not exist)."""
    return [p.name for p in folder.glob("*.json")] if folder.is_dir() else []


async def invoke(*args: str) -> Result:
    """The CLI in a thread (the emulator serves on this loop), with fal's key set."""
    return await asyncio.to_thread(
        CliRunner().invoke, cli, list(args), env={"FAL_KEY": KEY}, catch_exceptions=False
    )


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Plans may ask a platform API; the cache is a fresh folder (returned)."""
    monkeypatch.delenv("BATCHGEN_OFFLINE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "batchgen" / "models"


async def test_an_unknown_id_is_validated_priced_refused_and_cached(
    tmp_path: Path, online: Path
) -> None:
    """Planned through the model API: a bad enum is exit 2 naming the allowed values; the
    price comes from the pricing API ($0.05/s x 4 s); an inactive model is refused as
    retired; once the API is gone, the cache answers the same plan."""
    source = tmp_path / "p.csv"
    source.write_text("prompt,style\na calm sea,\na wild sea,wild\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,style\nx,loud\n")
    async with fal_like(**new_models()) as server:
        platform = ["--platform-url", server.base_url]
        planned = await invoke("plan", str(source), "--endpoint", NEW, *platform, "--json")
        refused = await invoke("plan", str(bad), "--endpoint", NEW, *platform)
        retired = await invoke("plan", str(source), "--endpoint", OLD, *platform)
        asked = server.stats()["requests"]
    assert planned.exit_code == 0, planned.output
    data = json.loads(planned.stdout)
    assert data["estimated_cost_usd"] == pytest.approx(0.4)
    assert any("spec read now from fal's model API" in w for w in data["warnings"])
    assert refused.exit_code == 2
    assert "column 'style': 'loud' is not one of the allowed values: 'calm', 'wild'" in (
        refused.output
    )
    assert retired.exit_code == 2
    assert f"endpoint {OLD!r} was retired (fal lists it as inactive)" in retired.output
    assert asked["models"] == {"200": 2}  # the second plan of NEW read the cache
    assert sorted(p.split(".")[0] for p in cached(online)) == [
        "acme%2Fnew-model%2Ftext-to-video",
        "acme%2Fold-model%2Ftext-to-video",
    ]
    # The platform is gone: the cache answers, and says so.
    again = await invoke("plan", str(source), "--endpoint", NEW, "--json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["estimated_cost_usd"] == pytest.approx(0.4)
    assert any("cached on" in w for w in data["warnings"])
    offline = await invoke("plan", str(source), "--endpoint", "acme/other/x", "--offline")
    assert offline.exit_code == 0
    assert "no cached spec, and --offline asks none" in offline.output
    assert "has no spec: every column is sent as given" in offline.output


async def test_a_platform_that_cannot_answer_leaves_the_passthrough_with_its_reason(
    tmp_path: Path, online: Path
) -> None:
    """A platform API that is not there: the plan runs as passthrough, saying why."""
    source = tmp_path / "p.csv"
    source.write_text("prompt\na\n")
    async with fal_like() as server:
        gone = server.base_url
    result = await invoke("plan", str(source), "--endpoint", NEW, "--platform-url", gone)
    assert result.exit_code == 0, result.output
    assert "fal's model API could not say (fal's model API unreachable" in result.output
    assert "has no spec" in result.output
    assert cached(online) == []


async def test_endpoints_check_finds_every_difference_and_plan_marks_a_stale_price(
    tmp_path: Path, online: Path
) -> None:
    """Against a platform serving the built-ins as they are, check says all agree (exit 0);
    where fal changed Veo 3.1 (a new enum value, a default, a new parameter, a price), it
    lists each (exit 1), and a later plan calls the estimate possibly stale."""
    veo = builtin_specs()["fal-ai/veo3.1"]
    params = dict(veo.params)
    params["resolution"] = dataclasses.replace(
        params["resolution"], enum=("720p", "1080p", "4k", "8k"), default="1080p"
    )
    params["loop"] = dataclasses.replace(params["seed"], name="loop", type="boolean")
    changed = dataclasses.replace(
        veo,
        params=params,
        price=parse_spec(
            "id: x/y\nprice: {per_second: {parameter: duration, usd: 0.25}}", "t"
        ).price,
    )
    async with MockServer(mock_config()) as server:
        same = await invoke("endpoints", "check", "--platform-url", server.base_url)
    assert same.exit_code == 0, same.output
    count = len(builtin_specs())
    assert f"{count} of {count} as fal says; 0 differ" in same.output
    specs = {**builtin_specs(), veo.id: changed}
    async with MockServer(mock_config(specs=specs)) as server:
        differ = await invoke(
            "endpoints", "check", veo.id, "fal-ai/veo3.1/fast", "--platform-url", server.base_url
        )
    assert differ.exit_code == 1
    lines = differ.output.splitlines()
    assert lines[0] == "fal-ai/veo3.1: differs"
    assert "  parameters added at fal: loop" in lines
    assert "  resolution: default ours '720p', fal's '1080p'" in lines
    assert "  resolution: enum values added at fal: '8k'; gone: none" in lines
    assert "  price: fal's pricing API says $0.25 per second, the spec $0.40" in lines
    assert "fal-ai/veo3.1/fast: as fal says" in lines
    assert lines[-1] == "1 of 2 as fal says; 1 differ"
    source = tmp_path / "p.csv"
    source.write_text("prompt\na\n")
    planned = await invoke("plan", str(source), "--endpoint", veo.id, "--offline")
    assert "the estimate for fal-ai/veo3.1 may be stale: fal's pricing API says $0.25" in (
        planned.output
    )


async def test_endpoints_refresh_asks_again_for_every_cached_id(
    tmp_path: Path, online: Path
) -> None:
    """With nothing cached, refresh asks for ids; after a plan cached one, a bare refresh
    fetches it again; an id fal does not list is exit 1."""
    nothing = await invoke("endpoints", "refresh")
    assert nothing.exit_code == 2
    assert "nothing cached to refresh" in nothing.output
    source = tmp_path / "p.csv"
    source.write_text("prompt\na\n")
    async with fal_like(**new_models()) as server:
        platform = ["--platform-url", server.base_url]
        await invoke("plan", str(source), "--endpoint", NEW, *platform)
        again = await invoke("endpoints", "refresh", *platform)
        missing = await invoke("endpoints", "refresh", "acme/none", *platform)
        asked = server.stats()["requests"]["models"]
    assert again.exit_code == 0, again.output
    assert again.output.startswith(f"{NEW}: refreshed (active, 0.05 USD per second)")
    assert missing.exit_code == 1
    assert "acme/none: fal lists no such model" in missing.output
    assert asked == {"200": 3}


@pytest.mark.parametrize("endpoint", ["fal-ai/zzz/../veo3.1", "a/b?c=d", "a/b#frag", "solo"])
def test_an_endpoint_id_that_is_no_path_is_refused_before_anything(
    tmp_path: Path, endpoint: str
) -> None:
    """An id with ``..``, a query, a fragment or one segment would lead the URL elsewhere:
    exit 2 naming it, nothing asked or sent."""
    source = tmp_path / "p.csv"
    source.write_text("prompt,duration\na,99s\n")
    result = CliRunner().invoke(cli, ["run", str(source), "--endpoint", endpoint, "--mock"])
    assert result.exit_code == 2, result.output
    assert f"--endpoint: {endpoint!r} is not an endpoint id" in result.output
    assert not (tmp_path / "out").exists()


def test_a_cache_file_naming_another_endpoint_is_not_followed(tmp_path: Path, online: Path) -> None:
    """A cached answer edited (or misplaced) to name another endpoint is ignored: the id
    stays passthrough, never run as the endpoint the file names."""
    from batchgen.plan.falspecs import FalSpecs

    fal = FalSpecs(None, folder=online)
    veo = builtin_specs()["fal-ai/veo3.1"]
    from batchgen.mock.models import model_entry

    online.mkdir(parents=True)
    entry = {
        "endpoint_id": "fal-ai/veo3.1",
        "fetched_at": "2026-12-07T00:00:00Z",
        "platform_url": "http://x",
        "model": model_entry(veo, expand=True),
        "price": None,
    }
    fal.path("acme/basic").write_text(json.dumps(entry), encoding="utf-8")
    assert fal.cached("acme/basic") is None
    source = tmp_path / "p.csv"
    source.write_text("prompt\na\n")
    result = CliRunner().invoke(cli, ["plan", str(source), "--endpoint", "acme/basic", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["endpoint"] == "acme/basic"
    assert "has no spec" in result.output


async def test_refresh_asks_under_batchgen_offline_and_goes_on_past_a_failure(
    tmp_path: Path, online: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """refresh is asked to ask: BATCHGEN_OFFLINE does not stop it; an id whose answer
    cannot be read is named and the others are still refreshed (exit 1)."""
    monkeypatch.setenv("BATCHGEN_OFFLINE", "1")
    async with fal_like(**new_models()) as server:
        done = await invoke(
            "endpoints", "refresh", "acme/none", NEW, "--platform-url", server.base_url
        )
    assert done.exit_code == 1
    assert "acme/none: fal lists no such model" in done.output
    assert f"{NEW}: refreshed (active, 0.05 USD per second)" in done.output


def test_an_implausible_unit_price_is_unknown_and_underscores_are_no_number() -> None:
    """fal's unit price of 1e308 (or NaN) is no price: unknown, never $inf; a cell 1_0 is not
    the number 10."""
    from batchgen.plan.falspecs import price_block

    params = {"duration": {"type": "integer"}}
    for usd in (1e308, float("nan"), -1.0):
        block = price_block({"unit_price": usd, "unit": "second"}, params)
        assert "unknown" in block
    assert price_block({"unit_price": 0.05, "unit": "second"}, params) == {
        "per_second": {"parameter": "duration", "usd": 0.05}
    }
    duration = builtin_specs()["fal-ai/wan/v2.7/text-to-video"].params["duration"]
    with pytest.raises(ValueError, match="is not a whole number"):
        duration.coerce("1_0")
