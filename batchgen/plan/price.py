"""The price language of endpoint specs: what one job costs, from its payload.

A spec's ``price`` block is one of:

- ``flat_usd: 0.05``: the same price for every job.
- ``per_second``: by the seconds of video that ``parameter`` asks for (``"5"``, ``8``, ``"8s"``
  all read as seconds), or the sum of ``sum_of: LIST.FIELD`` where the payload has that list
  (Kling 3.0's shots). Either ``base_usd`` for ``base_seconds`` plus ``extra_usd_per_second``
  beyond them (Kling), or a rate ``usd`` per second, which ``rates`` may replace by parameter
  values (Veo: 720p without audio $0.20/s, 4k with audio $0.60/s).
- ``per_clip``: ``usd`` per video, with ``rates`` by parameter values (Pixverse by resolution).
- ``unknown`` (``price: unknown``, or no price at all): the cost is None, never 0.

``rates`` is a list of ``{when: {parameter: value, ...}, usd: N}``, the first whose every value
matches the payload wins (values compare as text, ignoring case: ``true``, ``4k``). Both
``per_second`` and ``per_clip`` take ``multiply: {parameter: {value: factor}}`` too, applied
after the rate (Luma: 720p costs 2x, 1080p 4x, 9 s 2x).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from batchgen.errors import InputError

_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s?\s*$", re.IGNORECASE)
_KINDS = ("flat_usd", "per_second", "per_clip", "unknown")
_PER_SECOND_KEYS = {
    "parameter",
    "sum_of",
    "usd",
    "base_usd",
    "base_seconds",
    "extra_usd_per_second",
    "rates",
    "multiply",
}
_PER_CLIP_KEYS = {"usd", "rates", "multiply"}


def seconds_of(value: Any) -> float | None:
    """Seconds of video a duration value asks for: ``5``, ``"5"``, ``"8s"``; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) and value >= 0 else None
    match = _SECONDS.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None


