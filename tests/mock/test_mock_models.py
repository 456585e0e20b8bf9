"""fal's model API on the emulator: ``/v1/models`` with OpenAPI documents that the import
reads back to the very spec they were written from, for every built-in endpoint."""

from __future__ import annotations

import json

import aiohttp
import pytest
from runs import KEY, mock_config

from batchgen.mock import MockServer
from batchgen.mock.models import openapi_of
from batchgen.plan.endpoint import builtin_specs, parse_spec

SPECS = builtin_specs()


@pytest.mark.parametrize("endpoint", sorted(SPECS))
def test_each_builtin_spec_round_trips_through_its_openapi_document(endpoint: str) -> None:
    """The emulator's OpenAPI document of a spec, read by the import, gives the same
    parameters (types, rules, items, fields, files), output and kind."""
    spec = SPECS[endpoint]
    again = parse_spec(json.dumps(openapi_of(spec)), "emulator")
    assert again.id == spec.id
    assert again.params == spec.params
    assert (again.output, again.kind, again.one_of) == (spec.output, spec.kind, spec.one_of)


async def test_the_model_api_lists_models_with_status_and_pages_the_catalog() -> None:
    """By id (comma-separated or repeated) with expand, a retired spec as inactive, an
    unknown id as no model; without an id, pages of the catalog with a cursor."""
    async with MockServer(mock_config()) as server, aiohttp.ClientSession() as session:
        url = f"{server.base_url}/v1/models"
        ids = "fal-ai/sora-2/text-to-video,fal-ai/veo3.1,acme/none"
        query = {"endpoint_id": ids, "expand": "openapi-3.0"}
        async with session.get(url, params=query, headers={"Authorization": f"Key {KEY}"}) as r:
            assert r.status == 200
            data = await r.json()
        models = {m["endpoint_id"]: m for m in data["models"]}
        assert set(models) == {"fal-ai/sora-2/text-to-video", "fal-ai/veo3.1"}
        assert models["fal-ai/sora-2/text-to-video"]["metadata"]["status"] == "inactive"
        assert models["fal-ai/veo3.1"]["openapi"]["info"]["x-fal-metadata"]["endpointId"] == (
            "fal-ai/veo3.1"
        )
        seen: list[str] = []
        cursor = None
        while True:  # no key: fal answers this API without one (at a lower rate)
            params = {"limit": "7", **({"cursor": cursor} if cursor else {})}
            async with session.get(url, params=params) as r:
                page = await r.json()
            assert all("openapi" not in m for m in page["models"])
            seen += [m["endpoint_id"] for m in page["models"]]
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
        assert seen == sorted(SPECS)
        async with session.get(url, headers={"Authorization": "Key wrong"}) as r:
            assert r.status == 401
