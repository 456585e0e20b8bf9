"""A pool of keys: submits spread over the keys, each under its own cap; each job followed with
the key that submitted it; a refused key retired while the run goes on with the others."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from runs import (
    FAST,
    SETTINGS,
    cli_args,
    manifest,
    mock_config,
    prompts,
    rows,
    subprocess_env,
)
from test_run_resume import finish, until
from test_run_secrets import files_holding

from batchgen.api.providers import Connection, connect
from batchgen.cli import cli
from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer
from batchgen.plan.build import Plan, build_plan
from batchgen.run.outcome import RunResult
from batchgen.run.progress import Reporter
from batchgen.run.runner import Runner

S = JobStatus
KEY_A, KEY_B = "key-of-account-a", "key-of-account-b"
ENV = {"FAL_KEY_A": KEY_A, "FAL_KEY_B": KEY_B}
CAPS = [{"env": "FAL_KEY_A", "concurrency": 2}, {"env": "FAL_KEY_B", "concurrency": 3}]


def fp(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


ID_A, ID_B = f"FAL_KEY_A:{fp(KEY_A)}", f"FAL_KEY_B:{fp(KEY_B)}"


def pool_plan(source: Path, out: Path, keys: Any = None, **settings: Any) -> Plan:
    run = {**SETTINGS, "keys": CAPS if keys is None else keys, **settings}
    return build_plan(source, output=out, run=run)


def pool(plan: Plan, server: MockServer, environ: dict[str, str] | None = None) -> Connection:
    return connect(
        plan.settings, environ=ENV if environ is None else environ, base_url=server.base_url
    )


async def run_pool(
    plan: Plan, server: MockServer, environ: dict[str, str] | None = None
) -> tuple[RunResult, list[str]]:
    """One run of ``plan`` with the pool; its result and the notes it gave."""
    reporter = Reporter()
    result = await Runner(plan, pool(plan, server, environ), timing=FAST, reporter=reporter).run()
    return result, reporter.notes


def by_key(server: MockServer) -> dict[str, dict[str, Any]]:
    return server.stats()["keys"]


def recorded(out: Path) -> int:
    """Jobs whose request id the ledger holds."""
    return sum(job.request_id is not None for job in rows(out)) if out.exists() else 0


async def stop_with_both_keys_full(plan: Plan, server: MockServer, out: Path) -> None:
    """Run ``plan`` until both keys are full (2 and 3 jobs in flight, their request ids
    recorded), then stop it now: those jobs stay in flight."""
    runner = Runner(plan, pool(plan, server), timing=FAST)
    task = asyncio.create_task(runner.run())
    await until(lambda: in_flight(server, KEY_A) == 2 and in_flight(server, KEY_B) == 3)
    await until(lambda: recorded(out) == 5)
    runner.abort()
    await task


def in_flight(server: MockServer, key: str) -> int:
    return int(by_key(server).get(fp(key), {}).get("in_flight", 0))


async def test_two_keys_each_stay_under_their_own_cap(tmp_path: Path) -> None:
    """Caps 2 and 3: the emulator never sees more than 2 and 3 jobs of each key in flight,
    both keys are used up to their caps, every job is done and followed with its own key."""
    out = tmp_path / "out"
    config = mock_config(api_keys=(KEY_A, KEY_B), max_in_progress=10)
    async with MockServer(config) as server:
        result, _ = await run_pool(pool_plan(prompts(tmp_path, 30), out), server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    a, b = stats["keys"][fp(KEY_A)], stats["keys"][fp(KEY_B)]
    assert (a["max_in_flight"], b["max_in_flight"]) == (2, 3)
    assert a["submits"] + b["submits"] == 30
    assert min(a["submits"], b["submits"]) >= 5
    assert stats["foreign_key_requests"] == {}
    jobs = rows(out)
    assert {job.status for job in jobs} == {S.DONE}
    assert sum(job.key_id == ID_A for job in jobs) == a["submits"]
    assert sum(job.key_id == ID_B for job in jobs) == b["submits"]


async def test_keys_without_caps_share_the_runs_concurrency(tmp_path: Path) -> None:
    """--api-key-env A,B (no caps): at most --concurrency in flight in all, spread evenly."""
    out = tmp_path / "out"
    config = mock_config(api_keys=(KEY_A, KEY_B), max_in_progress=10)
    plan = build_plan(
        prompts(tmp_path, 24),
        output=out,
        run={**SETTINGS, "api_key_env": "FAL_KEY_A,FAL_KEY_B", "concurrency": 4},
    )
    async with MockServer(config) as server:
        result, _ = await run_pool(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    a, b = stats["keys"][fp(KEY_A)], stats["keys"][fp(KEY_B)]
    assert (a["max_in_flight"], b["max_in_flight"]) == (2, 2)  # the least loaded gets the next
    assert a["submits"] + b["submits"] == 24
    assert min(a["submits"], b["submits"]) >= 8


@pytest.mark.parametrize("refusal", ["revoked", "locked"])
async def test_a_refused_key_is_retired_and_the_run_finishes_on_the_other(
    tmp_path: Path, refusal: str
) -> None:
    """A key the emulator refuses (401, or 403 "User is locked... Exhausted balance") is
    retired with one line naming its variable and why; every job is done with the other."""
    out = tmp_path / "out"
    if refusal == "revoked":
        config = mock_config(api_keys=(KEY_A,), max_in_progress=10)
        why = "the API key was refused (401: Invalid API key)"
    else:
        config = mock_config(api_keys=(KEY_A, KEY_B), locked_keys=(KEY_B,), max_in_progress=10)
        why = "access denied (403: User is locked. Reason: Exhausted balance"
    async with MockServer(config) as server:
        result, notes = await run_pool(pool_plan(prompts(tmp_path, 12), out), server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    retired = [note for note in notes if "retired" in note]
    assert len(retired) == 1, notes
    assert retired[0].startswith(f"key FAL_KEY_B retired: {why}")
    assert retired[0].endswith("its jobs not yet submitted go to FAL_KEY_A")
    assert KEY_B not in retired[0]
    assert {job.key_id for job in rows(out)} == {ID_A}
    assert sum(stats["requests"]["submit"].get(code, 0) for code in ("401", "403")) <= 3
    assert "retired" in (out / "batchgen.log").read_text()


async def test_every_key_refused_stops_the_run_naming_each(tmp_path: Path) -> None:
    """With no key left the run is fatal (exit 3), naming every key and why."""
    out = tmp_path / "out"
    async with MockServer(mock_config(api_keys=("someone-else",))) as server:
        result, _ = await run_pool(pool_plan(prompts(tmp_path, 6), out), server)
    assert result.outcome == "fatal"
    assert result.message.startswith("every key was refused (FAL_KEY_A: the API key was refused")
    assert "FAL_KEY_B: the API key was refused" in result.message
    assert {job.status for job in rows(out)} == {S.PENDING}


async def test_a_key_locked_mid_run_still_follows_its_jobs(tmp_path: Path) -> None:
    """A key locked while its jobs run: its next submit retires it, its jobs in flight are
    still followed with it (the provider lets it read them) and done; the rest go to the
    other key. Every status and result request carries the key that submitted the job."""
    out = tmp_path / "out"
    config = mock_config(api_keys=(KEY_A, KEY_B), max_in_progress=10, latency=150.0)
    async with MockServer(config) as server:
        task = asyncio.create_task(run_pool(pool_plan(prompts(tmp_path, 10), out), server))
        await until(lambda: in_flight(server, KEY_B) == 3)
        server.config.locked_keys = (KEY_B,)
        result, notes = await task
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert sum("key FAL_KEY_B retired" in note for note in notes) == 1
    jobs = rows(out)
    assert {job.status for job in jobs} == {S.DONE}
    assert sum(job.key_id == ID_B for job in jobs) == stats["keys"][fp(KEY_B)]["submits"] >= 3
    assert stats["foreign_key_requests"] == {}
    assert stats["keys"][fp(KEY_B)]["requests"]["status"] >= 3


async def test_a_revoked_keys_jobs_in_flight_are_left_for_a_later_run(tmp_path: Path) -> None:
    """A key revoked while its jobs run: a look at its job answers 401, so the job is left in
    flight, saying so, and the run ends failed (exit 1) with the rest done on the other key;
    once the key works again, a resume follows those jobs by request id, never resubmitting."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 9)
    config = mock_config(api_keys=(KEY_A, KEY_B), max_in_progress=10, latency=150.0)
    async with MockServer(config) as server:
        task = asyncio.create_task(run_pool(pool_plan(source, out), server))
        await until(lambda: in_flight(server, KEY_B) == 3)
        server.config.api_keys = (KEY_A,)
        result, notes = await task
        left = [job for job in rows(out) if job.status is not S.DONE]
        assert result.outcome == "failed", result.message
        assert f"{len(left)} left in flight (their key was refused)" in result.message
        assert len(left) == 3
        assert all(job.key_id == ID_B and job.status in (S.QUEUED, S.RUNNING) for job in left)
        assert sum("cannot be followed now: its key FAL_KEY_B" in note for note in notes) == 3
        assert any("their key refused" in step for step in result.next_steps)

        server.config.api_keys = (KEY_A, KEY_B)
        again, _ = await run_pool(pool_plan(source, out), server)
        stats = server.stats()
    assert again.outcome == "done", again.message
    assert set(stats["submits_by_payload"].values()) == {1}
    assert stats["foreign_key_requests"] == {}


