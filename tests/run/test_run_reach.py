"""An API never reached stops the run fast; one that answered and went away is waited for."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import replace
from pathlib import Path

from runs import (
    FAST,
    assert_all_verified,
    connection,
    mock_config,
    plan_for,
    prompts,
    rows,
    run,
)
from test_run_resume import until

from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer
from batchgen.mock.stats import payload_digest
from batchgen.run.progress import Reporter
from batchgen.run.runner import Runner

S = JobStatus


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_api_never_reached_stops_within_the_limit(tmp_path: Path) -> None:
    """Connection refused by this machine from the start: the run stops soon with one line
    naming the address and how to start the emulator, every job still pending (nothing was
    sent, nothing uncertain)."""
    out = tmp_path / "out"
    base = f"http://127.0.0.1:{closed_port()}"
    timing = replace(FAST, unreachable_after=0.2)
    result = await asyncio.wait_for(
        run(plan_for(prompts(tmp_path, 5), out), base, timing=timing), 10
    )
    assert result.outcome == "failed"
    assert result.message.startswith(f"nothing listens at {base} on this machine ")
    assert "nothing was sent" in result.message
    assert "`batchgen mock`" in result.message
    assert "--mock" in result.message
    assert {job.status for job in rows(out)} == {S.PENDING}
    assert {job.possibly_duplicate for job in rows(out)} == {False}
    assert result.committed_usd == 0.0


def answered(out: Path) -> int:
    return sum(job.request_id is not None for job in rows(out))


class Cable:
    """A TCP forwarder to ``target`` on a fixed loopback port that can be unplugged."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, closed_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def plug(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def unplug(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._pipes):
            writer.close()
        await self._server.wait_closed()
        for writer in list(self._pipes):
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._pipes |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._pipes -= {writer, up_writer}


async def test_api_that_answered_is_waited_for(tmp_path: Path) -> None:
    """The API answers, then its host stops taking connections for a while (a network blip):
    the run says it is waiting, says when the API is back, and ends with every job done."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 12), out)
    reporter = Reporter()
    async with MockServer(mock_config(latency=200.0)) as server:
        cable = Cable(server.port)
        await cable.plug()
        task = asyncio.create_task(run(plan, f"http://127.0.0.1:{cable.port}", reporter=reporter))
        # Until the run has had answers (request ids recorded), then the host goes away.
        await until(lambda: (out / "batchgen.db").exists() and answered(out) >= 4)
        await cable.unplug()
        await until(lambda: any("waiting for the API" in note for note in reporter.notes))
        await cable.plug()
        try:
            result = await asyncio.wait_for(task, 30)
        finally:
            await cable.unplug()
        stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert any("the API answers again" in note for note in reporter.notes)
    for job in rows(out):
        assert (
            stats["submits_by_payload"][payload_digest(job.payload)] == 1 or job.possibly_duplicate
        )


async def test_first_ctrl_c_stops_submits_waiting_for_the_api(tmp_path: Path) -> None:
    """While the API is out of reach, the first Ctrl-C (drain) stops the submits that wait for
    it: once the API is back, the jobs in flight finish and nothing more is sent."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 12), out, concurrency=4)
    reporter = Reporter()
    async with MockServer(mock_config(latency=60.0, max_in_progress=2)) as server:
        cable = Cable(server.port)
        await cable.plug()
        base = connection(f"http://127.0.0.1:{cable.port}")
        runner = Runner(plan, base, timing=FAST, reporter=reporter)
        task = asyncio.create_task(runner.run())
        await until(lambda: (out / "batchgen.db").exists() and answered(out) >= 2)
        await cable.unplug()
        await until(lambda: any("waiting for the API" in note for note in reporter.notes))
        runner.drain()
        sent = sum(server.stats()["submits_by_payload"].values())
        await cable.plug()
        try:
            result = await asyncio.wait_for(task, 30)
        finally:
            await cable.unplug()
        assert sum(server.stats()["submits_by_payload"].values()) == sent
    assert result.outcome == "interrupted"
    statuses = [job.status for job in rows(out)]
    assert S.SUBMITTING not in statuses
    assert statuses.count(S.PENDING) >= 12 - 4
