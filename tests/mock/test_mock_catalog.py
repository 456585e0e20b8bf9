"""The emulator serves every built-in endpoint: valid jobs make a video, invalid ones 422."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from mock_fixtures import AUTH, events, fast_config

from batchgen.mock import MockServer
from batchgen.plan.endpoint import EndpointSpec, builtin_specs

# The endpoints fal serves: a retired one is answered 404 (tests/plan/test_lifecycle.py).
SPECS = {i: spec for i, spec in builtin_specs().items() if spec.status != "retired"}


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer(fast_config()) as running:
        yield running


def valid_input(spec: EndpointSpec) -> dict[str, Any]:
    """The prompt, and every required file parameter (or list of files) as https URLs of its
    first accepted kind."""
    values: dict[str, Any] = {"prompt": "a lighthouse at dusk"}
    suffix = {"image": "png", "video": "mp4", "audio": "mp3"}
    for name, param in spec.params.items():
        if param.is_file:
            values[name] = f"https://files.example.com/{name}.{suffix[param.accept[0]]}"
        elif param.required and param.items is not None and param.items.is_file:
            kind = suffix[param.items.accept[0]]
            values[name] = [f"https://files.example.com/{name}-{n}.{kind}" for n in (1, 2)]
    return values


async def run_job(
    session: aiohttp.ClientSession, server: MockServer, endpoint: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Submit ``body``, follow its status stream to COMPLETED, and fetch the result."""
    async with session.post(f"{server.base_url}/{endpoint}", json=body, headers=AUTH) as r:
        assert r.status == 200, await r.text()
        envelope = await r.json()
    found, _ = await events(session, envelope["status_url"] + "/stream")
    assert found[-1]["status"] == "COMPLETED"
    async with session.get(envelope["response_url"], headers=AUTH) as r:
        return r.status, await r.json(), dict(r.headers)


@pytest.mark.parametrize("endpoint", sorted(SPECS))
async def test_each_builtin_endpoint_makes_a_video(
    server: MockServer, session: aiohttp.ClientSession, endpoint: str
) -> None:
    """One valid job per catalogued endpoint completes with a video File at its output key."""
    spec = SPECS[endpoint]
    code, body, headers = await run_job(session, server, endpoint, valid_input(spec))
    assert code == 200, body
    video = body[spec.output]
    assert video["content_type"] == "video/mp4"
    async with session.get(video["url"]) as r:
        assert r.status == 200
        assert (await r.read())[4:8] == b"ftyp"
    seconds = spec.video_seconds(spec.check(valid_input(spec))[0])
    per_second = spec.price.duration_parameter is not None
    expected_units = str(round(seconds)) if per_second and seconds else "1"
    assert headers["x-fal-billable-units"] == expected_units


@pytest.mark.parametrize(
    "endpoint",
    ["fal-ai/veo3.1/image-to-video", "fal-ai/luma-dream-machine/ray-2-flash/image-to-video"],
)
async def test_invalid_input_gets_the_422_shape(
    server: MockServer, session: aiohttp.ClientSession, endpoint: str
) -> None:
    """A job the spec refuses ends in fal's 422: one detail item per field, located in the body."""
    body = {**valid_input(SPECS[endpoint]), "resolution": "8k"}
    del body["prompt"]
    code, answer, headers = await run_job(session, server, endpoint, body)
    assert code == 422
    assert headers["X-Fal-Retryable"] == "false"
    by_field = {item["loc"][1]: item for item in answer["detail"]}
    assert set(by_field) == {"prompt", "resolution"}
    assert by_field["prompt"]["type"] == "missing"
    assert all(item["loc"][0] == "body" and item["msg"] for item in answer["detail"])


async def test_longer_videos_run_longer(server: MockServer, session: aiohttp.ClientSession):
    """The latency is for a default-length video: an 8 s Veo job runs twice a 4 s one."""
    spec = SPECS["fal-ai/veo3.1"]
    assert spec.default_seconds() == 8.0
    assert SPECS["fal-ai/pixverse/v4.5/image-to-video/fast"].video_seconds({}) is None
    running = {}
    for duration in ("4s", "8s"):
        body = {"prompt": "p", "duration": duration}
        async with session.post(f"{server.base_url}/{spec.id}", json=body, headers=AUTH) as r:
            request_id = (await r.json())["request_id"]
        running[duration] = server.emulator.queue.jobs[request_id].running
    assert running["8s"] == pytest.approx(2 * running["4s"])
