"""A corporate network: the API and the file host reachable only through a forward proxy, a
private CA, a ~/.netrc that must not leak; and what the run says when the way out is closed."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web
from forward_proxy import ForwardProxy
from runs import FAST, KEY, assert_all_verified, connection, mock_config, plan_for, prompts, rows
from test_run_reach import closed_port
from test_run_uploads import image, image_plan

from batchgen.api.network import Network
from batchgen.api.sessions import file_session
from batchgen.ledger.states import JobStatus
from batchgen.mock import MockServer
from batchgen.plan.endpoint import builtin_specs
from batchgen.run.runner import Runner

API, FILES = "api.example.invalid", "files.example.invalid"  # no resolver knows them


def netrc(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ~/.netrc (NETRC) with credentials for both hosts: none may be sent anywhere."""
    path = folder / "netrc"
    lines = [f"machine {host} login netrc-user password netrc-secret\n" for host in (API, FILES)]
    path.write_text("".join(lines), encoding="utf-8")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))


@pytest.fixture
def ca() -> trustme.CA:
    """A throwaway CA; its certificate is trusted only where a test says so."""
    return trustme.CA()


def tls_server(ca: trustme.CA, *hosts: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*hosts).configure_cert(context)
    return context


async def test_a_run_through_a_proxy_sends_no_netrc_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP_PROXY the only way to the API and the file host, every job is done through
    it (absolute-form requests); the API gets only its key, the file host no Authorization
    at all, ~/.netrc naming both notwithstanding."""
    netrc(tmp_path, monkeypatch)
    out = tmp_path / "out"
    async with MockServer(mock_config(files_base_url=f"http://{FILES}")) as server:
        hosts = {f"{API}:80": server.port, f"{FILES}:80": server.port}
        async with ForwardProxy(hosts) as proxy:
            network = Network.from_env({"HTTP_PROXY": proxy.url})
            reach = dataclasses.replace(connection(f"http://{API}"), network=network)
            result = await Runner(plan_for(prompts(tmp_path, 6), out), reach, timing=FAST).run()
            stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    api = [seen for seen in proxy.seen if seen.host == f"{API}:80"]
    files = [seen for seen in proxy.seen if seen.host == f"{FILES}:80"]
    assert sum(seen.method == "POST" for seen in api) == 6  # every submit went through it
    assert len(files) >= 6
    assert {seen.headers.get("authorization") for seen in api} == {f"Key {KEY}"}
    assert {seen.headers.get("authorization") for seen in files} == {None}
    assert {seen.method for seen in proxy.seen} != {"CONNECT"}


async def test_tls_through_a_connect_tunnel_with_a_private_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA
) -> None:
    """Over https the proxy (which wants credentials) only tunnels: it sees CONNECTs carrying
    its own credentials, never the key; the emulator's certificate, from a private CA, is
    trusted with the CA bundle; uploads, the API and the files all go through it."""
    netrc(tmp_path, monkeypatch)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    out = tmp_path / "out"
    plan = image_plan(tmp_path, out, [image(tmp_path, f"{i}.png") for i in range(4)])
    config = mock_config(
        files_base_url=f"https://{FILES}",
        specs={**builtin_specs(), plan.endpoint.id: plan.endpoint},
    )
    async with MockServer(config, ssl_context=tls_server(ca, API, FILES)) as server:
        hosts = {f"{API}:443": server.port, f"{FILES}:443": server.port}
        async with ForwardProxy(hosts, user="ann", password="p@ss") as proxy:
            env = {"HTTPS_PROXY": f"http://ann:p%40ss@127.0.0.1:{proxy.port}"}
            network = Network.from_env(env, ca_bundle=str(bundle))
            reach = dataclasses.replace(connection(f"https://{API}"), network=network)
            result = await Runner(plan, reach, timing=FAST).run()
            stats = server.stats()
    assert result.outcome == "done", result.message
    assert_all_verified(out, stats)
    assert len(stats["uploads"]) == 4  # each image uploaded through the tunnel
    assert {seen.method for seen in proxy.seen} == {"CONNECT"}
    assert {seen.target for seen in proxy.seen} == {f"{API}:443", f"{FILES}:443"}
    assert all(seen.headers.get("proxy-authorization") for seen in proxy.seen)
    assert not any("authorization" in seen.headers for seen in proxy.seen)
    recorded = (out / "run.json").read_text(encoding="utf-8")
    assert f"http://127.0.0.1:{proxy.port} (HTTPS_PROXY)" in recorded
    assert "p@ss" not in recorded
    assert "p%40ss" not in recorded


async def test_an_untrusted_certificate_stops_the_run_at_once(
    tmp_path: Path, ca: trustme.CA
) -> None:
    """Without the CA bundle the run stops on the first try (no retry mends it), naming the
    proxy in effect and --ca-bundle; nothing was sent."""
    out = tmp_path / "out"
    async with (
        MockServer(mock_config(), ssl_context=tls_server(ca, API)) as server,
        ForwardProxy({f"{API}:443": server.port}) as proxy,
    ):
        network = Network.from_env({"HTTPS_PROXY": proxy.url})
        reach = dataclasses.replace(connection(f"https://{API}"), network=network)
        plan = plan_for(prompts(tmp_path, 3), out)
        result = await asyncio.wait_for(Runner(plan, reach, timing=FAST).run(), 10)
        stats = server.stats()
    assert result.outcome == "failed"
    assert result.message.startswith(
        f"cannot reach the API at https://{API} through the proxy {proxy.url} (HTTPS_PROXY): "
        f"the certificate of {API}:443 is not trusted"
    ), result.message
    assert "--ca-bundle" in result.message
    assert "submit" not in stats["requests"]
    assert {job.status for job in rows(out)} == {JobStatus.PENDING}


async def test_a_proxy_that_cannot_be_reached_is_named(tmp_path: Path) -> None:
    """A proxy that refuses connections: the run stops within the limit with a message
    naming the proxy, its variable and NO_PROXY; every job is left pending."""
    out = tmp_path / "out"
    where = f"http://127.0.0.1:{closed_port()}"
    network = Network.from_env({"HTTP_PROXY": where})
    reach = dataclasses.replace(connection(f"http://{API}"), network=network)
    timing = dataclasses.replace(FAST, unreachable_after=0.2)
    plan = plan_for(prompts(tmp_path, 3), out)
    result = await asyncio.wait_for(Runner(plan, reach, timing=timing).run(), 10)
    assert result.outcome == "failed"
    assert result.message.startswith(
        f"cannot reach the API at http://{API} through the proxy {where} (HTTP_PROXY): "
        f"cannot connect to the proxy at 127.0.0.1:"
    ), result.message
    assert "Check the proxy (or NO_PROXY)" in result.message
    assert {job.status for job in rows(out)} == {JobStatus.PENDING}


async def test_a_proxy_refusing_its_credentials_says_so(tmp_path: Path) -> None:
    """A proxy answering 407 to the tunnel: the run stops at once, saying where to put the
    credentials; nothing was sent."""
    out = tmp_path / "out"
    async with ForwardProxy({f"{API}:443": closed_port()}, user="ann", password="x") as proxy:
        network = Network.from_env({"HTTPS_PROXY": proxy.url})
        reach = dataclasses.replace(connection(f"https://{API}"), network=network)
        plan = plan_for(prompts(tmp_path, 3), out)
        result = await asyncio.wait_for(Runner(plan, reach, timing=FAST).run(), 10)
    assert result.outcome == "failed"
    assert "the proxy answered 407" in result.message, result.message
    assert "http://USER:PASSWORD@HOST:PORT" in result.message
    assert {job.status for job in rows(out)} == {JobStatus.PENDING}


@pytest.fixture
async def direct_host() -> AsyncIterator[tuple[str, list[str]]]:
    """A file host on loopback reached directly; it records each request's Authorization."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.Response(body=b"video")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    await runner.cleanup()


