"""Starting the emulator: in-process, in a thread, from the command line; config checks."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from mock_fixtures import AUTH, KLING, fast_config

from batchgen.cli import cli
from batchgen.errors import UsageError
from batchgen.mock import MockConfig, MockServer
from batchgen.mock.config import FAULT_FIELDS

REPO = Path(__file__).resolve().parents[2]


def post_json(url: str, body: object, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


async def test_server_binds_an_ephemeral_loopback_port() -> None:
    """By default the server listens on 127.0.0.1 on a free port and says so in base_url."""
    server = MockServer(fast_config())
    with pytest.raises(RuntimeError):
        _ = server.base_url
    async with server:
        assert server.port > 0
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        assert "IN_QUEUE=0" in repr(server)
    assert "stopped" in repr(server)


def test_thread_handle_serves_and_stops() -> None:
    """start_in_thread returns once listening; stats() and stop() work from the caller's thread."""
    with MockServer.start_in_thread(fast_config()) as handle:
        status, envelope = post_json(f"{handle.base_url}/{KLING}", {"prompt": "a cat"}, AUTH)
        assert status == 200
        assert envelope["request_id"]
        handle.config.fault_503 = 1.0  # the live config is shared with the thread
        with pytest.raises(urllib.error.HTTPError) as refused:
            post_json(f"{handle.base_url}/{KLING}", {"prompt": "a cat"}, AUTH)
        assert refused.value.code == 503
        refused.value.close()
        assert handle.stats()["requests"]["submit"] == {"200": 1, "503": 1}
    handle.stop()  # a second stop is harmless


def test_thread_start_reports_a_bind_failure() -> None:
    """A port that is taken makes start_in_thread raise instead of hanging."""
    with MockServer.start_in_thread(fast_config()) as first, pytest.raises(OSError, match="in use"):
        MockServer.start_in_thread(fast_config(), port=first.server.port)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fault_503": 1.5}, "fault_503"),
        ({"time_scale": 0.0}, "time_scale"),
        ({"auth_scheme": "basic"}, "auth_scheme"),
        ({"max_in_progress": 0}, "max_in_progress"),
        ({"api_keys": ("",)}, "api_keys"),
        ({"latency": -1.0}, "latency"),
    ],
)
def test_config_check_names_the_bad_setting(settings: dict, message: str) -> None:
    """An out-of-range setting is a UsageError naming it, raised before anything listens."""
    with pytest.raises(UsageError, match=message):
        MockServer(MockConfig(**settings))


def test_cli_help_lists_the_fault_options() -> None:
    """`batchgen mock --help` documents the listener, timing and every fault option."""
    result = CliRunner().invoke(cli, ["mock", "--help"])
    assert result.exit_code == 0
    for option in (
        "--port",
        "--time-scale",
        "--max-in-progress",
        "--api-key",
        "--fault-429-retry-after",
        "--fault-503",
        "--fault-reset",
        "--fault-submit-drop",
        "--fault-runner-disconnected",
        "--fault-truncate",
        "--policy-word",
        "--files-base-url",
        "--envelope-base-url",
        "--video-bytes",
    ):
        assert option in result.output


def test_every_fault_setting_has_a_cli_option() -> None:
    """Each fault rate of MockConfig can be set from the command line."""
    output = CliRunner().invoke(cli, ["mock", "--help"]).output
    for name in FAULT_FIELDS:
        assert "--" + name.replace("_", "-") + " " in output, name


def test_cli_refuses_bad_settings_with_exit_2() -> None:
    """Settings out of range end with exit code 2 and a message, before serving."""
    result = CliRunner().invoke(cli, ["mock", "--port", "0", "--time-scale", "0"])
    assert result.exit_code == 2
    assert "time_scale" in result.output
    result = CliRunner().invoke(cli, ["mock", "--fault-503", "2"])
    assert result.exit_code == 2


def test_cli_serves_until_stopped() -> None:
    """`python -m batchgen mock --port 0` prints its URL on stderr and answers submits."""
    child = subprocess.Popen(
        [sys.executable, "-m", "batchgen", "mock", "--port", "0", "--api-key", "k", "--seed", "1"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None
        line = child.stderr.readline()
        base_url = line.split(" on ")[1].split()[0]
        status, envelope = post_json(
            f"{base_url}/{KLING}", {"prompt": "a cat"}, {"Authorization": "Key k"}
        )
        assert status == 200
        assert envelope["status"] == "IN_QUEUE"
    finally:
        child.terminate()
        child.wait(10)
        if child.stderr is not None:
            child.stderr.close()
