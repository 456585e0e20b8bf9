"""Real cost: each job's billed_usd is its result's x-fal-billable-units times its endpoint's
unit price, from the platform's price list (fetched once, kept in the folder) or, offline, from
the endpoint spec; status, report and manifest show it beside the estimate."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web
from folders import playable_mp4
from runs import FAST, KEY, connection, manifest, mock_config, plan_for, prompts, rows, run
from scripted import scripted

from batchgen.folder.report import write_report
from batchgen.folder.status import read_status, render
from batchgen.mock import MockServer
from batchgen.plan.price import seconds_of
from batchgen.run.billing import PRICING_FILE
from batchgen.run.outcome import RunResult
from batchgen.run.runner import Runner

KLING = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
KLING_PER_SECOND = 0.07  # $0.35 for 5 s plus $0.07 a second: $0.07 a second of video


async def priced_run(source: Path, out: Path, server: MockServer, platform: str) -> RunResult:
    """A run whose connection asks ``platform`` for the price list (the mock preset's own)."""
    conn = replace(connection(server), platform_url=platform)
    return await Runner(plan_for(source, out), conn, timing=FAST).run()


def run_json(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "run.json").read_text(encoding="utf-8"))
    return data


def closed_port() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_billed_cost_is_units_times_the_platform_unit_price(tmp_path: Path) -> None:
    """Every done job's billed_usd is its billable units (seconds of video) times the unit
    price the emulator's price list names; run.json says the prices came from the platform."""
    out = tmp_path / "out"
    async with MockServer(mock_config()) as server:
        result = await priced_run(prompts(tmp_path, 6), out, server, server.base_url)
        stats = server.stats()
    assert result.outcome == "done"
    assert stats["requests"]["pricing"] == {"200": 1}
    for job in rows(out):
        seconds = seconds_of(job.payload["duration"])
        assert seconds is not None
        assert job.billed_usd == round(seconds * KLING_PER_SECOND, 6)
        assert job.billed_usd == job.cost_usd  # the estimate was right here
    pricing = run_json(out)["pricing"]
    assert pricing["source"] == "platform"
    endpoint = rows(out)[0].endpoint
    assert pricing["prices"][endpoint] == {
        "unit_price": KLING_PER_SECOND,
        "unit": "second",
        "currency": "USD",
    }
    cached = json.loads((out / PRICING_FILE).read_text(encoding="utf-8"))
    assert cached["prices"][endpoint]["unit_price"] == KLING_PER_SECOND
    assert cached["fetched_at"].endswith("Z")


async def test_price_list_is_fetched_once_and_kept_in_the_folder(tmp_path: Path) -> None:
    """A second run in the same folder prices its jobs from pricing.json without asking."""
    out = tmp_path / "out"
    async with MockServer(mock_config()) as server:
        await priced_run(prompts(tmp_path, 3), out, server, server.base_url)
        await priced_run(prompts(tmp_path, 3, start=3), out, server, server.base_url)
        stats = server.stats()
    assert sum(stats["requests"]["pricing"].values()) == 1
    assert run_json(out)["pricing"]["source"] == "cache"
    assert len(rows(out)) == 6
    assert all(job.billed_usd is not None for job in rows(out))


async def test_offline_price_list_falls_back_to_the_spec_and_says_so(tmp_path: Path) -> None:
    """A platform that cannot be reached: unit prices come from the spec, run.json says so and
    why, and billed_usd is still units x the spec's price per second."""
    out = tmp_path / "out"
    async with MockServer(mock_config()) as server:
        result = await priced_run(prompts(tmp_path, 3), out, server, closed_port())
    assert result.outcome == "done"
    pricing = run_json(out)["pricing"]
    assert pricing["source"] == "spec"
    assert "pricing unreachable" in pricing["note"]
    assert not (out / PRICING_FILE).exists()
    for job in rows(out):
        seconds = seconds_of(job.payload["duration"])
        assert seconds is not None
        assert job.billed_usd == round(seconds * KLING_PER_SECOND, 6)


async def test_refused_price_list_uses_the_older_one_and_says_why(tmp_path: Path) -> None:
    """A platform answering 401: a stale pricing.json still prices the jobs, and run.json
    names it with the refusal."""
    out = tmp_path / "out"
    out.mkdir()
    stale = {"fetched_at_unix": 0.0, "prices": {KLING: {"unit_price": 0.1, "unit": "second"}}}
    (out / PRICING_FILE).write_text(json.dumps(stale), encoding="utf-8")

    async def refuse(request: web.Request) -> web.StreamResponse:
        return web.json_response({"detail": "admin key needed"}, status=401)

    async with MockServer(mock_config()) as server, scripted(refuse) as platform:
        await priced_run(prompts(tmp_path, 2), out, server, platform.url)
    pricing = run_json(out)["pricing"]
    assert (pricing["source"], pricing["fetched_at"]) == ("cache", "1970-01-01T00:00:00Z")
    assert "pricing answered 401" in pricing["note"]
    assert platform.seen[0].path == "/v1/models/pricing"
    assert platform.seen[0].query == f"endpoint_id={KLING}"
    assert platform.seen[0].headers["Authorization"] == f"Key {KEY}"
    for job in rows(out):
        seconds = seconds_of(job.payload["duration"])
        assert seconds is not None
        assert job.billed_usd == round(seconds * 0.1, 6)


async def test_status_report_and_manifest_show_the_billed_cost(tmp_path: Path) -> None:
    """status (text and JSON) totals billed_usd and counts the jobs that have it, the report
    shows it beside the estimates, and the manifest has a billed_usd column."""
    out = tmp_path / "out"
    async with MockServer(mock_config()) as server:
        await priced_run(prompts(tmp_path, 4), out, server, server.base_url)
    billed = round(sum(job.billed_usd or 0.0 for job in rows(out)), 6)
    status = read_status(out)
    assert (status.to_dict()["billed_usd"], status.to_dict()["billed_jobs"]) == (billed, 4)
    assert status.spent_usd == billed  # the estimate, beside it
    assert f"billed:    ${billed:,.2f} (4 jobs: billed per their results)" in render(status)
    page = write_report(out).read_text(encoding="utf-8")
    assert f"<b>${billed:,.2f}</b><span>billed (4 jobs)</span>" in page
    records = manifest(out)
    assert [r["billed_usd"] for r in records] == [j.billed_usd for j in rows(out)]
    header = (out / "manifest.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert "cost_usd,billed_usd" in header


async def test_result_without_billable_units_leaves_billed_empty(tmp_path: Path) -> None:
    """A provider whose result answer has no x-fal-billable-units: the job is done with
    billed_usd empty (never 0), and status says no result told what it was billed."""
    out = tmp_path / "out"

    async def provider(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            return web.json_response({"status": "IN_QUEUE", "request_id": "rid-1"})
        if request.path.endswith("/status"):
            return web.json_response({"status": "COMPLETED", "request_id": "rid-1"})
        if request.path.endswith(".mp4"):
            return web.Response(body=playable_mp4("rid-1"), content_type="video/mp4")
        return web.json_response({"video": {"url": f"http://{request.host}/v.mp4"}})

    async with scripted(provider) as server:
        result = await run(plan_for(prompts(tmp_path, 1), out), server.url)
    [job] = rows(out)
    assert (result.outcome, job.status) == ("done", "done")
    assert job.billed_usd is None
    assert manifest(out)[0]["billed_usd"] is None
    status = read_status(out)
    assert (status.billed_usd, status.billed_jobs) == (0.0, 0)
    assert "billed:    no job's result said what it was billed" in render(status)
