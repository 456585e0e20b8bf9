"""fal's own Python client (fal-client 1.0.x) against the emulator, over TLS.

fal-client reads its queue host from ``FAL_QUEUE_RUN_HOST`` when it is imported and always
speaks https; httpx trusts ``SSL_CERT_FILE``. So the client runs in a subprocess whose
environment points it at the emulator, which serves a certificate from a trustme CA.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from pathlib import Path

import pytest
import trustme
from mock_fixtures import KLING, fast_config

from batchgen.mock import MockServer

SCRIPT = r"""
import json, sys
import fal_client, httpx

endpoint = sys.argv[1]
handle = fal_client.submit(endpoint, arguments={"prompt": "a cat in the rain"})
first = handle.status(with_logs=True)
result = handle.get()
final = fal_client.status(endpoint, handle.request_id, with_logs=True)
again = fal_client.result(endpoint, handle.request_id)
data = httpx.get(result["video"]["url"]).content
print(json.dumps({
    "request_id": handle.request_id,
    "first": type(first).__name__,
    "final": type(final).__name__,
    "metrics": final.metrics,
    "error_type": final.error_type,
    "result": result,
    "same": again == result,
    "head": data[:8].hex(),
    "size": len(data),
}))
"""


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 and the PEM file of the CA that signed it."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


async def test_fal_client_submit_status_result(
    tls: tuple[ssl.SSLContext, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """fal-client submits, polls, fetches the result and downloads a real MP4, despite 429s."""
    context, ca_file = tls
    config = fast_config(
        auth_scheme="key",
        api_keys=("fal-test-key",),
        latency=110.0,  # 110 ms at the test scale: about one poll
        queue_delay=5.0,
        fault_429=0.3,  # fal-client retries these on its own
        seed=1,  # under which the first submit is refused with a 429
    )
    async with MockServer(config, ssl_context=context) as server:
        assert server.base_url.startswith("https://")
        monkeypatch.setenv("FAL_KEY", "fal-test-key")
        monkeypatch.setenv("FAL_QUEUE_RUN_HOST", f"127.0.0.1:{server.port}")
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        monkeypatch.setenv("NO_PROXY", "*")
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SCRIPT,
            KLING,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(os.environ),
        )
        out, err = await asyncio.wait_for(child.communicate(), 60)
        stats = server.stats()
        base_url = server.base_url
    assert child.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["first"] in ("Queued", "InProgress")
    assert report["final"] == "Completed"
    assert report["error_type"] is None
    assert report["metrics"]["inference_time"] > 0
    assert report["same"]
    video = report["result"]["video"]
    assert video["url"] == f"{base_url}/files/{report['request_id']}/output.mp4"
    assert bytes.fromhex(report["head"])[4:8] == b"ftyp"
    assert report["size"] == video["file_size"]
    assert stats["requests"]["submit"] == {"429": 1, "200": 1}
    assert stats["status_requests"][report["request_id"]] >= 2
    assert stats["files"][report["request_id"]]["truncated"] == 0
