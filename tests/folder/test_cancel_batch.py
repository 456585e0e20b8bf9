"""batchgen cancel stops a batch: pending jobs too, a live run beside it, a summary."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import runs
from folders import SubmitWatch, make_folder

from batchgen.api.client import QueueClient
from batchgen.folder.cancel import NO_REQUEST_ID, cancel_jobs, select, summary
from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
from batchgen.mock import MockServer
from batchgen.run.runner import Runner

S = JobStatus
FOREVER = 3_600_000.0  # emulated seconds: an hour of real time at the test scale


class Provider:
    """Answers every cancel with one word and records the request ids asked."""

    def __init__(self, word: str = "CANCELLATION_REQUESTED") -> None:
        self.word = word
        self.asked: list[str] = []

    async def cancel(self, request_id: str) -> str:
        self.asked.append(request_id)
        return self.word


async def test_a_live_run_beside_cancel_submits_nothing_more(tmp_path: Path) -> None:
    """Cancel beside a live run: its jobs at the provider are cancelled, its pending ones
    marked cancelled; the run submits nothing more and ends with every job cancelled."""
    out = tmp_path / "out"
    plan = runs.plan_for(runs.prompts(tmp_path, 6), out, concurrency=2)
    watch = SubmitWatch(2)
    async with MockServer(runs.mock_config(latency=FOREVER, max_in_progress=1)) as server:
        runner = Runner(plan, runs.connection(server), timing=runs.FAST, reporter=watch)
        task = asyncio.create_task(runner.run())
        await asyncio.wait_for(watch.reached.wait(), 30)
        async with aiohttp.ClientSession() as session:
            client = QueueClient(
                session,
                base_url=server.base_url,
                endpoint=plan.endpoint,
                authorization=f"Key {runs.KEY}",
            )
            with Ledger.in_folder(out) as ledger:
                jobs, skipped = select(ledger)
                outcomes = await cancel_jobs(ledger, lambda _e: client, jobs)
        try:
            result = await asyncio.wait_for(task, 30)
        finally:
            runner.abort()
        stats = server.stats()
    assert skipped == []
    assert sum(stats["submits_by_payload"].values()) == 2
    assert watch.seen == 2
    assert [job.status for job in runs.rows(out)] == [S.CANCELLED] * 6
    assert result.message.startswith("0 of 6 done; 6 cancelled; spent $")
    counts = dict(summary(outcomes))
    assert counts["cancelled before submit"] == 4
    assert sum(counts.values()) == 6


async def test_pending_job_is_never_submitted_after_cancel(tmp_path: Path) -> None:
    """A run that reads a job pending and reaches its POST after cancel moved it leaves it
    alone: the emulator sees no submit for it."""
    out = tmp_path / "out"
    plan = runs.plan_for(runs.prompts(tmp_path, 3), out)
    with Ledger.in_folder(out) as ledger:
        ledger.sync(plan.jobs, plan.endpoint.id)
        jobs, _ = select(ledger)
        outcomes = await cancel_jobs(ledger, lambda _e: Provider(), jobs)
    assert {o.answer for o in outcomes} == {"not submitted"}
    async with MockServer(runs.mock_config()) as server:
        result = await runs.run(plan, server)
        stats = server.stats()
    assert stats["submits_by_payload"] == {}
    assert result.message.startswith("0 of 3 done; 3 cancelled; spent $")


async def test_job_caught_submitting_is_cancelled_when_its_request_id_is_known(
    tmp_path: Path,
) -> None:
    """A job caught submitting is read again until the run records its request id, then
    cancelled at the provider; one that never gets one is cancelled here only, saying so."""
    folder = make_folder(tmp_path, "prompt\na\nb\nc\n")
    a, b, _c = folder.keys
    for key in (a, b):
        folder.ledger.transition(key, S.SUBMITTING, attempts=1)
    pauses: list[float] = []

    async def run_answers(seconds: float) -> None:  # the live run records a's id meanwhile
        pauses.append(seconds)
        if folder.ledger.get(a).status is S.SUBMITTING:
            folder.ledger.transition(a, S.QUEUED, request_id=f"req-{a}")

    provider = Provider()
    jobs, _ = select(folder.ledger, include_pending=False)
    outcomes = await cancel_jobs(
        folder.ledger, lambda _e: provider, jobs, settle=1.0, pause=run_answers
    )
    assert provider.asked == [f"req-{a}"]
    answers = {o.key: (o.before, o.after, o.answer) for o in outcomes}
    assert answers == {
        a: ("queued", "cancelled", "CANCELLATION_REQUESTED"),
        b: ("submitting", "cancelled", NO_REQUEST_ID),
    }
    assert len(pauses) == 1 + 20  # a: one look; b: a second of 50 ms looks, none slept here
    assert "may exist at the provider" in (folder.ledger.get(b).error or "")
    assert folder.ledger.get(_c).status is S.PENDING


async def test_summary_counts_jobs_by_answer(tmp_path: Path) -> None:
    """The summary counts outcomes by the kind of answer, most common first."""
    folder = make_folder(tmp_path, "prompt\na\nb\nc\nd\ne\nf\n")
    a, b, c, d, e, f = folder.keys
    folder.queued(a)
    folder.queued(b)
    folder.running(c)
    folder.done(d)
    jobs, skipped = select(folder.ledger, [a, b, c, d, e])
    outcomes = skipped + await cancel_jobs(folder.ledger, lambda _e: Provider(), jobs)
    assert summary(outcomes) == [
        ("cancelled at the provider", 2),
        ("nothing to cancel: done", 1),
        (
            "stopping at the provider (they were running): left cancelling, a run follows "
            "them until the provider says how they ended",
            1,
        ),
        ("cancelled before submit", 1),
    ]
    assert folder.ledger.get(f).status is S.PENDING


def test_rows_select_the_jobs_of_those_input_rows(tmp_path: Path) -> None:
    """Rows name every job planned from them; jobs of other rows are left alone."""
    folder = make_folder(tmp_path, "prompt\na\nb\nc\nd\ne\n")
    jobs, skipped = select(folder.ledger, rows={2, 4, 5})
    assert [job.row for job in jobs] == [2, 4, 5]
    assert skipped == []
    both, _ = select(folder.ledger, [folder.keys[0][:8]], rows={5})
    assert [job.row for job in both] == [1, 5]
