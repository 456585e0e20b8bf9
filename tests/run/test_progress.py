"""Progress reporters: counts, bars on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from batchgen.run.progress import BarReporter, LineReporter, Reporter


def test_null_reporter_counts_and_shows_nothing() -> None:
    """The base reporter keeps counts (earlier runs included) and prints nothing."""
    reporter = Reporter()
    reporter.start(10, submitted=2, downloaded=1)
    reporter.submitted()
    reporter.failed()
    reporter.spend(1.05)
    assert (reporter.n_submitted, reporter.n_downloaded, reporter.n_failed) == (3, 1, 1)
    assert reporter.postfix() == "failed 1, spent ~$1.05"


def test_line_reporter_writes_now_and_then() -> None:
    """Lines appear at most every `every` seconds of its clock, and once at the end."""
    now = [0.0]
    stream = io.StringIO()
    reporter = LineReporter(stream, every=10.0, clock=lambda: now[0])
    reporter.start(5)
    for _ in range(3):
        reporter.submitted()
    now[0] = 11.0
    reporter.completed()
    reporter.close()
    lines = stream.getvalue().splitlines()
    assert lines == [
        "0/5 submitted, 0 completed, 0 downloaded, failed 0",
        "3/5 submitted, 1 completed, 0 downloaded, failed 0",
        "3/5 submitted, 1 completed, 0 downloaded, failed 0",
    ]


def test_bar_reporter_draws_three_bars() -> None:
    """Bars for submitted, completed and downloaded, with failures and spend in the postfix."""
    stream = io.StringIO()
    reporter = BarReporter(stream)
    reporter.start(4, spent=0.0)
    reporter.submitted()
    reporter.completed()
    reporter.downloaded()
    reporter.failed()
    reporter.spend(0.7)
    reporter.note("a warning")
    reporter.close()
    text = stream.getvalue()
    for label in ("submitted", "completed", "downloaded", "failed 1", "a warning"):
        assert label in text
