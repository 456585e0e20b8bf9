"""The platform's price list: what one billable unit of an endpoint costs.

``GET {platform}/v1/models/pricing?endpoint_id=A,B`` (``Authorization: Key``) answers
``{"prices": [{"endpoint_id", "unit_price", "unit", "currency"}]}``. A job's billed cost is the
``x-fal-billable-units`` of its result answer times its endpoint's ``unit_price``. Only prices
in USD are kept: the ledger's figures are dollars.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from batchgen.api.answers import describe, excerpt, read_answer
from batchgen.errors import ApiError

_LIMIT = 1024 * 1024  # a price list of a few endpoints is a few hundred bytes


@dataclass(frozen=True, slots=True)
class UnitPrice:
    """One billable unit of an endpoint, in USD (``unit``: ``second``, ``video``...)."""

    usd: float
    unit: str

    def public(self) -> dict[str, Any]:
        return {"unit_price": self.usd, "unit": self.unit, "currency": "USD"}


async def fetch_prices(
    session: aiohttp.ClientSession,
    platform_url: str,
    authorization: str | None,
    endpoints: Iterable[str],
    within: float,
) -> dict[str, UnitPrice]:
    """The USD unit price of each of ``endpoints`` the platform names (one request, answered
    ``within`` seconds).

    Raises ApiError when it cannot be had: unreachable, refused, or not a price list.
    """
    url = platform_url.rstrip("/") + "/v1/models/pricing"
    headers = {} if authorization is None else {"Authorization": authorization}
    params = {"endpoint_id": ",".join(endpoints)}
    try:
        async with session.get(
            url, params=params, headers=headers, timeout=aiohttp.ClientTimeout(total=within)
        ) as resp:
            answer = await read_answer(resp, _LIMIT)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ApiError(f"pricing unreachable: {describe(exc)}") from exc
    data = answer.object()
    if answer.status != 200 or data is None or not isinstance(data.get("prices"), list):
        raise ApiError(
            f"pricing answered {answer.status}: {excerpt(answer.body)}", status=answer.status
        )
    return dict(_prices(data["prices"]))


def _prices(items: list[Any]) -> Iterable[tuple[str, UnitPrice]]:
    for item in items:
        if not isinstance(item, dict) or str(item.get("currency", "USD")).upper() != "USD":
            continue
        usd, endpoint = item.get("unit_price"), item.get("endpoint_id")
        if isinstance(usd, bool) or not isinstance(usd, int | float):
            continue
        if isinstance(endpoint, str) and math.isfinite(usd) and usd >= 0:
            yield endpoint, UnitPrice(float(usd), str(item.get("unit", "unit")))