def _text(value: Any) -> str:
    """A value as the text rates compare it by: ``True`` -> ``true``, ``5.0`` -> ``5``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().lower()


def money(usd: float) -> str:
    """``0.2`` -> ``$0.20``, ``0.098`` -> ``$0.098``: at least cents, at most 4 decimals."""
    text = f"{usd:.4f}".rstrip("0")
    decimals = len(text.partition(".")[2])
    return f"${usd:.{max(2, decimals)}f}"


@dataclass(frozen=True, slots=True)
class Rate:
    """A price that applies when every ``when`` parameter has the given value."""

    when: tuple[tuple[str, str], ...]
    usd: float

    def matches(self, payload: dict[str, Any]) -> bool:
        return all(name in payload and _text(payload[name]) == v for name, v in self.when)


@dataclass(frozen=True, slots=True)
class PriceRule:
    """How much one job costs, from its payload. ``None`` from ``cost`` means unknown."""

    flat_usd: float | None = None
    # The raw ``per_second`` block (its ``parameter`` names the duration); None otherwise.
    per_second: dict[str, Any] | None = None
    per_clip: bool = False
    usd: float | None = None
    rates: tuple[Rate, ...] = ()
    multiply: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()
    unknown_reason: str = ""
    # ``base_usd``, ``base_seconds`` and ``extra_usd_per_second`` of a Kling-style rule.
    base: dict[str, float] = field(default_factory=dict)

    @property
    def duration_parameter(self) -> str | None:
        """The parameter that says how many seconds of video a job asks for, if priced so."""
        return str(self.per_second["parameter"]) if self.per_second else None

    def seconds(self, payload: dict[str, Any]) -> float | None:
        """Seconds of video ``payload`` asks for: its duration parameter's, or, where the
        rule names ``sum_of: LIST.FIELD`` and the payload has that list, the sum of its items'
        field (Kling 3.0: a multi-shot video lasts as long as its shots)."""
        if self.per_second is None:
            return None
        total = self.per_second.get("sum_of")
        if isinstance(total, str):
            name, _, field_name = total.partition(".")
            items = payload.get(name)
            if isinstance(items, list) and items:
                parts = [seconds_of(i.get(field_name)) for i in items if isinstance(i, dict)]
                if parts and None not in parts:
                    return float(sum(p for p in parts if p is not None))
        return seconds_of(payload.get(self.per_second["parameter"]))

    @property
    def drivers(self) -> tuple[str, ...]:
        """Every parameter whose value changes the price, in the order the rule names them."""
        names: list[str] = []
        if self.duration_parameter:
            names.append(self.duration_parameter)
        for rate in self.rates:
            names.extend(name for name, _ in rate.when)
        names.extend(name for name, _ in self.multiply)
        return tuple(dict.fromkeys(names))

    @property
    def known(self) -> bool:
        return self.flat_usd is not None or self.per_second is not None or self.per_clip

    def _rate(self, payload: dict[str, Any]) -> float | None:
        return next((r.usd for r in self.rates if r.matches(payload)), self.usd)

    def _factor(self, payload: dict[str, Any]) -> float:
        factor = 1.0
        for name, table in self.multiply:
            value = _text(payload.get(name))
            factor *= next((f for v, f in table if v == value), 1.0)
        return factor

    def cost(self, payload: dict[str, Any]) -> float | None:
        """The job's price in USD, or None when it cannot be known (never a guess of 0)."""
        if self.per_second is not None:
            seconds = self.seconds(payload)
            if seconds is None:
                return None
            if "base_usd" in self.base:
                extra = max(0.0, seconds - self.base["base_seconds"])
                usd = self.base["base_usd"] + extra * self.base["extra_usd_per_second"]
            else:
                rate = self._rate(payload)
                if rate is None:
                    return None
                usd = rate * seconds
            return round(usd * self._factor(payload), 6)
        if self.per_clip:
            rate = self._rate(payload)
            return None if rate is None else round(rate * self._factor(payload), 6)
        return self.flat_usd

    def unit_price(self, payload: dict[str, Any]) -> tuple[float, str] | None:
        """What one billable unit of this job costs, and the unit: ``second`` of video where
        the rule prices by the second, else ``video``; None when the price is unknown."""
        usd = self.cost(payload)
        if usd is None or self.per_second is None:
            return None if usd is None else (usd, "video")
        seconds = self.seconds(payload)
        return (round(usd / seconds, 6), "second") if seconds else None

    def summary(self) -> str:
        """One line for listings: ``$0.35 per 5 s, +$0.07/s``, ``$0.20–0.60/s by resolution``."""
        if self.per_second is not None and "base_usd" in self.base:
            e = self.base
            text = f"{money(e['base_usd'])} per {e['base_seconds']:g} s"
            text += f", +{money(e['extra_usd_per_second'])}/s"
            return text + self._by(skip_duration=True)
        if self.per_second is not None:
            return self._span() + "/s" + self._by(skip_duration=True)
        if self.per_clip:
            return self._span() + " per video" + self._by(skip_duration=False)
        if self.flat_usd is not None:
            return f"{money(self.flat_usd)} per video"
        return "unknown" + (f" ({self.unknown_reason})" if self.unknown_reason else "")

    def _span(self) -> str:
        rates = [r.usd for r in self.rates] + ([self.usd] if self.usd is not None else [])
        low = min(rates) * math.prod(min([1.0, *(f for _, f in t)]) for _, t in self.multiply)
        high = max(rates) * math.prod(max([1.0, *(f for _, f in t)]) for _, t in self.multiply)
        return money(low) if math.isclose(low, high) else f"{money(low)}–{money(high)[1:]}"

    def _by(self, *, skip_duration: bool) -> str:
        names = [n for n in self.drivers if not (skip_duration and n == self.duration_parameter)]
        return f" by {', '.join(names)}" if names else ""

    def as_data(self) -> dict[str, Any] | str:
        """The rule as the ``price`` block of a spec file."""
        if self.per_second is not None:
            return {"per_second": dict(self.per_second)}
        if self.per_clip:
            block: dict[str, Any] = {"usd": self.usd}
            if self.rates:
                block["rates"] = [{"when": dict(r.when), "usd": r.usd} for r in self.rates]
            if self.multiply:
                block["multiply"] = {n: dict(t) for n, t in self.multiply}
            return {"per_clip": block}
        if self.flat_usd is not None:
            return {"flat_usd": self.flat_usd}
        return "unknown"


