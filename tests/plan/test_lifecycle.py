"""Retired and deprecated endpoints: refused before anything is sent, or warned about."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from batchgen.cli import cli
from batchgen.errors import InputError
from batchgen.mock import MockServer
from batchgen.mock.config import MockConfig
from batchgen.plan.build import build_plan
from batchgen.plan.endpoint import builtin_specs, parse_spec

SORA = ("fal-ai/sora-2/text-to-video", "fal-ai/sora-2/image-to-video")


def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "p.csv"
    path.write_text("prompt,image_url\na lighthouse,https://example.com/a.png\n")
    return path


@pytest.mark.parametrize("endpoint", SORA)
def test_a_retired_endpoint_is_refused_naming_its_replacement(
    tmp_path: Path, endpoint: str
) -> None:
    """Sora 2 (shut down 2026-09-24): plan and run refuse it, exit 2, naming what to use
    instead, and send nothing."""
    with pytest.raises(InputError) as caught:
        build_plan(prompts(tmp_path), endpoint=endpoint)
    message = str(caught.value)
    assert "was retired on 2026-09-24" in message
    assert "use fal-ai/veo3.1" in message
    result = CliRunner().invoke(
        cli, ["run", str(prompts(tmp_path)), "--endpoint", endpoint, "--mock", "--yes"]
    )
    assert result.exit_code == 2, result.output
    assert "nothing was sent" in result.output


def test_a_deprecated_endpoint_is_planned_with_a_warning(tmp_path: Path) -> None:
    """A spec saying ``status: deprecated`` plans, with one warning saying why and instead."""
    spec = tmp_path / "old.yaml"
    spec.write_text(
        "id: fal-ai/old-model\nstatus: deprecated\nsince: 2026-11-10\n"
        "why: superseded\ninstead: fal-ai/new-model\n"
        "parameters:\n  prompt: {type: string, required: true}\n"
    )
    plan = build_plan(prompts(tmp_path), endpoint_spec=spec, extra_columns="ok")
    said = [w for w in plan.warnings if "deprecated" in w]
    assert said == [
        "endpoint 'fal-ai/old-model' is deprecated on 2026-11-10 (superseded): it may stop "
        "answering; use fal-ai/new-model instead"
    ]


def test_a_spec_status_must_be_known() -> None:
    """``status: gone`` is refused, naming the statuses a spec may have."""
    with pytest.raises(InputError, match="'status' must be one of active, deprecated, retired"):
        parse_spec("id: x/y\nstatus: gone\n", "s.yaml")


def test_the_catalog_lists_retired_entries_as_such() -> None:
    """``endpoints`` marks each retired entry and its replacement; --json says its status."""
    listed = CliRunner().invoke(cli, ["endpoints"])
    line = next(ln for ln in listed.output.splitlines() if ln.startswith(SORA[0]))
    assert "[RETIRED 2026-09-24: use fal-ai/veo3.1]" in line
    rows = json.loads(CliRunner().invoke(cli, ["endpoints", "--json"]).output)
    assert {r["id"] for r in rows if r["status"] == "retired"} == set(SORA)
    assert all(builtin_specs()[r["instead"]] for r in rows if r["status"] == "retired")


async def test_the_emulator_no_longer_serves_a_retired_model() -> None:
    """A submit to a retired id is answered 404, as fal answers for an app it dropped."""
    async with (
        MockServer(MockConfig(time_scale=0.001)) as server,
        aiohttp.ClientSession() as session,
    ):
        url = f"{server.base_url}/{SORA[0]}"
        async with session.post(url, json={"prompt": "x"}, headers={"Authorization": "Key k"}) as r:
            assert r.status == 404
            assert "not found" in (await r.text())
