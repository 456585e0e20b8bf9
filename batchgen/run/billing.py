"""What a finished job was billed: its result's billable units times its endpoint's unit price.

The unit prices come from the platform's price list (``batchgen.api.pricing``), asked at most
once per run and kept in the folder's ``pricing.json`` with the time it was fetched; a list
younger than ``MAX_AGE`` that names every endpoint of the plan is used without asking. When the
platform cannot be asked (no platform for the provider, offline, refused), an older list is
used, else each job's unit price is derived from its endpoint spec's price (per second of video
where the spec prices by the second, else per video). ``public`` says which, for ``run.json``.
A result without billable units leaves ``billed_usd`` empty, never 0.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from batchgen.api.pricing import UnitPrice, fetch_prices
from batchgen.api.providers import Connection
from batchgen.errors import ApiError
from batchgen.ledger.manifest import iso_utc
from batchgen.ledger.states import JobRow
from batchgen.plan.price import PriceRule

log = logging.getLogger("batchgen.run")

PRICING_FILE = "pricing.json"
MAX_AGE = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Billing:
    """The unit prices of a run's endpoints and where they came from."""

    prices: Mapping[str, UnitPrice] = field(default_factory=dict)  # from the platform
    specs: Mapping[str, PriceRule] = field(default_factory=dict)  # the fallback
    source: str = "spec"  # platform, cache (pricing.json) or spec
    fetched_at: float | None = None
    note: str | None = None  # why the platform was not asked, or did not answer

    def usd(self, row: JobRow, units: float | None) -> float | None:
        """``row``'s billed cost for ``units``; None when either is unknown."""
        if units is None:
            return None
        price = self.prices.get(row.endpoint)
        if price is not None:
            return round(units * price.usd, 6)
        rule = self.specs.get(row.endpoint)
        unit = None if rule is None else rule.unit_price(row.payload)
        return None if unit is None else round(units * unit[0], 6)

    def public(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "fetched_at": iso_utc(self.fetched_at),
            "note": self.note,
            "prices": {e: p.public() for e, p in sorted(self.prices.items())},
        }


async def load_billing(
    session: aiohttp.ClientSession,
    connection: Connection,
    specs: Mapping[str, PriceRule],
    out: Path,
    within: float,
    wall: Callable[[], float] = time.time,
) -> Billing:
    """The run's unit prices: the folder's fresh list, else the platform's, else an older
    list, else the specs' (see the module docstring)."""
    cached = _read(out / PRICING_FILE)
    now = wall()
    if cached is not None:
        prices, fetched_at = cached
        if now - fetched_at < MAX_AGE and set(specs) <= set(prices):
            return Billing(prices, specs, "cache", fetched_at)
    if connection.platform_url is None:
        note = f"{connection.provider} has no price list"
    else:
        try:
            got = await fetch_prices(
                session, connection.platform_url, connection.authorization, specs, within
            )
        except ApiError as exc:
            note = str(exc)
            log.warning("%s: billed costs use %s", note, "pricing.json" if cached else "specs")
        else:
            _write(out / PRICING_FILE, got, now)
            return Billing(got, specs, "platform", now)
    if cached is not None:
        return Billing(cached[0], specs, "cache", cached[1], note)
    return Billing({}, specs, "spec", None, note)


def _read(path: Path) -> tuple[dict[str, UnitPrice], float] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        prices = {
            e: UnitPrice(float(p["unit_price"]), str(p["unit"])) for e, p in data["prices"].items()
        }
        return prices, float(data["fetched_at_unix"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write(path: Path, prices: Mapping[str, UnitPrice], now: float) -> None:
    data = {
        "fetched_at": iso_utc(now),
        "fetched_at_unix": now,
        "prices": {e: p.public() for e, p in sorted(prices.items())},
    }
    temp = path.with_name(path.name + ".tmp")
    try:
        temp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        temp.replace(path)
    except OSError as exc:  # a full disk costs the cache, not the run
        log.warning("%s not written: %s", path.name, exc)
