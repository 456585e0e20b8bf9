"""batchgen cancel: each provider answer maps to a job state; real cancels on the emulator."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest
import runs
from click.testing import CliRunner
from folders import Folder, SubmitWatch, make_folder
from mock_fixtures import AUTH, KLING, fast_config, job_url, submit, wait_completed

from batchgen.api.client import QueueClient
from batchgen.cli import cli
from batchgen.errors import FatalError, RetryableError, UsageError
from batchgen.folder.cancel import cancel_jobs, select
from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
from batchgen.mock import MockServer
from batchgen.plan.endpoint import resolve
from batchgen.run.runner import Runner

S = JobStatus
FOREVER = 3_600_000.0  # emulated seconds: an hour of real time at the test scale
PROMPTS = "prompt\na\nb\nc\nd\ne\n"


class FakeProvider:
    """Answers cancels from a table: a provider word, or an exception to raise."""

    def __init__(self, answers: dict[str, str | Exception]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def cancel(self, request_id: str) -> str:
        self.asked.append(request_id)
        answer = self.answers[request_id]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def cancel_all(folder: Folder, provider: FakeProvider, **kw: object) -> dict[str, str]:
    jobs, _ = select(folder.ledger, **kw)  # type: ignore[arg-type]
    outcomes = await cancel_jobs(folder.ledger, lambda _endpoint: provider, jobs)
    return {o.key: o.answer for o in outcomes}


async def test_each_answer_decides_the_state(tmp_path: Path) -> None:
    """Requested or 404: cancelled; already completed: unchanged; unclear: cancelling."""
    folder = make_folder(tmp_path, PROMPTS)
    a, b, c, d, e = folder.keys
    folder.queued(a)
    folder.running(b)
    folder.running(c)
    folder.queued(d)
    provider = FakeProvider(
        {
            f"req-{a}": "CANCELLATION_REQUESTED",
            f"req-{b}": "ALREADY_COMPLETED",
            f"req-{c}": "NOT_FOUND",
            f"req-{d}": "REFUSED",
        }
    )
    answers = await cancel_all(folder, provider, include_pending=False)
    assert set(answers) == {a, b, c, d}  # e is pending: not in flight (--in-flight)
    get = folder.ledger.get
    assert get(a).status is S.CANCELLED
    assert get(a).error == "cancelled by user"
    assert get(b).status is S.RUNNING
    assert get(c).status is S.CANCELLED
    assert get(c).error == "cancelled: unknown to provider"
    assert get(d).status is S.CANCELLING
    assert "REFUSED" in (get(d).error or "")
    assert get(e).status is S.PENDING


async def test_running_job_cancel_is_followed_to_its_outcome(tmp_path: Path) -> None:
    """A running job whose cancel was accepted is left cancelling, for a run to follow until
    the provider says how it ended (it may still finish and bill)."""
    folder = make_folder(tmp_path, PROMPTS)
    key = folder.keys[0]
    folder.running(key)
    await cancel_all(folder, FakeProvider({f"req-{key}": "CANCELLATION_REQUESTED"}))
    job = folder.ledger.get(key)
    assert (job.status, job.error_type) == (S.CANCELLING, "cancelled")
    assert "a run follows it" in (job.error or "")


async def test_pending_cancel_completes_when_provider_is_done(tmp_path: Path) -> None:
    """A job left 'cancelling' that turns out completed goes to 'completed' for the run."""
    folder = make_folder(tmp_path, PROMPTS)
    key = folder.keys[0]
    folder.running(key)
    folder.ledger.transition(key, S.CANCELLING)
    await cancel_all(folder, FakeProvider({f"req-{key}": "ALREADY_COMPLETED"}))
    assert folder.ledger.get(key).status is S.COMPLETED


async def test_errors_leave_the_job_and_fatal_stops(tmp_path: Path) -> None:
    """An API error leaves the job as it was (not ok); a fatal error is raised."""
    folder = make_folder(tmp_path, PROMPTS)
    a = folder.keys[0]
    folder.queued(a)
    jobs, _ = select(folder.ledger, include_pending=False)
    provider = FakeProvider({f"req-{a}": RetryableError("503 from the ingress")})
    (outcome,) = await cancel_jobs(folder.ledger, lambda _e: provider, jobs)
    assert not outcome.ok
    assert outcome.after == "queued"
    assert folder.ledger.get(a).status is S.QUEUED
    provider.answers[f"req-{a}"] = FatalError("401: bad key")
    with pytest.raises(FatalError):
        await cancel_jobs(folder.ledger, lambda _e: provider, jobs)


class MovingRun(FakeProvider):
    """A provider whose cancel answers while a live run moves the job (``moves``) meanwhile."""

    def __init__(self, folder: Folder, key: str, moves: list[S]) -> None:
        super().__init__({f"req-{key}": "CANCELLATION_REQUESTED"})
        self.folder, self.key, self.moves = folder, key, moves

    async def cancel(self, request_id: str) -> str:
        for status in self.moves:
            self.folder.ledger.transition(self.key, status)
        self.moves = []
        return await super().cancel(request_id)


async def test_job_moved_by_a_live_run_is_cancelled_from_its_new_state(tmp_path: Path) -> None:
    """A queued job the run starts while its cancel is on the way is read again and cancelled
    as running (left cancelling, for the run to follow); one the run finished meanwhile is left
    to it and reported."""
    folder = make_folder(tmp_path, PROMPTS)
    a, b, *_ = folder.keys
    folder.queued(a)
    folder.queued(b)
    started = MovingRun(folder, a, [S.RUNNING])
    assert await cancel_all(folder, started, keys=[a]) == {a: "CANCELLATION_REQUESTED"}
    assert started.asked == [f"req-{a}"] * 2
    job = folder.ledger.get(a)
    assert job.status is S.CANCELLING
    assert "a run follows it" in (job.error or "")
    finished = MovingRun(folder, b, [S.RUNNING, S.COMPLETED])
    answers = await cancel_all(folder, finished, keys=[b])
    assert answers == {b: "nothing to cancel: the run moved it to completed"}
    assert folder.ledger.get(b).status is S.COMPLETED


async def test_uncertain_submit_is_cancelled_here_only(tmp_path: Path) -> None:
    """A submit_uncertain job has no request id: it is cancelled locally, with a warning."""
    folder = make_folder(tmp_path, PROMPTS)
    key = folder.keys[0]
    folder.ledger.transition(key, S.SUBMITTING, attempts=1)
    folder.ledger.transition(key, S.SUBMIT_UNCERTAIN)
    provider = FakeProvider({})
    answers = await cancel_all(folder, provider)
    assert provider.asked == []
    assert answers[key] == "no request id: cancelled here only"
    job = folder.ledger.get(key)
    assert job.status is S.CANCELLED
    assert "may exist at the provider" in (job.error or "")


async def test_pending_jobs_are_cancelled_unless_in_flight_only(tmp_path: Path) -> None:
    """Pending jobs are cancelled by default, and when named under --in-flight; never sent."""
    folder = make_folder(tmp_path, PROMPTS)
    a, b, *_ = folder.keys
    assert await cancel_all(folder, FakeProvider({}), include_pending=False) == {}
    named = await cancel_all(folder, FakeProvider({}), keys=[a], include_pending=False)
    assert named == {a: "not submitted"}
    answers = await cancel_all(folder, FakeProvider({}))
    assert len(answers) == 4
    assert b in answers
    assert all(folder.ledger.get(k).status is S.CANCELLED for k in folder.keys)


def test_named_keys_unknown_or_final(tmp_path: Path) -> None:
    """An unknown key is a usage error; a finished job named by key is reported, not touched."""
    folder = make_folder(tmp_path, PROMPTS)
    folder.done(folder.keys[0])
    with pytest.raises(UsageError, match="no job has a key starting 'nope'"):
        select(folder.ledger, ["nope"])
    jobs, skipped = select(folder.ledger, [folder.keys[0]])
    assert jobs == []
    assert skipped[0].answer == "nothing to cancel: done"


# -- against the emulator ------------------------------------------------------------------


async def provider_status(session: aiohttp.ClientSession, server: MockServer, rid: str) -> dict:
    async with session.get(job_url(server, rid, "/status"), headers=AUTH) as answer:
        data: dict = await answer.json()
        return data


async def test_cancel_queued_running_done_and_unknown_on_emulator(
    tmp_path: Path, server: MockServer
) -> None:
    """Real PUT cancels: queued and running jobs end cancelled at the emulator; here the queued
    one is cancelled and the running one cancelling (a run reads its outcome); a completed one
    is left for the run; an id the emulator never saw is 'unknown'."""
    folder = make_folder(tmp_path, PROMPTS)
    a, b, c, d, _e = folder.keys
    async with aiohttp.ClientSession() as session:
        server.config.latency = 0.0
        finished = (await submit(session, server))["request_id"]
        await wait_completed(session, server, finished)
        server.config.latency = FOREVER
        server.config.max_in_progress = 1
        running = (await submit(session, server))["request_id"]
        queued = (await submit(session, server))["request_id"]
        for key, rid, status in (
            (a, running, S.RUNNING),
            (b, queued, S.QUEUED),
            (c, finished, S.RUNNING),
            (d, "never-submitted", S.QUEUED),
        ):
            folder.ledger.transition(key, S.SUBMITTING, attempts=1)
            folder.ledger.transition(key, status, request_id=rid)
        client = QueueClient(
            session,
            base_url=server.base_url,
            endpoint=resolve(KLING),
            authorization=AUTH["Authorization"],
        )
        jobs, _ = select(folder.ledger, include_pending=False)
        outcomes = await cancel_jobs(folder.ledger, lambda _e: client, jobs)
        assert {o.key: o.answer for o in outcomes} == {
            a: "CANCELLATION_REQUESTED",
            b: "CANCELLATION_REQUESTED",
            c: "ALREADY_COMPLETED",
            d: "NOT_FOUND",
        }
        for rid in (running, queued):
            seen = await provider_status(session, server, rid)
            assert seen["status"] == "COMPLETED"
            assert seen.get("error_type") == "client_cancelled"
    states = {k: folder.ledger.get(k).status for k in (a, b, c, d)}
    assert states == {a: S.CANCELLING, b: S.CANCELLED, c: S.RUNNING, d: S.CANCELLED}


def test_cli_cancel_against_emulator_in_a_thread(tmp_path: Path) -> None:
    """`batchgen cancel DIR --keys K8 --in-flight --provider mock --base-url URL` cancels
    that job only (named by its file-name prefix), prints a summary (each job with -v) and
    rewrites the manifest."""
    folder = make_folder(tmp_path, PROMPTS)
    a, b, *_ = folder.keys
    with MockServer.start_in_thread(fast_config(latency=FOREVER, max_in_progress=1)) as mock:

        async def submit_two() -> list[str]:
            async with aiohttp.ClientSession() as session:
                url = f"{mock.base_url}/{KLING}"
                ids = []
                for _ in range(2):
                    async with session.post(url, json={"prompt": "x"}, headers=AUTH) as r:
                        ids.append((await r.json())["request_id"])
                return ids

        for key, rid in zip((a, b), asyncio.run(submit_two()), strict=True):
            folder.ledger.transition(key, S.SUBMITTING, attempts=1)
            folder.ledger.transition(key, S.QUEUED, request_id=rid)
        result = CliRunner().invoke(
            cli,
            [
                "cancel",
                str(folder.path),
                "--keys",
                b[:8],
                "--in-flight",
                "-v",
                "--provider",
                "mock",
                "--base-url",
                mock.base_url,
            ],
        )
        cancels = mock.stats()["requests"].get("cancel", {})
    assert sum(cancels.values()) == 1
    assert result.exit_code == 0, result.output
    assert f"{b}: queued -> cancelled (CANCELLATION_REQUESTED)" in result.output
    assert "  1 cancelled at the provider\n" in result.output
    assert folder.ledger.get(a).status is S.QUEUED
    assert folder.ledger.get(b).status is S.CANCELLED
    rows = [json.loads(x) for x in (folder.path / "manifest.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows[:2]] == ["queued", "cancelled"]


def test_cli_cancel_with_nothing_in_flight(tmp_path: Path) -> None:
    """With no job in flight, cancel needs no API key: it cancels the pending jobs, says how
    many, and exits 0; then there is nothing left to cancel."""
    folder = make_folder(tmp_path, PROMPTS)
    first = CliRunner().invoke(cli, ["cancel", str(folder.path)], env={"FAL_KEY": None})
    assert first.exit_code == 0, first.output
    assert first.output == f"{folder.path}: 5 jobs\n  5 cancelled before submit\n"
    again = CliRunner().invoke(cli, ["cancel", str(folder.path)], env={"FAL_KEY": None})
    assert (again.exit_code, again.output) == (0, "nothing to cancel\n")


async def test_cancel_beside_a_live_run(tmp_path: Path) -> None:
    """Cancelling every job of a live run ends the run cleanly; the jobs stay cancelled."""
    out = tmp_path / "out"
    plan = runs.plan_for(runs.prompts(tmp_path, 3), out, concurrency=3)
    watch = SubmitWatch(3)
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
                jobs, _ = select(ledger)
                await cancel_jobs(ledger, lambda _e: client, jobs)
        try:
            await asyncio.wait_for(task, 30)
        finally:
            runner.abort()
    assert [job.status for job in runs.rows(out)] == [S.CANCELLED] * 3


async def test_provider_cancel_ends_cancelled_not_failed(tmp_path: Path) -> None:
    """Jobs cancelled at the provider behind the run's back (client_cancelled, 499) end
    cancelled, with the provider's words, not failed; nothing is submitted again."""
    out = tmp_path / "out"
    plan = runs.plan_for(runs.prompts(tmp_path, 3), out, concurrency=3)
    watch = SubmitWatch(3)
    async with MockServer(runs.mock_config(latency=FOREVER, max_in_progress=1)) as server:
        runner = Runner(plan, runs.connection(server), timing=runs.FAST, reporter=watch)
        task = asyncio.create_task(runner.run())
        await asyncio.wait_for(watch.reached.wait(), 30)
        async with aiohttp.ClientSession() as session:
            for job in runs.rows(out):
                assert job.request_id is not None
                url = job_url(server, job.request_id, "/cancel")
                async with session.put(url, headers=AUTH) as answer:
                    assert answer.status == 200
        try:
            result = await asyncio.wait_for(task, 30)
        finally:
            runner.abort()
        stats = server.stats()
    assert result.message.startswith("0 of 3 done; 3 cancelled; spent $")
    assert sorted(stats["submits_by_payload"].values()) == [1, 1, 1]
    for job in runs.rows(out):
        assert job.status is S.CANCELLED
        assert job.error == "cancelled at the provider: Request cancelled by the client"
        assert job.error_type == "client_cancelled"


