"""fal's model API: what fal itself says of one endpoint, and what one unit of it costs.

``GET {platform}/v1/models?endpoint_id=ID&expand=openapi-3.0`` (``Authorization: Key``; it
answers with less rate without) gives ``{"models": [{"endpoint_id", "metadata": {...,
"status": "active"|"deprecated"|"inactive"}, "openapi": {...}}]}``; ``GET
{platform}/v1/models/pricing?endpoint_id=ID`` its unit price (``batchgen.api.pricing``). Both
are read by ``plan`` for an endpoint it has no spec for (``batchgen.plan.falspecs``), which is
synchronous: ``lookup`` runs the two requests on an event loop of their own, in a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass
from typing import Any

import aiohttp

from batchgen.api.answers import describe, excerpt, read_answer
from batchgen.api.network import Network
from batchgen.api.pricing import UnitPrice, fetch_prices
from batchgen.api.sessions import api_session, authorization_header
from batchgen.errors import ApiError

# One model's OpenAPI document is tens of kilobytes; a few MiB is far beyond any.
_LIMIT = 8 * 1024 * 1024
WITHIN = 30.0  # seconds for each of the two requests


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What fal's platform said of one endpoint: its model entry (metadata and OpenAPI
    document; None when fal knows no such id) and its unit price (None when it has none)."""

    endpoint_id: str
    model: dict[str, Any] | None
    price: UnitPrice | None


async def fetch_model(
    session: aiohttp.ClientSession,
    platform_url: str,
    authorization: str | None,
    endpoint_id: str,
    within: float = WITHIN,
) -> dict[str, Any] | None:
    """fal's model entry for ``endpoint_id`` with its OpenAPI document, or None when fal
    lists no such model. ApiError when the platform cannot be read."""
    url = platform_url.rstrip("/") + "/v1/models"
    params = {"endpoint_id": endpoint_id, "expand": "openapi-3.0"}
    try:
        async with session.get(
            url,
            params=params,
            headers=authorization_header(authorization),
            timeout=aiohttp.ClientTimeout(total=within),
        ) as resp:
            answer = await read_answer(resp, _LIMIT)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ApiError(f"fal's model API unreachable: {describe(exc)}") from exc
    data = answer.object()
    models = None if data is None else data.get("models")
    if answer.status != 200 or not isinstance(models, list):
        raise ApiError(
            f"fal's model API answered {answer.status}: {excerpt(answer.body)}",
            status=answer.status,
        )
    return next(
        (
            m
            for m in models
            if isinstance(m, dict) and str(m.get("endpoint_id", "")).strip("/") == endpoint_id
        ),
        None,
    )


async def fetch_info(
    platform_url: str, authorization: str | None, endpoint_id: str, network: Network | None
) -> ModelInfo:
    """The model entry and unit price of ``endpoint_id`` (a price that cannot be read is
    None: the spec is still worth having)."""
    async with api_session(network) as session:
        model = await fetch_model(session, platform_url, authorization, endpoint_id)
        price = None
        if model is not None:
            try:
                prices = await fetch_prices(
                    session, platform_url, authorization, [endpoint_id], WITHIN
                )
            except ApiError:
                prices = {}
            price = prices.get(endpoint_id)
    return ModelInfo(endpoint_id, model, price)


def lookup(
    platform_url: str, authorization: str | None, endpoint_id: str, network: Network | None
) -> ModelInfo:
    """``fetch_info`` from synchronous code (a plan), on its own loop in a worker thread, so
    it works whether or not the caller runs an event loop. ApiError as ``fetch_model``."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(
            asyncio.run, fetch_info(platform_url, authorization, endpoint_id, network)
        )
        return future.result()
