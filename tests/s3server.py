"""An S3-compatible server on loopback for the ``--store`` tests: moto's standalone server.

``s3`` starts one per test on a free port, empties it, makes the bucket ``BUCKET`` and points
the environment at it (``AWS_ENDPOINT_URL``, test credentials, no config files), as a user
would point batchgen at MinIO or R2: batchgen itself is given only the ``s3://`` URL.
"""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BUCKET = "batchgen-test"
ACCESS_KEY = "AKIABATCHGENTEST0001"
SECRET_KEY = "s3cr3t-Batchgen-Test-Key-Never-Written"


@dataclass(frozen=True, slots=True)
class S3:
    """The running server: its endpoint and a boto3 client on it."""

    endpoint: str
    client: Any

    def url(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}"

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body

    def head(self, key: str) -> dict[str, Any]:
        head: dict[str, Any] = self.client.head_object(Bucket=BUCKET, Key=key)
        return head

    def sha256(self, key: str) -> str:
        return hashlib.sha256(self.read(key)).hexdigest()


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[S3]:
    """A fresh moto S3 server with an empty bucket, and an environment that points at it."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server", reason="needs moto[server] (the test extra)")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its buckets in the process: start from none.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", b""))
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            monkeypatch.delenv(name, raising=False)
        nothing = str(tmp_path / "no-aws-config")
        for name, value in {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_CONFIG_FILE": nothing,
            "AWS_SHARED_CREDENTIALS_FILE": nothing,
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            monkeypatch.setenv(name, value)
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=BUCKET)
        yield S3(endpoint, client)
    finally:
        server.stop()
