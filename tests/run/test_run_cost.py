"""--max-cost: never submit a job that would take the folder's estimated spend above it."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from aiohttp import web
from runs import FAST, KEY, connection, mock_config, plan_for, prompts, rows, run
from scripted import scripted
from test_run_reach import closed_port
from test_run_resume import until
from test_run_uploads import digest, image, image_plan

from batchgen.api.backoff import Backoff
from batchgen.api.providers import Storage
from batchgen.errors import UsageError
from batchgen.ledger.states import JobRow, JobStatus
from batchgen.ledger.store import Ledger
from batchgen.mock import MockServer
from batchgen.plan.build import build_plan
from batchgen.run.runner import Runner

S = JobStatus


def spent(out: Path) -> float:
    return round(sum(j.cost_usd or 0 for j in rows(out) if j.attempts), 6)


async def test_max_cost_holds_back_jobs_beyond_it(tmp_path: Path) -> None:
    """Jobs that would pass --max-cost stay pending with the reason; the rest run."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 12)  # 4 jobs of 10 s ($0.70), 8 of 5 s ($0.35)
    async with MockServer(mock_config()) as server:
        result = await run(plan_for(source, out, max_cost=2.0), server)
        stats = server.stats()
    assert result.outcome == "failed"
    assert result.held_by_cost > 0
    assert spent(out) <= 2.0
    assert len(stats["submits_by_payload"]) == sum(1 for j in rows(out) if j.attempts)
    held = [j for j in rows(out) if j.status == "pending"]
    assert held
    assert all("--max-cost" in (j.error or "") for j in held)
    assert "--max-cost reached" in result.message


async def test_max_cost_counts_earlier_runs_of_the_folder(tmp_path: Path) -> None:
    """The spend of earlier runs in the same folder counts against --max-cost."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 12)
    async with MockServer(mock_config()) as server:
        await run(plan_for(source, out, max_cost=1.0), server)
        first = spent(out)
        await run(plan_for(source, out, max_cost=2.5), server)
        second = spent(out)
        result = await run(plan_for(source, out), server)
    assert 0 < first <= 1.0 < second <= 2.5
    assert result.outcome == "done"


async def test_max_cost_needs_a_known_price(tmp_path: Path) -> None:
    """--max-cost with an endpoint of unknown price is refused before anything is sent."""
    source = prompts(tmp_path, 2)
    plan = build_plan(
        source, endpoint="someone/some-model", output=tmp_path / "out", run={"max_cost": 5}
    )
    async with MockServer(mock_config()) as server:
        with pytest.raises(UsageError, match="price"):
            await run(plan, server)


async def test_a_submit_that_could_not_connect_keeps_its_cost_held(tmp_path: Path) -> None:
    """A job whose POST could not connect (nothing sent; its row back to pending) keeps its
    cost held against --max-cost while it waits to try again: a job whose upload ends in
    that wait is held back, not sent beside it."""
    out = tmp_path / "out"
    cat, dog = image(tmp_path, "cat.png"), image(tmp_path, "dog.png")
    plan = image_plan(tmp_path, out, [dog, cat], max_cost=0.25, concurrency=2)  # one job
    uploaded = asyncio.Event()

    async def storage(request: web.Request) -> web.StreamResponse:
        base = f"http://{request.host}"
        if request.path.endswith("/token"):
            return web.json_response({"token": "t", "token_type": "Bearer", "base_url": base})
        await uploaded.wait()  # the dog's upload ends when the test says
        return web.json_response({"access_url": f"{base}/files/dog.png"})

    def row(image: Path) -> JobRow:
        return next(job for job in rows(out) if job.files["image_url"]["path"] == str(image))

    async with scripted(storage) as store:
        with Ledger.in_folder(out) as ledger:  # the cat was uploaded before: it goes first
            ledger.record_upload(digest(cat), store.url, f"{store.url}/cat", cat.stat().st_size)
        api = connection(f"http://127.0.0.1:{closed_port()}")  # no API: connections refused
        api = dataclasses.replace(api, storage=Storage("fal", store.url, "X", KEY))
        slow = Backoff(base=5000.0, cap=5000.0, attempts=3, random=lambda: 0.5)  # 5 s apart
        runner = Runner(plan, api, timing=dataclasses.replace(FAST, backoff=slow))
        running = asyncio.create_task(runner.run())
        # The cat's POST could not connect: back to pending, it waits to try again.
        await until(lambda: rows(out) and row(cat).submitted_at is not None)
        await until(lambda: row(cat).status is S.PENDING)
        uploaded.set()
        await until(lambda: row(dog).submitted_at is not None or bool(row(dog).error))
        runner.abort()
        await running
    assert row(dog).submitted_at is None
    assert "--max-cost" in (row(dog).error or "")
