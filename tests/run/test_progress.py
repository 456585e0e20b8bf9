"""Progress: one figure set from job states and money, a live display, or timestamped lines."""

from __future__ import annotations

import io
import re

from runs import Clock

from batchgen.ledger.states import JobStatus
from batchgen.run.progress import BarReporter, LineReporter, Reporter, clock_text

S = JobStatus
RESUMED = {S.DONE: 40, S.PENDING: 15, S.QUEUED: 3, S.RUNNING: 2}


def test_counts_start_from_the_ledger_and_follow_moves() -> None:
    """A resumed folder starts at its own counts (40 of 60 finished, not 0), and moves add up."""
    reporter = Reporter()
    reporter.start(RESUMED)
    assert (reporter.total, reporter.finished) == (60, 40)
    reporter.moved(S.PENDING, S.SUBMITTING)
    reporter.moved(S.RUNNING, S.DOWNLOADING)
    reporter.moved(S.DOWNLOADING, S.DONE)
    reporter.moved(S.QUEUED, S.FAILED)
    assert reporter.figures() == {
        "running": 1,
        "queued": 3,
        "pending": 14,
        "downloading": 0,
        "failed": 1,
    }
    assert reporter.finished == 42


def test_eta_from_the_latency_model_then_from_the_pace() -> None:
    """Before a job finishes in this run the ETA is waves of the expected latency; after, this
    run's pace; a run resumed with 40 done does not count those toward the pace."""
    clock = Clock()
    reporter = Reporter(clock)
    reporter.start(RESUMED, latency=10.0, concurrency=4)
    assert reporter.eta() == 5 * 10.0  # 20 left, 4 at a time
    clock.now = 30.0
    reporter.moved(S.RUNNING, S.DONE)
    reporter.moved(S.RUNNING, S.DONE)
    assert reporter.eta() == 15.0 * 18  # 30 s for 2 jobs, 18 left
    assert Reporter().eta() == 0.0  # nothing to do


def test_status_line_fits_80_columns_and_says_money() -> None:
    """The status line names every figure and both sums; narrow terminals get a compact one."""
    reporter = Reporter()
    reporter.start({S.PENDING: 1000, S.RUNNING: 40, S.QUEUED: 200, S.FAILED: 12})
    reporter.money(1234.56, 987.65)
    wide = reporter.status_line(160)
    assert wide == (
        "running 40 · queued 200 · pending 1000 · downloading 0 · failed 12 · "
        "committed $1,234.56 · spent $987.65"
    )
    narrow = reporter.status_line(80)
    assert len(narrow) < 80
    assert narrow.endswith("failed 12 · $1,234.56/$987.65")  # committed/spent, when tight
    reporter.money(3.85, 1.4)
    assert reporter.status_line(80).endswith("$3.85 committed/$1.40 spent")


def test_line_reporter_writes_timestamped_lines_on_its_clock() -> None:
    """Not on a terminal: a timestamped line at the start, every `every` seconds of ticks,
    and at the end, with the same figures plus elapsed and ETA."""
    clock, stream = Clock(), io.StringIO()
    reporter = LineReporter(stream, every=10.0, clock=clock, wall=lambda: 0.0)
    reporter.start({S.PENDING: 5}, latency=60.0, concurrency=5)
    for second in range(1, 12):
        clock.now = float(second)
        reporter.tick()
    reporter.moved(S.PENDING, S.DONE)
    reporter.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert all(re.match(r"\[\d\d:\d\d:\d\d\] ", line) for line in lines)
    assert "0/5 finished · running 0 · queued 0 · pending 5" in lines[0]
    assert "elapsed 0:00 · eta 1:00" in lines[0]
    assert "elapsed 0:10" in lines[1]
    assert "1/5 finished" in lines[2]


def test_bar_reporter_on_a_fake_terminal() -> None:
    """The live display shows finished of all (a resume starts at 40/60), the status line, and
    notes above it; once closed, nothing more is drawn (no stale bar on the prompt)."""
    stream, clock = io.StringIO(), Clock()
    reporter = BarReporter(stream, clock=clock, width=lambda: 80)
    reporter.start(RESUMED, latency=20.0, concurrency=5)
    reporter.money(3.85, 1.40)
    reporter.note("failed: row 7 (1a2b3c4d): content policy")
    clock.now = 61.0
    reporter.tick()
    text = stream.getvalue()
    assert "40/60" in text
    assert "0/60" not in text.replace("40/60", "")
    assert "run 2 · queue 3 · pend 15 · dl 0 · failed 0" in text
    assert "$3.85 committed/$1.40 spent" in text
    assert "failed: row 7 (1a2b3c4d): content policy" in text
    assert "elapsed 1:01" in text
    reporter.close()
    closed = stream.getvalue()
    reporter.tick()
    reporter.moved(S.PENDING, S.DONE)
    assert stream.getvalue() == closed


def test_clock_text() -> None:
    """Durations read as m:ss, or h:mm:ss past an hour."""
    assert [clock_text(s) for s in (0, 65, 3725)] == ["0:00", "1:05", "1:02:05"]


def test_recount_replaces_the_counts_read_from_the_ledger() -> None:
    """Counts read again from the ledger (jobs another process cancelled) replace the old."""
    reporter = Reporter()
    reporter.start(RESUMED)
    reporter.recount({S.DONE: 40, S.CANCELLED: 15, S.QUEUED: 3, S.RUNNING: 2})
    assert (reporter.total, reporter.finished, reporter.figures()["pending"]) == (60, 55, 0)
