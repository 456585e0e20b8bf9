"""Claims on a shared PostgreSQL batch: each job driven by one worker, taken over when its
worker's lease runs out; the URL's password in no message."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pgserver
import psycopg
import pytest
from test_ledger import make_plan

from batchgen.errors import JobChanged, UsageError
from batchgen.ledger.opener import open_shared
from batchgen.ledger.postgres import PgLedger
from batchgen.ledger.shared import Worker, check_url, masked
from batchgen.ledger.states import JobStatus

S = JobStatus


Make = Callable[..., PgLedger]


@pytest.fixture
def worker(tmp_path: Path, postgres: pgserver.Server, batch: str) -> Iterator[Make]:
    """Opens the batch for a new worker downloading to ``tmp_path/NAME``; all closed after."""
    opened: list[PgLedger] = []

    def make(name: str, lease: float = 60.0) -> PgLedger:
        mine = Worker.here(str(tmp_path / name))
        opened.append(open_shared(postgres.url, batch, worker=mine, lease=lease))
        opened[-1].join()
        return opened[-1]

    yield make
    for ledger in opened:
        ledger.close()


def test_workers_claiming_at_once_never_take_the_same_job(tmp_path: Path, worker: Make) -> None:
    """Eight workers claiming in eight threads at once share 200 jobs out, none twice, none
    left over, each worker's claims in input order."""
    plan = make_plan(tmp_path, [f"p{i}" for i in range(200)])
    workers = [worker(f"w{i}") for i in range(8)]
    workers[0].sync(plan.jobs, plan.endpoint.id)
    taken: dict[int, list[str]] = {i: [] for i in range(8)}

    def take(i: int) -> None:
        while got := workers[i].claim([S.PENDING], 3):
            taken[i].extend(key for key, _ in got)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [key for keys in taken.values() for key in keys]
    assert sorted(every) == sorted(job.key for job in plan.jobs)
    order = {job.key: n for n, job in enumerate(plan.jobs)}
    for keys in taken.values():
        assert keys == sorted(keys, key=order.__getitem__)


def test_a_lease_that_runs_out_passes_the_job_and_fences_its_old_worker(
    tmp_path: Path, worker: Make
) -> None:
    """A job whose worker stopped beating is claimed by another once its lease ran out (not
    before); the old worker can no longer move it; a final move drops the claim."""
    plan = make_plan(tmp_path, ["a"])
    (key,) = (job.key for job in plan.jobs)
    old, new = worker("old", lease=0.0), worker("new")
    old.sync(plan.jobs, plan.endpoint.id)
    assert old.claim([S.PENDING], 5) == [(key, S.PENDING)]
    old.transition(key, S.SUBMITTING, expect=S.PENDING, attempts=1)
    old.transition(key, S.QUEUED, expect=S.SUBMITTING, request_id="r1")
    # A lease of 0 s has run out at once: the job is anyone's.
    assert new.claim([S.QUEUED], 5) == [(key, S.QUEUED)]
    assert old.claim([S.QUEUED], 5) == []  # the new lease is live
    assert (old.open_elsewhere(), new.open_elsewhere()) == (1, 0)
    with pytest.raises(JobChanged, match="claimed by another worker"):
        old.transition(key, S.RUNNING, expect=S.QUEUED)
    new.transition(key, S.RUNNING, expect=S.QUEUED)
    new.transition(key, S.FAILED, expect=S.RUNNING, error="x")
    assert old.open_elsewhere() == 0
    # Reopened, the job is anyone's again: the old worker may take it.
    new.transition(key, S.PENDING)
    assert old.claim([S.PENDING], 5) == [(key, S.PENDING)]


def test_heartbeat_release_and_leave(tmp_path: Path, worker: Make) -> None:
    """A heartbeat keeps a worker's jobs; release gives one back, skip leaves named jobs
    alone, leave gives back the rest and the worker is listed as ended."""
    plan = make_plan(tmp_path, ["a", "b", "c"])
    a, b, c = (job.key for job in plan.jobs)
    one, two = worker("one"), worker("two")
    one.sync(plan.jobs, plan.endpoint.id)
    assert [k for k, _ in one.claim([S.PENDING], 5, skip=[c])] == [a, b]
    assert one.heartbeat() == 2
    assert two.claim([S.PENDING], 5) == [(c, S.PENDING)]
    one.release(a)
    assert two.claim([S.PENDING], 5) == [(a, S.PENDING)]
    one.leave()
    assert two.claim([S.PENDING], 5) == [(b, S.PENDING)]
    ended = {w.folder: w.ended for w in two.workers()}
    assert ended == {str(tmp_path / "one"): True, str(tmp_path / "two"): False}