def parse_price(raw: Any, source: str) -> PriceRule:
    """The rule a spec's ``price`` block states; every malformed block is an InputError."""
    if raw is None or raw == "unknown":
        return PriceRule()
    if not isinstance(raw, dict):
        raise _bad(source, "must be a mapping (flat_usd, per_second or per_clip) or 'unknown'")
    kinds = [k for k in raw if k in _KINDS]
    if len(kinds) != 1 or len(raw) != 1:
        raise _bad(source, f"must have exactly one of {', '.join(_KINDS)}; got {_keys(raw)}")
    kind = kinds[0]
    value = raw[kind]
    if kind == "unknown":
        return PriceRule(unknown_reason="" if value is True else str(value or ""))
    if kind == "flat_usd":
        return PriceRule(flat_usd=_usd(value, source, "flat_usd"))
    if not isinstance(value, dict):
        raise _bad(source, f"{kind} must be a mapping")
    allowed = _PER_SECOND_KEYS if kind == "per_second" else _PER_CLIP_KEYS
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _bad(
            source, f"{kind}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )
    rates = _rates(value.get("rates"), source, kind)
    multiply = _multiply(value.get("multiply"), source, kind)
    if kind == "per_clip":
        return PriceRule(
            per_clip=True,
            usd=_rate_usd(value, rates, source, "per_clip"),
            rates=rates,
            multiply=multiply,
        )
    if not isinstance(value.get("parameter"), str) or not value["parameter"]:
        raise _bad(source, "per_second needs 'parameter': the duration parameter")
    base = [k for k in ("base_usd", "base_seconds", "extra_usd_per_second") if k in value]
    fixed: dict[str, float] = {}
    if base:
        if len(base) != 3 or "usd" in value or rates:
            raise _bad(
                source,
                "per_second takes either base_usd, base_seconds and extra_usd_per_second "
                "together, or a rate 'usd' (with optional 'rates')",
            )
        fixed = {k: _usd(value[k], source, f"per_second.{k}") for k in base}
    return PriceRule(
        per_second=dict(value),
        usd=None if base else _rate_usd(value, rates, source, "per_second"),
        rates=rates,
        multiply=multiply,
        base=fixed,
    )


def _keys(raw: dict[Any, Any]) -> str:
    return ", ".join(repr(k) for k in raw) or "nothing"


def _bad(source: str, message: str) -> InputError:
    return InputError.one(source, f"price: {message}")


def _usd(value: Any, source: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(source, f"{where} must be a number, not {value!r}")
    if value < 0:
        raise _bad(source, f"{where} must not be negative")
    return float(value)


def _rate_usd(
    block: dict[str, Any], rates: tuple[Rate, ...], source: str, kind: str
) -> float | None:
    """The rate when no ``rates`` entry matches; optional only where ``rates`` are given."""
    if block.get("usd") is None and rates:
        return None
    return _usd(block.get("usd"), source, f"{kind}.usd")


def _rates(raw: Any, source: str, kind: str) -> tuple[Rate, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _bad(source, f"{kind}.rates must be a list of {{when: {{...}}, usd: N}}")
    rates = []
    for i, item in enumerate(raw, 1):
        ok = isinstance(item, dict) and set(item) == {"when", "usd"}
        if not ok or not isinstance(item["when"], dict) or not item["when"]:
            raise _bad(
                source, f"{kind}.rates item {i} must be {{when: {{parameter: value}}, usd: N}}"
            )
        when = tuple((str(k), _text(v)) for k, v in item["when"].items())
        rates.append(Rate(when, _usd(item["usd"], source, f"{kind}.rates item {i} usd")))
    return tuple(rates)


def _multiply(
    raw: Any, source: str, kind: str
) -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not all(isinstance(t, dict) for t in raw.values()):
        raise _bad(source, f"{kind}.multiply must map a parameter to {{value: factor}}")
    return tuple(
        (
            str(name),
            tuple((_text(v), _usd(f, source, f"{kind}.multiply.{name}")) for v, f in t.items()),
        )
        for name, t in raw.items()
    )
