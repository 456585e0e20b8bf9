"""The emulator's storage routes, as the protocol notes have fal's; models that cannot fetch
their file inputs fail at result; fal's own client uploads to it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mock_fixtures import AUTH, KEY, events, fast_config

from batchgen.mock import MockServer
from batchgen.plan.endpoint import builtin_specs, parse_spec

I2V = "fal-ai/test/image-to-video"
SPEC = parse_spec(
    f"""id: {I2V}
parameters:
  prompt: {{type: string, required: true}}
  image: {{type: file, required: true, accept: [image]}}
  tail_image_url: {{type: string}}
price: {{flat_usd: 0.25}}
""",
    "test",
)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
async def server() -> Any:
    """An emulator that knows an image-to-video endpoint and accepts one key."""
    specs = {**builtin_specs(), I2V: SPEC}
    async with MockServer(fast_config(api_keys=(KEY,), specs=specs)) as running:
        yield running


async def token(session: aiohttp.ClientSession, server: MockServer) -> dict[str, Any]:
    url = f"{server.base_url}/storage/auth/token?storage_type=fal-cdn-v3"
    async with session.post(url, json={}, headers=AUTH) as r:
        assert r.status == 200, await r.text()
        answer: dict[str, Any] = await r.json()
        return answer


async def upload(
    session: aiohttp.ClientSession, server: MockServer, data: bytes = PNG, name: str = "cat.png"
) -> str:
    """A simple upload of ``data``; its access_url."""
    got = await token(session, server)
    headers = {
        "Authorization": f"{got['token_type']} {got['token']}",
        "Content-Type": "image/png",
        "X-Fal-File-Name": name,
    }
    async with session.post(f"{got['base_url']}/files/upload", data=data, headers=headers) as r:
        assert r.status == 200, await r.text()
        url: str = (await r.json())["access_url"]
        return url


async def test_token_needs_the_key_and_names_this_server(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """The token call wants the API key and fal-cdn-v3; its answer points uploads here."""
    url = f"{server.base_url}/storage/auth/token?storage_type=fal-cdn-v3"
    async with session.post(url, json={}, headers={"Authorization": "Key wrong"}) as r:
        assert r.status == 401
    async with session.post(url.replace("fal-cdn-v3", "gcs"), json={}, headers=AUTH) as r:
        assert r.status == 400
    got = await token(session, server)
    assert got["token_type"] == "Bearer"
    assert got["token"]
    assert got["base_url"] == server.base_url
    assert got["expires_at"].endswith("+00:00")


async def test_a_simple_upload_is_served_back_and_counted(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """An upload with the token is served back whole (and by range) with its type, without
    auth, and counted by its sha256; the API key is not a token."""
    plain = {"Authorization": f"Key {KEY}", "Content-Type": "image/png"}
    async with session.post(f"{server.base_url}/files/upload", data=PNG, headers=plain) as r:
        assert r.status == 401
    url = await upload(session, server)
    assert url.startswith(f"{server.base_url}/files/up/")
    assert url.endswith("/cat.png")
    async with session.get(url) as r:
        assert (r.status, r.headers["Content-Type"], await r.read()) == (200, "image/png", PNG)
    async with session.get(url, headers={"Range": "bytes=2-5"}) as r:
        assert (r.status, await r.read()) == (206, PNG[2:6])
    async with session.get(url.replace("cat.png", "dog.png")) as r:
        assert r.status == 404
    stats = server.stats()
    digest = hashlib.sha256(PNG).hexdigest()
    assert stats["uploads"] == {digest: {"count": 1, "size": len(PNG), "via": {"simple": 1}}}
    assert stats["upload_bytes"] == len(PNG)


async def test_multipart_parts_are_checked_by_etag_and_joined_in_order(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """Parts sent out of order, each answered with an ETag, are joined by number; a wrong
    ETag or a gap is refused; the file is served only once completed."""
    got = await token(session, server)
    auth = {"Authorization": f"Bearer {got['token']}"}
    headers = {**auth, "Content-Type": "image/png", "X-Fal-File-Name": "big.png"}
    async with session.post(f"{got['base_url']}/files/upload/multipart", headers=headers) as r:
        started = await r.json()
    base = f"{started['access_url']}/multipart/{started['uploadId']}"
    pieces = [PNG[:400], PNG[400:800], PNG[800:]]
    etags = {}
    for number in (3, 1, 2):
        async with session.put(f"{base}/{number}", data=pieces[number - 1], headers=auth) as r:
            assert r.status == 200
            etags[number] = r.headers["ETag"]
    assert etags[1] == f'"{hashlib.md5(pieces[0]).hexdigest()}"'
    async with session.get(started["access_url"]) as r:
        assert r.status == 404  # not completed yet
    complete = f"{base}/complete"
    wrong = {"parts": [{"partNumber": 1, "etag": etags[2]}]}
    gap = {"parts": [{"partNumber": n, "etag": etags[n]} for n in (1, 3)]}
    for body in (wrong, gap):
        async with session.post(complete, json=body, headers=auth) as r:
            assert r.status == 400
    parts = [{"partNumber": n, "etag": etags[n]} for n in (2, 3, 1)]
    async with session.post(complete, json={"parts": parts}, headers=auth) as r:
        assert r.status == 200
    async with session.get(started["access_url"]) as r:
        assert await r.read() == PNG
    entry = server.stats()["uploads"][hashlib.sha256(PNG).hexdigest()]
    assert entry["via"] == {"multipart": 1}


async def test_the_older_initiate_and_put_path(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """initiate (with the key) names an upload URL; a PUT there (no auth) stores the file."""
    url = f"{server.base_url}/storage/upload/initiate?storage_type=gcs"
    asked = {"file_name": "cat.png", "content_type": "image/png"}
    async with session.post(url, json=asked, headers=AUTH) as r:
        got = await r.json()
    async with session.put(got["upload_url"], data=PNG) as r:
        assert r.status == 200
    async with session.put(got["upload_url"], data=PNG) as r:
        assert r.status == 404  # used up
    async with session.get(got["file_url"]) as r:
        assert await r.read() == PNG
    assert server.stats()["uploads"][hashlib.sha256(PNG).hexdigest()]["via"] == {"initiate": 1}


async def test_the_js_clients_multipart_upload(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """initiate-multipart (with the key) names an upload URL; each part PUT to {url}/{n} is
    answered {partNumber, etag}; complete with the parts stores the file whole, once."""
    url = f"{server.base_url}/storage/upload/initiate-multipart?storage_type=fal-cdn-v3"
    asked = {"file_name": "big.png", "content_type": "image/png"}
    async with session.post(url, json=asked, headers=AUTH) as r:
        got = await r.json()
    data = PNG + bytes(3000)
    chunks = [data[i : i + 1024] for i in range(0, len(data), 1024)]
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        async with session.put(f"{got['upload_url']}/{number}", data=chunk) as r:
            parts.append(await r.json())
    assert [p["partNumber"] for p in parts] == [1, 2, 3, 4]
    wrong = [{**parts[0], "etag": '"0"'}, *parts[1:]]
    async with session.post(f"{got['upload_url']}/complete", json={"parts": wrong}) as r:
        assert r.status == 400
    async with session.post(f"{got['upload_url']}/complete", json={"parts": parts}) as r:
        assert r.status == 200
        assert (await r.json())["file_url"] == got["file_url"]
    async with session.get(got["file_url"]) as r:
        assert await r.read() == data
    via = server.stats()["uploads"][hashlib.sha256(data).hexdigest()]["via"]
    assert via == {"js_multipart": 1}


async def result_of(
    session: aiohttp.ClientSession, server: MockServer, payload: dict[str, Any]
) -> tuple[int, Any]:
    async with session.post(f"{server.base_url}/{I2V}", json=payload, headers=AUTH) as r:
        assert r.status == 200  # accepted at submit, as fal does
        rid = (await r.json())["request_id"]
    url = f"{server.base_url}/fal-ai/test/requests/{rid}"
    assert (await events(session, url + "/status/stream"))[0][-1]["status"] == "COMPLETED"
    async with session.get(url, headers=AUTH) as r:
        return r.status, await r.json()


async def test_a_model_fails_at_result_on_files_it_cannot_fetch(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    """A file parameter (or a *_url field) naming a URL on this server that it did not serve,
    no URL at all, or a data: URI over the cap or not base64, fails at result with fal's 422
    detail list; a URL on another host is taken as fetchable unless strict_file_urls."""
    server.config.data_uri_max_bytes = 1000
    small = "data:image/png;base64," + base64.b64encode(PNG[:900]).decode()
    big = "data:image/png;base64," + base64.b64encode(PNG).decode()
    served = await upload(session, server)
    elsewhere = "https://example.com/cat.png"
    for fine in (served, small, elsewhere):
        assert (await result_of(session, server, {"prompt": "a", "image": fine}))[0] == 200
    cases = {
        served.replace("/files/up/", "/files/up/0"): "file_download_error",
        served.rsplit("/", 1)[0] + "/other-name.png": "file_download_error",  # as fal's route
        f"{server.base_url}/files/nobody/output.mp4": "file_download_error",
        big: "file_too_large",
        "data:image/png;base64,@@@": "value_error",
        "sha256:abc": "url_parsing",
        "/home/me/cat.png": "url_parsing",
    }
    for value, kind in cases.items():
        status, body = await result_of(session, server, {"prompt": "a", "image": value})
        assert status == 422, value
        assert [(d["loc"], d["type"]) for d in body["detail"]] == [(["body", "image"], kind)]
    server.config.strict_file_urls = True
    payload = {"prompt": "a", "image": served, "tail_image_url": elsewhere}
    status, body = await result_of(session, server, payload)
    assert status == 422
    assert [d["loc"] for d in body["detail"]] == [["body", "tail_image_url"]]


async def test_a_reset_forgets_the_uploads(server: MockServer, session) -> None:
    """After a reset, an earlier upload's URL is gone, as a file past its retention."""
    url = await upload(session, server)
    server.reset()
    async with session.get(url) as r:
        assert r.status == 404
    assert server.stats()["uploads"] == {}


