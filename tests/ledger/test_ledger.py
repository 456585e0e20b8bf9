"""The ledger on both backends (a real SQLite file, a real PostgreSQL batch): the job state
machine, sync of changed inputs, what a killed writer committed; SQLite's folder cases."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Opener, opening

from batchgen.errors import DiskError, JobChanged, LedgerError, RequestIdTaken
from batchgen.ledger.core import Move
from batchgen.ledger.migrations import MIGRATIONS
from batchgen.ledger.states import TRANSITIONS, JobStatus
from batchgen.ledger.store import Ledger
from batchgen.plan.build import Plan, build_plan


def make_plan(tmp_path: Path, prompts: list[str]) -> Plan:
    path = tmp_path / "p.csv"
    path.write_text("prompt\n" + "".join(f"{p}\n" for p in prompts))
    return build_plan(path)


def test_sync_adds_new_keeps_known_and_reports_orphans(tmp_path: Path, open_ledger: Opener) -> None:
    """A changed input adds new keys, keeps known ones as they are, reports the vanished."""
    ledger = open_ledger()
    first = make_plan(tmp_path, ["a", "b"])
    assert ledger.sync(first.jobs, first.endpoint.id).added == 2
    key_a = first.jobs[0].key
    ledger.transition(key_a, JobStatus.SUBMITTING, attempts=1)
    ledger.transition(key_a, JobStatus.QUEUED, request_id="req-1")
    second = make_plan(tmp_path, ["c", "a"])
    report = ledger.sync(second.jobs, second.endpoint.id)
    assert (report.added, report.kept) == (1, 1)
    assert report.orphaned == [first.jobs[1].key]
    assert ledger.get(key_a).status is JobStatus.QUEUED
    assert [j.key for j in ledger.jobs(in_input_only=True)] == [j.key for j in second.jobs]


def test_names_no_encoding_holds_are_stored(tmp_path: Path, open_ledger: Opener) -> None:
    """A path the locale could not decode (surrogates) is kept exactly in JSON (meta) and shown
    escaped in a message, instead of an encoding error."""
    ledger = open_ledger()
    plan = make_plan(tmp_path, ["a"])
    ledger.sync(plan.jobs, plan.endpoint.id)
    name = "/data/caf\udcc3\udca9-\udcff/p.csv"  # b"/data/caf\xc3\xa9-\xff/p.csv", C locale
    ledger.set_meta("plan", {"input_path": name})
    key = plan.jobs[0].key
    ledger.transition(key, JobStatus.FAILED, error=f"could not read {name}")
    assert ledger.meta("plan") == {"input_path": name}
    assert ledger.get(key).error == "could not read /data/café-\\xff/p.csv"


def test_refuses_transitions_not_written_down(tmp_path: Path, open_ledger: Opener) -> None:
    """done -> submitting, pending -> done and the like are refused."""
    ledger = open_ledger()
    plan = make_plan(tmp_path, ["a"])
    ledger.sync(plan.jobs, plan.endpoint.id)
    key = plan.jobs[0].key
    with pytest.raises(LedgerError, match="pending -> done is not allowed"):
        ledger.transition(key, JobStatus.DONE)
    for status in (
        JobStatus.SUBMITTING,
        JobStatus.RUNNING,
        JobStatus.COMPLETED,
        JobStatus.DOWNLOADING,
        JobStatus.DONE,
    ):
        ledger.transition(key, status)
    with pytest.raises(LedgerError):
        ledger.transition(key, JobStatus.SUBMITTING)


def test_expected_state_guards_against_other_writers(tmp_path: Path, open_ledger: Opener) -> None:
    """With ``expect``, a job moved meanwhile by another connection raises JobChanged and
    keeps what the other writer put there."""
    plan = make_plan(tmp_path, ["a"])
    mine = open_ledger()
    mine.sync(plan.jobs, plan.endpoint.id)
    key = plan.jobs[0].key
    mine.transition(key, JobStatus.SUBMITTING, attempts=1)
    mine.transition(key, JobStatus.RUNNING, request_id="r1")
    with open_ledger() as other:
        other.transition(key, JobStatus.CANCELLED, error="cancelled by user")
    with pytest.raises(JobChanged, match="is cancelled now, not running"):
        mine.transition(key, JobStatus.FAILED, expect=JobStatus.RUNNING, error="x")
    row = mine.get(key)
    assert (row.status, row.error) == (JobStatus.CANCELLED, "cancelled by user")
    row = mine.transition(key, JobStatus.PENDING, expect=JobStatus.CANCELLED)
    assert row.status is JobStatus.PENDING


def test_request_history_keeps_write_order_when_attempts_restart(
    tmp_path: Path, open_ledger: Opener
) -> None:
    """A job reopened with attempts back at 0 lists its request ids oldest first."""
    plan = make_plan(tmp_path, ["a"])
    ledger = open_ledger()
    ledger.sync(plan.jobs, plan.endpoint.id)
    key = plan.jobs[0].key
    for attempt, rid in enumerate(("r1", "r2"), start=1):
        ledger.transition(key, JobStatus.SUBMITTING, attempts=attempt)
        ledger.transition(key, JobStatus.QUEUED, request_id=rid, submitted_at=100.0 - attempt)
        ledger.transition(key, JobStatus.PENDING if attempt == 1 else JobStatus.FAILED)
    ledger.transition(key, JobStatus.PENDING, attempts=0)
    ledger.transition(key, JobStatus.SUBMITTING, attempts=1)
    ledger.transition(key, JobStatus.QUEUED, request_id="r3", submitted_at=1.0)
    assert ledger.requests(key) == ["r1", "r2", "r3"]


def test_every_status_has_its_transitions_written() -> None:
    """The transition table covers every status; final states reopen only deliberately (to be
    submitted anew, or, a failed job whose video is paid for, downloaded again)."""
    assert set(TRANSITIONS) == set(JobStatus)
    assert TRANSITIONS[JobStatus.FAILED] == {JobStatus.PENDING, JobStatus.DOWNLOADING}
    assert TRANSITIONS[JobStatus.CANCELLED] == {JobStatus.PENDING}


def test_request_history_and_fields(tmp_path: Path, open_ledger: Opener) -> None:
    """Every request id a job was given is kept; fields round-trip with their types."""
    ledger = open_ledger()
    plan = make_plan(tmp_path, ["a"])
    ledger.sync(plan.jobs, plan.endpoint.id)
    key = plan.jobs[0].key
    ledger.transition(key, JobStatus.SUBMITTING, attempts=1)
    ledger.transition(key, JobStatus.QUEUED, request_id="r1", submitted_at=10.0)
    ledger.transition(key, JobStatus.PENDING, error="runner_disconnected")
    ledger.transition(key, JobStatus.SUBMITTING, attempts=2)
    row = ledger.transition(key, JobStatus.SUBMIT_UNCERTAIN, possibly_duplicate=True)
    assert row.possibly_duplicate is True
    ledger.transition(key, JobStatus.SUBMITTING)
    ledger.transition(key, JobStatus.RUNNING, request_id="r2")
    assert ledger.requests(key) == ["r1", "r2"]
    assert ledger.get(key).payload == plan.jobs[0].payload
    with pytest.raises(LedgerError, match="unknown ledger fields: api_key"):
        ledger.update(key, api_key="secret")


def test_committed_state_survives_kill_9(
    tmp_path: Path, open_ledger: Opener, request: pytest.FixtureRequest
) -> None:
    """What a process committed is there after it is killed with SIGKILL mid-write."""
    plan = make_plan(tmp_path, [f"p{i}" for i in range(50)])
    ledger = open_ledger()  # made here, so the batch exists; the process opens its own
    script = f"""
