"""The ledger writer (both backends): moves committed from a thread, many to a transaction,
each refused or failed for its own caller, and on disk by the time its await returns."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Opener, opening

from batchgen.errors import DiskError, JobChanged, LedgerError
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
from batchgen.ledger.writer import LedgerWriter
from batchgen.plan.build import build_plan

S = JobStatus


def planned(tmp_path: Path, ledger: LedgerStore, count: int) -> list[str]:
    source = tmp_path / "p.csv"
    source.write_text("prompt\n" + "".join(f"shot {i}\n" for i in range(count)))
    plan = build_plan(source)
    ledger.sync(plan.jobs, plan.endpoint.id)
    return [job.key for job in plan.jobs]


async def test_moves_made_together_share_transactions(tmp_path: Path, open_ledger: Opener) -> None:
    """200 jobs moved at once take far fewer transactions than moves, each row as moved."""
    ledger = open_ledger()
    keys = planned(tmp_path, ledger, 200)
    async with LedgerWriter(ledger) as writer:
        rows = await asyncio.gather(
            *(writer.transition(k, S.SUBMITTING, expect=S.PENDING, attempts=1) for k in keys)
        )
        queued = await asyncio.gather(
            *(writer.transition(k, S.QUEUED, request_id=f"r-{k[:6]}") for k in keys)
        )
    assert [r.status for r in rows] == [S.SUBMITTING] * 200
    assert all(r.attempts == 1 for r in rows)
    assert [r.request_id for r in queued] == [f"r-{k[:6]}" for k in keys]
    assert writer.moves == 400
    assert writer.transactions < 100  # one per move would be 400
    assert ledger.counts()[S.QUEUED] == 200  # this connection sees what the thread committed
    assert ledger.requests(keys[0]) == [f"r-{keys[0][:6]}"]


async def test_a_refused_move_fails_only_its_own_caller(
    tmp_path: Path, open_ledger: Opener
) -> None:
    """A move not allowed, or from a state the job has left, raises for its caller; the
    moves beside it in the same transaction are made."""
    ledger = open_ledger()
    keys = planned(tmp_path, ledger, 3)
    async with LedgerWriter(ledger) as writer:
        outcomes = await asyncio.gather(
            writer.transition(keys[0], S.SUBMITTING),
            writer.transition(keys[1], S.DONE),  # pending -> done is not a move
            writer.transition(keys[2], S.SUBMITTING, expect=S.QUEUED),  # it is pending
            return_exceptions=True,
        )
    assert not isinstance(outcomes[0], BaseException)
    assert outcomes[0].status is S.SUBMITTING
    assert isinstance(outcomes[1], LedgerError)
    assert "pending -> done is not allowed" in str(outcomes[1])
    assert isinstance(outcomes[2], JobChanged)
    assert [ledger.get(k).status for k in keys] == [S.SUBMITTING, S.PENDING, S.PENDING]


async def test_a_failed_transaction_fails_every_move_in_it(tmp_path: Path) -> None:
    """A transaction that fails (here: the table is gone under the writer) fails every move
    waiting in it with the ledger's error, not a traceback from a thread."""
    ledger = Ledger.in_folder(tmp_path / "out")
    keys = planned(tmp_path, ledger, 5)
    async with LedgerWriter(ledger) as writer:
        with sqlite3.connect(ledger.path) as other:
            other.execute("ALTER TABLE jobs RENAME TO jobs_gone")
        outcomes = await asyncio.gather(
            *(writer.transition(k, S.SUBMITTING) for k in keys), return_exceptions=True
        )
    assert all(isinstance(o, LedgerError) for o in outcomes), outcomes
    assert all("no such table" in str(o) for o in outcomes)


def test_what_a_move_awaited_survives_kill_9(
    tmp_path: Path, open_ledger: Opener, request: pytest.FixtureRequest
) -> None:
    """Every move whose await returned is in the ledger after the process is SIGKILLed while
    other moves are still waiting for their commit."""
    ledger = open_ledger()  # made here, so the batch exists; the process opens its own
    keys = planned(tmp_path, ledger, 300)
    script = f"""
import asyncio, os, signal, sys
from pathlib import Path
from batchgen.ledger.states import JobStatus
from batchgen.ledger.opener import open_shared
from batchgen.ledger.store import Ledger
from batchgen.ledger.writer import LedgerWriter

async def main():
    writer = LedgerWriter({opening(ledger, request)})
    writer.start()
    done = 0

    async def move(key):
        nonlocal done
        await writer.transition(key, JobStatus.SUBMITTING, attempts=1)
        print(key, flush=True)  # said only once the move is committed
        done += 1
        if done == 150:
            os.kill(os.getpid(), signal.SIGKILL)

    await asyncio.gather(*(move(k) for k in sys.stdin.read().split()))

asyncio.run(main())
"""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        input=" ".join(keys),
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -9, proc.stderr
    said = proc.stdout.split()
    assert len(said) >= 150
    moved = {k for k in keys if ledger.get(k).status is S.SUBMITTING}
    assert set(said) <= moved


async def test_the_writer_names_a_ledger_it_cannot_open(tmp_path: Path) -> None:
    """A writer whose connection cannot be opened raises the ledger's error from start()."""
    ledger = Ledger.in_folder(tmp_path / "out")
    planned(tmp_path, ledger, 1)
    (tmp_path / "out" / "batchgen.db").unlink()
    (tmp_path / "out" / "batchgen.db").mkdir()  # a folder where the file was
    writer = LedgerWriter(ledger)
    with pytest.raises((DiskError, LedgerError)):
        writer.start()
    await writer.close()
