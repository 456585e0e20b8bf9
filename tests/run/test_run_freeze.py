"""A process stopped with requests in flight (a closed laptop lid, Ctrl-Z, a paused VM) reads
the answers that came meanwhile: nothing is called lost, nothing is sent twice."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from runs import SCALE, assert_all_verified, cli_args, mock_config, prompts, rows
from test_run_resume import finish, start, submitted, until

from batchgen.mock import MockServer
from batchgen.mock.stats import payload_digest

# Every request to the emulator takes this long (real seconds): submits are surely in flight
# when the run is stopped.
SLOW = 0.3
REQUEST_TIMEOUT = 1.0
FROZEN = 4.0  # real seconds: well past the request timeout


def slowed(server: MockServer) -> int:
    return int(server.stats()["faults"].get("slow", 0))


async def test_a_run_stopped_with_submits_in_flight_sends_each_job_once(tmp_path: Path) -> None:
    """SIGSTOP while 4 submits wait for their answers, SIGCONT after more than the request
    timeout: the answers that arrived are read, every job is submitted once and done, and the
    run says how long it was paused."""
    out = tmp_path / "out"
    config = mock_config(fault_slow=1.0, slow_delay=SLOW / SCALE)
    async with MockServer(config) as server:
        args = cli_args(
            prompts(tmp_path, 8),
            out,
            server.base_url,
            concurrency=4,
            request_timeout=REQUEST_TIMEOUT,
        )
        proc = await start(args)
        await until(lambda: slowed(server) >= 4)  # the first 4 submits are being answered
        proc.send_signal(signal.SIGSTOP)
        try:
            await until(lambda: submitted(server) >= 4)  # their answers went out meanwhile
            await asyncio.sleep(FROZEN)  # the fault itself: the process stays stopped
        finally:
            proc.send_signal(signal.SIGCONT)
        code, err = await finish(proc)
        stats = server.stats()
    assert code == 0, err
    assert_all_verified(out, stats)
    jobs = rows(out)
    assert sum(stats["submits_by_payload"].values()) == len(jobs) == 8
    for job in jobs:
        assert stats["submits_by_payload"][payload_digest(job.payload)] == 1
        assert not job.possibly_duplicate
    log = (out / "batchgen.log").read_text()
    assert " lost " not in log  # no answer was called lost: none needed the request log
    assert "adopted" not in log
    assert "paused for " in err