import os, signal
from pathlib import Path
from batchgen.ledger.states import JobStatus
from batchgen.ledger.opener import open_shared
from batchgen.ledger.store import Ledger
from batchgen.plan.build import build_plan
plan = build_plan(Path({str(tmp_path / "p.csv")!r}))
ledger = {opening(ledger, request)}
ledger.sync(plan.jobs, plan.endpoint.id)
for i, job in enumerate(plan.jobs):
    ledger.transition(job.key, JobStatus.SUBMITTING, attempts=1)
    ledger.transition(job.key, JobStatus.QUEUED, request_id=f"req-{{i}}")
    if i == 24:
        os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True)
    assert proc.returncode == -9, proc.stderr
    counts = ledger.counts()
    assert counts[JobStatus.QUEUED] == 25
    assert counts[JobStatus.PENDING] == 25
    assert ledger.get(plan.jobs[24].key).request_id == "req-24"


def test_readonly_ledger_sees_live_writes(tmp_path: Path, open_ledger: Opener) -> None:
    """A read-only reader (batchgen status) sees what a writer commits, and cannot write."""
    writer = open_ledger()
    plan = make_plan(tmp_path, ["a"])
    writer.sync(plan.jobs, plan.endpoint.id)
    for reader in (open_ledger(readonly=True), writer.reader()):
        writer.transition(plan.jobs[0].key, JobStatus.SUBMITTING)
        assert reader.get(plan.jobs[0].key).status is JobStatus.SUBMITTING
        with pytest.raises((DiskError, LedgerError), match=r"readonly database|read-only"):
            reader.set_meta("x", 1)
        writer.transition(plan.jobs[0].key, JobStatus.PENDING)
        reader.close()


