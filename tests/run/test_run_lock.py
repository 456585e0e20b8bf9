"""One writer per folder: a second run on a live run's folder is refused before sending anything."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from runs import cli_args, mock_config, plan_for, prompts, rows, run
from test_run_resume import finish, start, submitted, until

from batchgen.cli import cli
from batchgen.errors import UsageError
from batchgen.ledger.lock import LOCK_NAME, folder_lock
from batchgen.mock import MockServer


async def test_second_run_is_refused_while_the_first_lives(tmp_path: Path) -> None:
    """A second `batchgen run` on a live run's folder exits 2 at once naming the holder's PID and
    host, sends nothing and changes nothing; status works beside the live run; once the holder
    is killed (-9) the lock is gone and a run finishes the folder."""
    out = tmp_path / "out"
    source = prompts(tmp_path, 6)
    async with MockServer(mock_config(latency=2000.0)) as server:  # 2 s jobs: the first lives
        args = cli_args(source, out, server.base_url)
        first = await start(args)
        await until(lambda: submitted(server) >= 6)
        before = server.stats()["submits_by_payload"]

        code, err = await finish(await start(args))
        assert code == 2, err
        assert f"PID {first.pid} on {socket.gethostname()}" in err
        assert "in use by another batchgen run" in err
        assert server.stats()["submits_by_payload"] == before
        assert first.returncode is None  # the holder was not disturbed

        status = CliRunner().invoke(cli, ["status", str(out), "--json"])
        assert status.exit_code == 0, status.output
        assert sum(json.loads(status.output)["counts"].values()) == 6

        first.send_signal(signal.SIGKILL)
        await finish(first)
        code, err = await finish(await start(args))
        stats = server.stats()
    assert code == 0, err
    assert all(n == 1 for n in stats["submits_by_payload"].values())
    assert {job.status for job in rows(out)} == {"done"}


async def test_in_process_runs_share_the_rule(tmp_path: Path) -> None:
    """The library refuses too: a Runner on a folder whose lock is held raises UsageError before
    the ledger is created."""
    out = tmp_path / "out"
    plan = plan_for(prompts(tmp_path, 2), out)
    async with MockServer(mock_config()) as server:
        with folder_lock(out), pytest.raises(UsageError, match=f"PID {os.getpid()} on"):
            await run(plan, server)
        assert not (out / "batchgen.db").exists()
        assert server.stats()["requests"] == {}
        result = await run(plan, server)  # the block released it
    assert result.outcome == "done"
    assert (out / LOCK_NAME).is_file()
