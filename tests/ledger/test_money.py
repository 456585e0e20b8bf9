"""Money summed by the database (``money.COMMITTED_SQL``) is ``money.committed``'s, on both
backends and every kind of row."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest
from conftest import Opener

from batchgen.ledger.money import tally
from batchgen.ledger.states import JobStatus
from batchgen.plan.build import build_plan

# Every value of each field the rule reads, and one the rule does not name.
GRID = list(
    itertools.product(
        JobStatus,
        (0, 1, 2),  # attempts
        (0, 1),  # retry_from
        (None, "server_error", "upload", "content_policy_violation", "protocol"),  # error_type
        ((None, None), (5.0, None), (5.0, 6.0)),  # started_at, completed_at
        (None, "https://v3.fal.media/files/x.mp4"),  # video_url
    )
)


def test_the_sql_rule_sums_what_committed_counts(tmp_path: Path, open_ledger: Opener) -> None:
    """A ledger holding every combination of status, attempts, retry_from, error_type,
    started_at, completed_at, video_url and in_input, each job of its own price: the
    database's committed sum equals ``tally``'s over the same rows."""
    source = tmp_path / "p.csv"
    source.write_text("prompt\n" + "".join(f"shot {i}\n" for i in range(2 * len(GRID))))
    plan = build_plan(source)
    ledger = open_ledger()
    ledger.sync(plan.jobs, plan.endpoint.id)
    ledger.sync(plan.jobs[: len(GRID)], plan.endpoint.id)  # the other half: not in the input
    states: list[dict[str, Any]] = []
    for at, job in enumerate(plan.jobs):
        status, attempts, retry_from, error_type, times, video_url = GRID[at % len(GRID)]
        states.append(
            {
                "key": job.key,
                "status": status,
                "attempts": attempts,
                "retry_from": retry_from,
                "error_type": error_type,
                "started_at": times[0],
                "completed_at": times[1],
                "video_url": video_url,
                "cost_usd": math.sqrt(at + 2),  # no two subsets of rows sum alike
            }
        )
    assert ledger.restore(states, plan.endpoint.id, {}) == len(states)
    jobs = ledger.jobs()
    assert sum(not job.in_input for job in jobs) == len(GRID)
    expected = tally(jobs).committed
    assert 0 < expected < sum(job.cost_usd or 0 for job in jobs)  # some rows in, some out
    assert ledger.committed_usd() == pytest.approx(expected, abs=1e-6)
