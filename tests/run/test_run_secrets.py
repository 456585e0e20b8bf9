"""The API key is never written anywhere: not to the ledger, log, manifest, run.json or report."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from runs import cli_args, mock_config, prompts, subprocess_env

from batchgen.cli import cli
from batchgen.mock import MockServer


def files_holding(folder: Path, secret: bytes) -> list[Path]:
    """Every file under ``folder`` whose bytes contain ``secret``."""
    return [p for p in folder.rglob("*") if p.is_file() and secret in p.read_bytes()]


@pytest.mark.parametrize("source", ["env", "file"])
async def test_key_is_in_no_file_the_run_writes(tmp_path: Path, source: str) -> None:
    """A run with failures and retries, then report and export, leave the key in no file."""
    secret = f"sk-{uuid.uuid4().hex}"
    out = tmp_path / "out"
    config = mock_config(
        api_keys=(secret,), fault_429=0.1, fault_runner_disconnected=0.2, policy_word="forbidden"
    )
    args = cli_args(prompts(tmp_path, 8, word="forbidden"), out, "")
    env = subprocess_env(BATCHGEN_MOCK_KEY=secret if source == "env" else "")
    if source == "file":
        key_file = tmp_path / "key.txt"
        key_file.write_text(secret + "\n")
        args += ["--api-key-file", str(key_file)]
    async with MockServer(config) as server:
        args[args.index("--base-url") + 1] = server.base_url
        proc = await asyncio.create_subprocess_exec(
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        stdout, stderr = await proc.communicate()
        stats = server.stats()
    # Some rows hit the content-policy word: the run ends 1, with the rest done.
    assert proc.returncode == 1, stderr.decode()
    assert sum(stats["requests"]["file"].values()) >= 1
    runner = CliRunner()
    assert runner.invoke(cli, ["report", str(out)]).exit_code == 0
    exported = runner.invoke(
        cli, ["export", str(out), "--format", "hf", "--to", str(tmp_path / "hf")]
    )
    assert exported.exit_code == 0, exported.output
    assert {p.name for p in out.iterdir()} >= {
        "batchgen.db",
        "batchgen.log",
        "manifest.csv",
        "manifest.jsonl",
        "run.json",
        "report.html",
    }
    key = secret.encode()
    assert files_holding(out, key) == []
    assert files_holding(tmp_path / "hf", key) == []
    assert key not in stdout
    assert key not in stderr
