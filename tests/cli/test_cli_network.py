"""Proxies and CA bundles on the command line: `run --mock` under a proxy, refusals (exit 2),
and `cancel` reaching its provider through a proxy with `--ca-bundle`."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import aiohttp
import pytest
import trustme
from click.testing import CliRunner
from folders import make_folder
from forward_proxy import ForwardProxy
from mock_fixtures import AUTH, KLING, fast_config
from runs import prompts, rows

from batchgen.cli import cli
from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer

S = JobStatus
FAST = ["--progress", "none", "--time-scale", "0.001"]
API = "api.example.invalid"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_in_process_emulator_is_reached_directly_under_a_proxy(tmp_path: Path) -> None:
    """`run --mock` with proxy variables naming a dead proxy: this process's own emulator is
    reached directly, every job done."""
    source, out = prompts(tmp_path, 3), tmp_path / "out"
    dead = f"http://127.0.0.1:{closed_port()}"
    result = CliRunner().invoke(
        cli,
        ["run", str(source), "--mock", "--out", str(out), *FAST],
        env={"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "NO_PROXY": None, "no_proxy": None},
    )
    assert result.exit_code == 0, result.output
    assert {job.status for job in rows(out)} == {S.DONE}


def test_a_proxy_variable_naming_no_proxy_exits_2(tmp_path: Path) -> None:
    """HTTPS_PROXY that is no http(s) proxy URL: exit 2 naming the variable, its password
    not shown, nothing sent."""
    source, out = prompts(tmp_path, 2), tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["run", str(source), "--mock", "--out", str(out), *FAST],
        env={"HTTPS_PROXY": "socks5://bob:hunter2@proxy:1080", "https_proxy": None},
    )
    assert result.exit_code == 2, result.output
    assert "error: HTTPS_PROXY=socks5://***@proxy:1080 is not a proxy" in result.output
    assert "hunter2" not in result.output
    assert not (out / "batchgen.db").exists() or {j.status for j in rows(out)} == {S.PENDING}


def test_a_ca_bundle_that_holds_no_certificate_exits_2(tmp_path: Path) -> None:
    """--ca-bundle FILE of no PEM certificate (or missing): exit 2 naming the file."""
    source, out = prompts(tmp_path, 2), tmp_path / "out"
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n", encoding="utf-8")
    args = ["run", str(source), "--mock", "--out", str(out), *FAST, "--ca-bundle"]
    result = CliRunner().invoke(cli, [*args, str(notes)])
    assert result.exit_code == 2, result.output
    assert f"--ca-bundle {notes}: holds no PEM certificate" in result.output
    missing = CliRunner().invoke(cli, [*args, str(tmp_path / "nope.pem")])
    assert missing.exit_code == 2, missing.output
    assert "does not exist" in missing.output


async def test_cancel_goes_through_the_proxy_with_the_ca_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`batchgen cancel --ca-bundle FILE` with HTTPS_PROXY: the PUT reaches a TLS emulator
    of a private CA through a CONNECT tunnel, and the job is cancelled."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(API, "127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    folder = make_folder(tmp_path, "prompt\na\nb\n")
    first = folder.keys[0]
    config = fast_config(latency=3_600_000.0, max_in_progress=1)
    async with MockServer(config, ssl_context=context) as server:
        trusting = ssl.create_default_context(cafile=str(bundle))
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{server.base_url}/{KLING}", json={"prompt": "a"}, headers=AUTH, ssl=trusting
            ) as answer,
        ):
            rid = (await answer.json())["request_id"]
        folder.ledger.transition(first, S.SUBMITTING, attempts=1)
        folder.ledger.transition(first, S.QUEUED, request_id=rid)
        async with ForwardProxy({f"{API}:443": server.port}) as proxy:
            for name in ("https_proxy", "no_proxy", "NO_PROXY"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            args = ["cancel", str(folder.path), "--in-flight", "--provider", "mock"]
            args += ["--base-url", f"https://{API}", "--ca-bundle", str(bundle)]
            result = await asyncio.to_thread(CliRunner().invoke, cli, args)
        cancels = server.stats()["requests"].get("cancel", {})
    assert result.exit_code == 0, result.output
    assert "1 cancelled at the provider" in result.output
    assert sum(cancels.values()) == 1
    assert [(seen.method, seen.target) for seen in proxy.seen] == [("CONNECT", f"{API}:443")]
    assert folder.ledger.get(first).status is S.CANCELLED
