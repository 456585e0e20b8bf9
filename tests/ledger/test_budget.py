"""--max-cost on a shared PostgreSQL batch: moves to submitting from many connections at once
never take the batch's committed spend above the cap; unbilled ends give room back."""

from __future__ import annotations

import threading
from pathlib import Path

import pgserver
import pytest

from batchgen.errors import OverCost
from batchgen.ledger.core import Move
from batchgen.ledger.money import tally
from batchgen.ledger.opener import open_shared
from batchgen.ledger.shared import Worker
from batchgen.ledger.states import JobStatus
from batchgen.plan.build import build_plan

S = JobStatus
PRICE = 0.35  # every job: Kling, 5 s
ALLOWED = 7
CAP = 2.45  # seven jobs exactly


def batch_of(tmp_path: Path, url: str, batch: str, count: int) -> list[str]:
    """A batch of ``count`` pending jobs of PRICE each; their keys."""
    source = tmp_path / "p.csv"
    source.write_text("prompt\n" + "".join(f"shot {i}\n" for i in range(count)))
    plan = build_plan(source)
    assert {job.cost_usd for job in plan.jobs} == {PRICE}
    with open_shared(url, batch) as ledger:
        ledger.sync(plan.jobs, plan.endpoint.id)
    return [job.key for job in plan.jobs]


def test_connections_submitting_at_once_stop_at_the_cap(
    tmp_path: Path, postgres: pgserver.Server, batch: str
) -> None:
    """Eight workers, each on its own connection, claim and move jobs to submitting three to
    a transaction, all at once: exactly seven moves are made, the batch's committed spend is
    the cap, and every other try is refused with the --max-cost message, nothing written."""
    batch_of(tmp_path, postgres.url, batch, 40)
    start = threading.Barrier(8)
    moved: list[str] = []
    refused: list[OverCost] = []
    failed: list[BaseException] = []

    def work(i: int) -> None:
        worker = Worker.here(str(tmp_path / f"w{i}"))
        try:
            with open_shared(postgres.url, batch, worker=worker, max_cost=CAP) as mine:
                start.wait()
                passed: set[str] = set()
                while got := mine.claim([S.PENDING], 3, skip=passed):
                    moves = [Move(key, S.SUBMITTING, S.PENDING, {"attempts": 1}) for key, _ in got]
                    for (key, _), outcome in zip(got, mine.transitions(moves), strict=True):
                        passed.add(key)
                        if isinstance(outcome, OverCost):
                            refused.append(outcome)
                            mine.release(key)
                        elif isinstance(outcome, Exception):
                            raise outcome
                        else:
                            moved.append(key)
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failed
    assert len(moved) == len(set(moved)) == ALLOWED
    assert refused
    assert all(str(exc).endswith("above --max-cost $2.45") for exc in refused)
    assert all(exc.total == pytest.approx(CAP + PRICE) for exc in refused)
    with open_shared(postgres.url, batch, readonly=True) as ledger:
        jobs = ledger.jobs()
        assert ledger.committed_usd() == pytest.approx(CAP) == tally(jobs).committed
    assert {job.key for job in jobs if job.status is S.SUBMITTING} == set(moved)
    assert all(job.attempts == 0 for job in jobs if job.key not in moved)


def test_a_job_that_ends_unbilled_gives_its_room_back(
    tmp_path: Path, postgres: pgserver.Server, batch: str
) -> None:
    """At the cap, a submitted job failing with a 5xx (unbilled) lets exactly one more job be
    submitted; a job already committed (sent again after its answer was lost) always goes."""
    keys = batch_of(tmp_path, postgres.url, batch, ALLOWED + 2)
    worker = Worker.here(str(tmp_path / "w"))
    with open_shared(postgres.url, batch, worker=worker, max_cost=CAP) as ledger:
        for key in keys[:ALLOWED]:
            ledger.transition(key, S.SUBMITTING, attempts=1)
        with pytest.raises(OverCost):
            ledger.transition(keys[ALLOWED], S.SUBMITTING, attempts=1)
        ledger.transition(keys[0], S.FAILED, error="503", error_type="server_error")
        ledger.transition(keys[ALLOWED], S.SUBMITTING, attempts=1)
        with pytest.raises(OverCost, match=r"\$2\.80, above --max-cost \$2\.45"):
            ledger.transition(keys[ALLOWED + 1], S.SUBMITTING, attempts=1)
        ledger.transition(keys[1], S.SUBMIT_UNCERTAIN, error="answer lost")
        ledger.transition(keys[1], S.SUBMITTING, attempts=2)  # committed already: no new cost
        assert ledger.committed_usd() == pytest.approx(CAP)
        assert ledger.get(keys[ALLOWED + 1]).status is S.PENDING