def test_one_database_holds_many_batches(
    tmp_path: Path, postgres: pgserver.Server, batch: str
) -> None:
    """Two batches of one database keep their own jobs; a batch not there is named."""
    plan = make_plan(tmp_path, ["a", "b"])
    with open_shared(postgres.url, batch) as first, open_shared(postgres.url, batch + "x") as two:
        first.sync(plan.jobs, plan.endpoint.id)
        two.sync(plan.jobs[:1], plan.endpoint.id)
        assert (len(first.jobs()), len(two.jobs())) == (2, 1)
    with pytest.raises(UsageError, match=r"no batch 'nothing-here' in the ledger"):
        open_shared(postgres.url, "nothing-here", readonly=True)


@pytest.mark.parametrize("problem", ["password", "port"])
def test_a_ledger_that_cannot_be_reached_is_named_without_its_password(
    postgres: pgserver.Server, problem: str
) -> None:
    """A wrong password or a server not listening: a UsageError naming the masked URL and
    the reason; the password given is in no part of it."""
    wrong = "not-the-Pa55word"
    url = postgres.url_for(wrong) if problem == "password" else postgres.url
    if problem == "port":
        url = postgres.url_for(port=pgserver.free_port())
    with pytest.raises(UsageError) as caught:
        open_shared(url, "any")
    text = str(caught.value)
    assert masked(url) in text
    assert "password authentication failed" in text or "refused" in text
    assert wrong not in text
    assert pgserver.PASSWORD not in text


def test_only_postgresql_urls_and_every_password_masked() -> None:
    """Another scheme is refused (masked); passwords in the user part or the query are
    masked, the rest kept."""
    with pytest.raises(UsageError, match=r"'mysql://u:\*\*\*@h/db' is not a PostgreSQL URL"):
        check_url("mysql://u:pw@h/db")
    assert masked("postgresql://u:p%40ss@h:5/db") == "postgresql://u:***@h:5/db"
    assert masked("postgresql://h/db?password=x&sslmode=require") == (
        "postgresql://h/db?password=***&sslmode=require"
    )
    assert masked("postgres://u@h/db") == "postgres://u@h/db"


def waiting_for_locks(db: psycopg.Connection[Any], count: int) -> None:
    """Until ``count`` sessions of the server wait for a lock (bounded by the test timeout)."""
    sql = "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    while db.execute(sql).fetchone() != (count,):
        pass


def test_a_worker_syncing_an_edited_input_and_a_move_take_turns(
    tmp_path: Path, worker: Make, postgres: pgserver.Server, batch: str
) -> None:
    """A worker joins with an edited input (its sync rewrites every known row's place) while
    another worker moves one of those rows: both are made, one after the other; neither is
    aborted as a deadlock (a move that locked its row, then waited for the sync's table lock,
    while the sync waited for that row)."""
    plan = make_plan(tmp_path, ["p0", "p1"])
    mover, joiner = worker("a"), worker("b")
    mover.sync(plan.jobs, plan.endpoint.id)
    edited = make_plan(tmp_path, ["new", "p0", "p1"])  # every known row one further down
    first, second = (job.key for job in plan.jobs)
    failed: list[Exception] = []

    def start(step: Callable[[], object]) -> threading.Thread:
        def run() -> None:
            try:
                step()
            except Exception as exc:
                failed.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    with psycopg.connect(postgres.url, autocommit=True) as other:
        found = other.execute("SELECT id FROM batchgen.batches WHERE name = %s", (batch,))
        jobs = f"b_{found.fetchone()[0]}.jobs"  # type: ignore[index]
        with other.transaction():  # another session holds p0's row for a moment
            other.execute(f"SELECT 1 FROM {jobs} WHERE key = %s FOR UPDATE", (first,))
            syncing = start(lambda: joiner.sync(edited.jobs, edited.endpoint.id))
            waiting_for_locks(other, 1)  # the sync holds the table, and waits for p0
            moving = start(lambda: mover.transition(second, S.SUBMITTING, attempts=1))
            waiting_for_locks(other, 2)
        syncing.join()
        moving.join()
    assert failed == []
    assert mover.get(second).status is S.SUBMITTING
    assert mover.get(second).row == 3
