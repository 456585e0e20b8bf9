"""`batchgen run --store`, `status`, `report` and `export` on a folder whose videos are in an
S3-compatible server (moto, on loopback); refusals exit 2 before anything is sent."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from pathlib import Path
from urllib.parse import unquote

import pgserver
import pytest
from click.testing import CliRunner
from runs import prompts, rows
from s3server import ACCESS_KEY, BUCKET, S3, SECRET_KEY

from batchgen.cli import cli
from batchgen.ledger.states import JobStatus

FAST = ["--mock", "--progress", "none", "--time-scale", "0.001", "--yes"]
PREFIX = "runs/demo"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def gallery_videos(page: str) -> list[str]:
    match = re.search(r'<script type="application/json" id="jobs">(.*?)</script>', page, re.S)
    assert match is not None
    return [job["video"] for job in json.loads(match.group(1))["jobs"] if job["video"]]


def test_a_run_to_the_bucket_leaves_a_report_whose_links_are_its_objects(
    tmp_path: Path, s3: S3
) -> None:
    """After `run --store`, the bucket holds the videos, manifest, run.json and report.html,
    whose relative video links name objects beside it; `status` names the store; no file or
    object holds the credentials."""
    out = tmp_path / "out"
    code, output = invoke(
        "run", str(prompts(tmp_path, 4)), "--out", str(out), *FAST, "--store", s3.url(PREFIX)
    )
    assert code == 0, output
    keys = set(s3.keys(f"{PREFIX}/"))
    for name in ("report.html", "manifest.csv", "manifest.jsonl", "run.json"):
        assert f"{PREFIX}/{name}" in keys
    assert s3.head(f"{PREFIX}/report.html")["ContentType"] == "text/html; charset=utf-8"
    links = gallery_videos(s3.read(f"{PREFIX}/report.html").decode())
    assert len(links) == 4
    assert {f"{PREFIX}/{unquote(link)}" for link in links} <= keys
    assert all(not link.startswith(("/", "s3:", "http")) for link in links)
    assert not (out / "report.html").exists()
    code, output = invoke("status", str(out))
    assert code == 0
    assert f"videos in: s3://{BUCKET}/{PREFIX}" in output
    for secret in (SECRET_KEY.encode(), ACCESS_KEY.encode()):
        assert not [p for p in out.rglob("*") if p.is_file() and secret in p.read_bytes()]
        assert not [key for key in keys if secret in s3.read(key)]
        assert secret.decode() not in output


def test_report_and_export_read_the_store(tmp_path: Path, s3: S3) -> None:
    """`report` writes report.html into the store and prints its URL; `export --format hf`
    copies each video from the store, equal to its recorded sha256."""
    out = tmp_path / "out"
    code, output = invoke(
        "run", str(prompts(tmp_path, 2)), "--out", str(out), *FAST, "--store", s3.url(PREFIX)
    )
    assert code == 0, output
    s3.client.delete_object(Bucket=BUCKET, Key=f"{PREFIX}/report.html")
    code, output = invoke("report", str(out))
    assert code == 0, output
    assert output.strip() == f"s3://{BUCKET}/{PREFIX}/report.html"
    assert f"{PREFIX}/report.html" in s3.keys(f"{PREFIX}/")
    code, output = invoke("export", str(out), "--format", "hf", "--to", str(tmp_path / "hf"))
    assert code == 0, output
    assert "wrote 2 videos (0 linked, 2 copied)" in output
    for job in rows(out):
        video = tmp_path / "hf" / f"{job.key}.mp4"
        assert hashlib.sha256(video.read_bytes()).hexdigest() == job.sha256


def test_a_bucket_that_does_not_exist_exits_2_before_anything_is_sent(
    tmp_path: Path, s3: S3
) -> None:
    """A store whose bucket is missing: exit 2 naming it, no job submitted."""
    out = tmp_path / "out"
    code, output = invoke(
        "run",
        str(prompts(tmp_path, 2)),
        "--out",
        str(out),
        *FAST,
        "--store",
        "s3://no-such-bucket/x",
    )
    assert code == 2, output
    assert "error: --store s3://no-such-bucket/x: no such bucket or folder" in output
    assert "Traceback" not in output
    assert not (out / "batchgen.db").exists() or all(
        job.status is JobStatus.PENDING for job in rows(out)
    )


def test_an_unreachable_store_exits_2(
    tmp_path: Path, s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint nobody answers on: exit 2 saying what to check."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, output = invoke(
        "run",
        str(prompts(tmp_path, 1)),
        "--out",
        str(tmp_path / "out"),
        *FAST,
        "--store",
        s3.url(PREFIX),
    )
    assert code == 2, output
    assert "cannot write there" in output
    assert "AWS_ENDPOINT_URL" in output


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("bucket/prefix", "is not a URL"),
        ("s3://AKIAX:hunter2@bucket/prefix", "carries credentials"),
        ("nosuch://bucket/prefix", "Protocol not known: nosuch"),
    ],
)
def test_a_store_url_that_is_no_store_exits_2(tmp_path: Path, url: str, says: str) -> None:
    """No scheme, credentials in the URL, an unknown protocol: exit 2, the password not
    shown and nothing written."""
    out = tmp_path / "out"
    code, output = invoke(
        "run", str(prompts(tmp_path, 1)), "--out", str(out), *FAST, "--store", url
    )
    assert code == 2, output
    assert says in output
    assert "hunter2" not in output
    assert not (out / "batchgen.db").exists()


def test_a_worker_of_a_shared_batch_leaves_the_batch_report_in_its_bucket(
    tmp_path: Path, s3: S3, postgres: pgserver.Server, batch: str
) -> None:
    """`run --ledger --batch --store`: the worker writes its batch's report into the bucket,
    its links relative to the objects beside it; `status --batch` names the store."""
    out = tmp_path / "worker"
    code, output = invoke(
        "run", str(prompts(tmp_path, 3)), "--out", str(out), *FAST, "--store", s3.url(PREFIX),
        "--ledger", postgres.url, "--batch", batch,
    )  # fmt: skip
    assert code == 0, output
    assert "not written" not in output
    keys = set(s3.keys(f"{PREFIX}/"))
    links = gallery_videos(s3.read(f"{PREFIX}/report.html").decode())
    assert len(links) == 3
    assert all(link.startswith("videos/") for link in links)
    assert {f"{PREFIX}/{unquote(link)}" for link in links} <= keys
    code, output = invoke("status", "--ledger", postgres.url, "--batch", batch)
    assert code == 0, output
    assert f"videos in: s3://{BUCKET}/{PREFIX} (3)" in output