SCRIPT = r"""
import json, sys
import fal_client, fal_client.client as fc

base, small, big = sys.argv[1:4]
fc.REST_URL = fc.CDN_URL = base  # fal-client names its storage hosts as constants
client = fal_client.SyncClient(key=sys.argv[4])
print(json.dumps({
    "simple": client.upload_file(small),
    "multipart": client.upload_file(big),
    "initiate": client.upload(b"hello", "text/plain", "hi.txt", repository="fal"),
}))
"""


async def test_fal_clients_own_upload_file_works_against_the_emulator(
    server: MockServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """fal-client 1.0's upload_file (simple, and multipart above 100 MiB) and its older
    initiate path upload to the emulator, which serves each file back whole."""
    small, big = tmp_path / "cat.png", tmp_path / "big.bin"
    small.write_bytes(PNG)
    with big.open("wb") as handle:  # sparse: 100 MiB + 1 KiB of zeros after a header
        handle.write(b"HEAD")
        handle.truncate(100 * 1024 * 1024 + 1024)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        server.base_url,
        str(small),
        str(big),
        KEY,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_PROXY": "*"},
    )
    out, err = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode == 0, err.decode()
    urls = json.loads(out)
    async with session.get(urls["simple"]) as r:
        assert await r.read() == PNG
    async with session.get(urls["initiate"]) as r:
        assert await r.read() == b"hello"
    uploads = server.stats()["uploads"]
    digest = hashlib.sha256()
    with big.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    assert uploads[digest.hexdigest()]["via"] == {"multipart": 1}
    assert uploads[hashlib.sha256(PNG).hexdigest()]["via"] == {"simple": 1}
    assert uploads[hashlib.sha256(b"hello").hexdigest()]["via"] == {"initiate": 1}