async def test_unclear_user_cancel_is_asked_again_by_the_next_run(tmp_path: Path) -> None:
    """A job `batchgen cancel` left 'cancelling' (unclear answer) is cancelled again by the
    next run and ends cancelled by user, not 'timed out'; the other jobs run as usual."""
    out = tmp_path / "out"
    plan = runs.plan_for(runs.prompts(tmp_path, 2), out)
    key = plan.jobs[0].key
    async with MockServer(runs.mock_config()) as server:
        async with aiohttp.ClientSession() as session:
            server.config.latency = FOREVER
            rid = (await submit(session, server, {"prompt": "elsewhere"}))["request_id"]
            server.config.latency = 20.0
        with Ledger.in_folder(out) as ledger:
            ledger.sync(plan.jobs, plan.endpoint.id)
            ledger.transition(key, S.SUBMITTING, attempts=1)
            ledger.transition(key, S.RUNNING, request_id=rid, submitted_at=time.time())
            ledger.transition(
                key, S.CANCELLING, error="cancel asked, provider answered ?", error_type="cancelled"
            )
        result = await runs.run(plan, server)
        async with aiohttp.ClientSession() as session:
            seen = await provider_status(session, server, rid)
    assert seen.get("error_type") == "client_cancelled"
    first, second = runs.rows(out)
    assert (first.status, first.error) == (S.CANCELLED, "cancelled by user")
    assert second.status is S.DONE
    assert result.message.startswith("1 of 2 done; 1 cancelled; spent $")


async def test_jobs_of_an_ended_emulator_are_cancelled_without_asking(tmp_path: Path) -> None:
    """A job in flight in a --mock run's own emulator (gone with that run) is cancelled in
    the ledger, with nothing asked of any provider, so no later run submits it again."""
    from batchgen.api.providers import IN_PROCESS

    folder = make_folder(tmp_path, PROMPTS)
    a, b = folder.keys[:2]
    folder.queued(a)
    folder.running(b)
    for key in (a, b):
        folder.ledger.update(key, origin=IN_PROCESS)
    provider = FakeProvider({})
    answers = await cancel_all(folder, provider, include_pending=False)
    assert answers == {a: "gone with its emulator", b: "gone with its emulator"}
    assert provider.asked == []
    assert {folder.ledger.get(k).status for k in (a, b)} == {S.CANCELLED}