async def test_each_redirect_hop_takes_its_own_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct_host: tuple[str, list[str]]
) -> None:
    """A CDN reached through the proxy redirects to a host NO_PROXY exempts: that hop goes
    directly, with neither the proxy's credentials nor a netrc entry."""
    target, seen = direct_host
    netrc(tmp_path, monkeypatch)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(target + request.path)

    app = web.Application()
    app.router.add_get("/{tail:.*}", redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with ForwardProxy({f"{FILES}:80": runner.addresses[0][1]}) as proxy:
            env = {"HTTP_PROXY": f"http://u:pw@127.0.0.1:{proxy.port}", "NO_PROXY": "127.0.0.1"}
            async with (
                file_session(Network.from_env(env)) as files,
                files.get(f"http://{FILES}/v.mp4") as resp,
            ):
                assert await resp.read() == b"video"
    finally:
        await runner.cleanup()
    assert [(s.method, s.target) for s in proxy.seen] == [("GET", f"http://{FILES}/v.mp4")]
    assert seen == [""]


async def test_a_session_never_sends_a_netrc_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct_host: tuple[str, list[str]]
) -> None:
    """A host ~/.netrc names (127.0.0.1) gets no Authorization from a file session."""
    target, seen = direct_host
    path = tmp_path / "netrc"
    path.write_text("machine 127.0.0.1 login u password secret\n", encoding="utf-8")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    async with file_session(Network.from_env({})) as files, files.get(target + "/v") as resp:
        assert resp.status == 200
    # aiohttp's own trust_env would have sent it: the test can fail.
    async with (
        aiohttp.ClientSession(trust_env=True) as leaky,
        leaky.get(target + "/v") as resp,
    ):
        assert resp.status == 200
    assert seen[0] == ""
    assert seen[1].startswith("Basic ")