@pytest.mark.parametrize("named", ["FAL_KEY_A,FAL_KEY_B", "FAL_KEY_A"])
async def test_resume_follows_each_job_with_its_key_or_another(tmp_path: Path, named: str) -> None:
    """Stopped with jobs in flight on both keys, a resume with the same pool follows them
    with their own keys; one naming only FAL_KEY_A follows FAL_KEY_B's with FAL_KEY_A (one
    account's keys read each other's jobs), saying so once. Neither submits a job again."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 8)
    config = mock_config(api_keys=(KEY_A, KEY_B), max_in_progress=10, latency=400.0)
    async with MockServer(config) as server:
        await stop_with_both_keys_full(pool_plan(source, out), server, out)
        again = build_plan(source, output=out, run={**SETTINGS, "api_key_env": named})
        result, notes = await run_pool(again, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert set(stats["submits_by_payload"].values()) == {1}
    sent_with_b = sum(job.key_id == ID_B for job in rows(out))  # provenance kept
    said = [note for note in notes if "submitted with a key this run does not hold" in note]
    if named != "FAL_KEY_A":
        assert stats["foreign_key_requests"] == {}
        assert said == []
        assert sent_with_b >= 3
        return
    assert sent_with_b == 3
    assert len(said) == 1, notes
    assert f"3 with {ID_B}" in said[0]
    assert f"following them with {ID_A}" in said[0]
    assert KEY_B not in said[0]
    assert sum(stats["foreign_key_requests"].values()) >= 3


async def test_a_lost_ledger_still_follows_each_job_with_its_key(tmp_path: Path) -> None:
    """The manifest names each job's key (api_key_id: variable and fingerprint); a ledger
    rebuilt from it follows the jobs in flight with their own keys, submitting none again."""
    out = tmp_path / "out"
    config = mock_config(api_keys=(KEY_A, KEY_B), max_in_progress=10, latency=300.0)
    async with MockServer(config) as server:
        plan = pool_plan(prompts(tmp_path, 5), out)
        await stop_with_both_keys_full(plan, server, out)
        named = sorted(record["api_key_id"] for record in manifest(out))
        assert named == [ID_A] * 2 + [ID_B] * 3
        for name in ("batchgen.db", "batchgen.db-wal", "batchgen.db-shm"):
            (out / name).unlink(missing_ok=True)
        result, notes = await run_pool(plan, server)
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert any("rebuilt 5 job(s)" in note for note in notes), notes
    assert set(stats["submits_by_payload"].values()) == {1}
    assert stats["foreign_key_requests"] == {}


async def test_cancel_uses_each_jobs_own_key(tmp_path: Path) -> None:
    """batchgen cancel on a folder run with a pool cancels each job with the key that
    submitted it (the pool read from run.json, or named again with --api-key-env A,B)."""
    out = tmp_path / "out"
    config = mock_config(api_keys=(KEY_A, KEY_B), max_in_progress=10, latency=100_000.0)
    async with MockServer(config) as server:
        plan = pool_plan(prompts(tmp_path, 5), out)
        await stop_with_both_keys_full(plan, server, out)

        args = ["cancel", str(out), "--base-url", server.base_url]
        env = subprocess_env(**ENV)
        stored = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
        named = ["--api-key-env", "FAL_KEY_A,FAL_KEY_B"]
        again = await asyncio.to_thread(CliRunner().invoke, cli, args + named, env=env)
        stats = server.stats()
    assert stored.exit_code == 0, stored.output
    assert "5 stopping at the provider" in stored.output
    assert again.exit_code == 0, again.output
    assert "5 already completed at the provider" in again.output  # cancelled by the first
    assert stats["foreign_key_requests"] == {}
    assert stats["keys"][fp(KEY_A)]["requests"]["cancel"] == 2 * 2
    assert stats["keys"][fp(KEY_B)]["requests"]["cancel"] == 2 * 3


async def test_missing_pool_variables_are_named_before_anything_is_sent(tmp_path: Path) -> None:
    """run --api-key-env A,B,C with B and C unset: exit 2 naming both, nothing sent."""
    async with MockServer(mock_config()) as server:
        args = cli_args(prompts(tmp_path, 3), tmp_path / "out", server.base_url)
        args += ["--api-key-env", "FAL_KEY_A,FAL_KEY_B,FAL_KEY_C", "--provider", "fal"]
        proc = await asyncio.create_subprocess_exec(
            *args,
            env={
                k: v
                for k, v in subprocess_env(FAL_KEY_A=KEY_A, FAL_KEY_B="").items()
                if k != "FAL_KEY_C"
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        code, err = await finish(proc)
        stats = server.stats()
    assert code == 2, err
    assert "no API key in FAL_KEY_B, FAL_KEY_C: set those environment variables" in err
    assert stats["requests"] == {}


async def test_pool_spec_run_writes_no_key_anywhere(tmp_path: Path) -> None:
    """A job spec with run: {keys: ...} runs through the CLI with both keys; run.json names
    them by variable and fingerprint only, neither key is in any file of the folder, and
    --on-finish gets neither variable."""
    secrets = {"FAL_KEY_A": f"sk-a-{uuid.uuid4().hex}", "FAL_KEY_B": f"sk-b-{uuid.uuid4().hex}"}
    source = prompts(tmp_path, 10)
    spec = tmp_path / "job.yaml"
    spec.write_text(
        f"input: {source.name}\n"
        "provider: mock\n"
        "run:\n"
        "  keys:\n"
        "    - {env: FAL_KEY_A, concurrency: 2}\n"
        "    - env: FAL_KEY_B\n"
        "      concurrency: 3\n"
    )
    out = tmp_path / "out"
    config = mock_config(api_keys=tuple(secrets.values()), max_in_progress=10)
    async with MockServer(config) as server:
        proc = await asyncio.create_subprocess_exec(
            *cli_args(spec, out, server.base_url),
            "--on-finish",
            f"env > {tmp_path / 'seen.txt'}",
            env=subprocess_env(**secrets),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        code, err = await finish(proc)
        stats = server.stats()
    assert code == 0, err
    assert {fp(key) for key in secrets.values()} == set(stats["keys"])
    info = (out / "run.json").read_text()
    assert '"env": "FAL_KEY_A"' in info
    assert f"FAL_KEY_B:{fp(secrets['FAL_KEY_B'])}" in info
    for key in secrets.values():
        assert files_holding(out, key.encode()) == []
        assert key not in err
    seen = (tmp_path / "seen.txt").read_text()
    assert "BATCHGEN_OUTCOME=done" in seen
    assert "FAL_KEY_A" not in seen
    assert "FAL_KEY_B" not in seen