def test_readonly_on_a_folder_without_ledger(tmp_path: Path) -> None:
    """Opening a folder that holds no ledger says so plainly."""
    with pytest.raises(LedgerError, match="is this a batchgen output folder"):
        Ledger.in_folder(tmp_path, readonly=True)


def test_a_folder_an_older_batchgen_wrote_is_read_and_brought_up_to_date(
    tmp_path: Path,
) -> None:
    """A v2 ledger reads (read-only) with no files, and a writer migrates it to hold them."""
    path = tmp_path / "batchgen.db"
    db = sqlite3.connect(path)
    for number, migration in enumerate(MIGRATIONS[:2], start=1):
        migration(db)
        db.execute(f"PRAGMA user_version={number}")
    db.execute(
        "INSERT INTO jobs (key, position, row, repeat, endpoint, payload, extra, filename, "
        "status, updated_at) VALUES ('k', 0, 1, 0, 'e', '{}', '{}', 'k.mp4', 'pending', 0)"
    )
    db.commit()
    db.close()
    with Ledger(path, readonly=True) as old:
        (row,) = old.jobs()
        assert (row.files, row.sent, old.file_params()) == ({}, {}, [])
        assert row.billed_usd is None
    with Ledger(path) as ledger:
        ledger.update("k", billed_usd=0.35)
        assert ledger.get("k").billed_usd == 0.35
        ledger.update("k", sent={"image_url": "https://cdn.example/a.png"})
        assert ledger.get("k").sent == {"image_url": "https://cdn.example/a.png"}
        assert ledger.record_upload("ab", "https://rest.example", "https://cdn/a", 3).size == 3
        assert ledger.stale_upload("https://cdn/a") == 1
        assert ledger.upload("ab", "https://rest.example") is None


def test_billed_cost_is_kept_beside_the_estimate(tmp_path: Path, open_ledger: Opener) -> None:
    """billed_usd starts empty (not 0) and keeps what was recorded, apart from cost_usd."""
    ledger = open_ledger()
    plan = make_plan(tmp_path, ["a"])
    ledger.sync(plan.jobs, plan.endpoint.id)
    (job,) = ledger.jobs()
    assert job.billed_usd is None
    ledger.update(job.key, billed_usd=0.42)
    assert (ledger.get(job.key).billed_usd, ledger.get(job.key).cost_usd) == (0.42, job.cost_usd)


def test_first_request_is_the_oldest_and_stays(tmp_path: Path, open_ledger: Opener) -> None:
    """first_request is None before anything is sent, then the first request id ever given,
    whatever is sent after (another job, or the same job again)."""
    ledger = open_ledger()
    plan = make_plan(tmp_path, ["a", "b"])
    ledger.sync(plan.jobs, plan.endpoint.id)
    assert ledger.first_request() is None
    a, b = (job.key for job in plan.jobs)
    ledger.transition(b, JobStatus.SUBMITTING, attempts=1)
    ledger.transition(b, JobStatus.QUEUED, request_id="req-b1")
    ledger.transition(a, JobStatus.SUBMITTING, attempts=1)
    ledger.transition(a, JobStatus.QUEUED, request_id="req-a1")
    ledger.transition(b, JobStatus.PENDING)
    ledger.transition(b, JobStatus.SUBMITTING, attempts=2)
    ledger.transition(b, JobStatus.QUEUED, request_id="req-b2")
    assert ledger.first_request() == (b, "req-b1")


def test_a_request_id_is_one_jobs(tmp_path: Path, open_ledger: Opener) -> None:
    """Recording for job b a request id job a holds (or held) is refused, nothing of that
    move written, other moves of the same transaction made; the job may record its own id
    again."""
    ledger = open_ledger()
    plan = make_plan(tmp_path, ["a", "b"])
    ledger.sync(plan.jobs, plan.endpoint.id)
    a, b = (job.key for job in plan.jobs)
    for key in (a, b):
        ledger.transition(key, JobStatus.SUBMITTING, attempts=1)
    ledger.transition(a, JobStatus.QUEUED, request_id="rid-1")
    with pytest.raises(RequestIdTaken) as caught:
        ledger.transition(b, JobStatus.QUEUED, request_id="rid-1")
    assert caught.value.owner == a
    assert ledger.get(b).status is JobStatus.SUBMITTING
    assert ledger.get(b).request_id is None
    ledger.transition(a, JobStatus.PENDING)  # a gives the id up: it is still a's
    outcomes = ledger.transitions(
        [
            Move(b, JobStatus.QUEUED, None, {"request_id": "rid-1"}),
            Move(a, JobStatus.SUBMITTING, None, {"attempts": 2}),
        ]
    )
    assert isinstance(outcomes[0], RequestIdTaken)
    assert ledger.get(a).status is JobStatus.SUBMITTING
    ledger.transition(a, JobStatus.QUEUED, request_id="rid-1")  # its own, again
    assert ledger.requests(a) == ["rid-1"]


def test_an_older_ledger_with_one_id_for_two_jobs_is_mended(tmp_path: Path) -> None:
    """A v5 ledger where two jobs hold one request id (an older batchgen behind a proxy
    that repeated ids): the migration keeps the id with the job first given it and fails
    the other as a provider fault naming that job's row."""
    path = tmp_path / "batchgen.db"
    db = sqlite3.connect(path)
    for number, migration in enumerate(MIGRATIONS[:5], start=1):
        migration(db)
        db.execute(f"PRAGMA user_version={number}")
    for row, (key, at) in enumerate((("first", 1.0), ("second", 2.0)), start=1):
        db.execute(
            "INSERT INTO jobs (key, position, row, repeat, endpoint, payload, extra, filename, "
            "status, request_id, attempts, updated_at) "
            "VALUES (?, ?, ?, 0, 'e', '{}', '{}', ?, 'done', 'rid-1', 1, 0)",
            (key, row, row, f"{key}.mp4"),
        )
        db.execute(
            "INSERT INTO requests (key, request_id, attempt, submitted_at) VALUES (?, ?, 1, ?)",
            (key, "rid-1", at),
        )
    db.commit()
    db.close()
    with Ledger(path) as ledger:
        first, second = ledger.get("first"), ledger.get("second")
        assert (first.status, first.request_id) == (JobStatus.DONE, "rid-1")
        assert (second.status, second.request_id) == (JobStatus.FAILED, None)
        assert second.error_type == "duplicate_request_id"
        assert "row 1 (job first)" in str(second.error)
        assert ledger.requests("second") == []
