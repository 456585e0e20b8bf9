"""A built-in spec against what fal says of the same endpoint: every difference, in words.

``differences(ours, theirs, price)`` compares parameters (added at fal, gone from it), each
common parameter's type, required, default, enum values, limits and list items, the status,
and fal's unit price (``{"unit_price", "unit"}``) with the spec's rate at its defaults (fal
gives one unit price per endpoint: a spec whose rates differ by resolution or audio is compared
at its defaults). ``stale_price`` says when a cached live price differs from the spec's.
"""

from __future__ import annotations

import math
from typing import Any

from batchgen.plan.endpoint import EndpointSpec
from batchgen.plan.params import Param
from batchgen.plan.price import money

_RULES = (
    "type",
    "required",
    "default",
    "minimum",
    "maximum",
    "max_length",
    "min_items",
    "max_items",
)
_STATUS = {"active": "active", "deprecated": "deprecated", "retired": "inactive"}


def differences(ours: EndpointSpec, theirs: EndpointSpec, price: Any) -> list[str]:
    """What differs between a built-in spec and fal's (see the module docstring)."""
    found: list[str] = []
    added = [n for n in theirs.params if n not in ours.params]
    gone = [n for n in ours.params if n not in theirs.params]
    if added:
        found.append("parameters added at fal: " + ", ".join(added))
    if gone:
        found.append("parameters fal no longer lists: " + ", ".join(gone))
    for name, param in ours.params.items():
        other = theirs.params.get(name)
        if other is not None:
            found.extend(_param_differences(name, param, other))
    if _STATUS[ours.status] != _STATUS[theirs.status]:
        found.append(f"status: ours {ours.status}, fal's {_STATUS[theirs.status]}")
    said = stale_price(ours, price)
    if said is not None:
        found.append(said)
    return found


def _param_differences(name: str, ours: Param, theirs: Param) -> list[str]:
    found = []
    for rule in _RULES:
        mine, other = getattr(ours, rule), getattr(theirs, rule)
        if mine != other and not (rule == "type" and {mine, other} == {"file", "string"}):
            found.append(f"{name}: {rule} ours {mine!r}, fal's {other!r}")
    if ours.enum != theirs.enum:
        mine, other = set(ours.enum or ()), set(theirs.enum or ())
        if ours.enum is None or theirs.enum is None:
            found.append(f"{name}: enum ours {_values(ours.enum)}, fal's {_values(theirs.enum)}")
        elif mine != other:
            new = ", ".join(map(repr, sorted(other - mine, key=str))) or "none"
            dropped = ", ".join(map(repr, sorted(mine - other, key=str))) or "none"
            found.append(f"{name}: enum values added at fal: {new}; gone: {dropped}")
    if ours.items is not None and theirs.items is not None:
        found.extend(_param_differences(f"{name} item", ours.items, theirs.items))
    for field in ours.fields:
        other = theirs.field(field.name)
        if other is None:
            found.append(f"{name}: field {field.name} gone at fal")
        else:
            found.extend(_param_differences(f"{name}.{field.name}", field, other))
    found.extend(
        f"{name}: field {f.name} added at fal" for f in theirs.fields if ours.field(f.name) is None
    )
    return found


def _values(enum: tuple[Any, ...] | None) -> str:
    return "any value" if enum is None else ", ".join(map(repr, enum))


def stale_price(spec: EndpointSpec, price: Any) -> str | None:
    """Words for a live unit price (fal's pricing API) that is not the spec's rate at its
    defaults; None when they agree or there is nothing to compare."""
    if not isinstance(price, dict) or not isinstance(price.get("unit_price"), int | float):
        return None
    defaults, _ = spec.check({})
    mine = spec.price.unit_price(spec.priced_as(defaults))
    live, unit = float(price["unit_price"]), str(price.get("unit") or "unit")
    if mine is None:
        return f"price: fal's pricing API says {money(live)} per {unit}; the spec has none"
    usd, my_unit = mine
    if my_unit == "second" and unit not in ("second", "seconds"):
        return f"price: fal bills per {unit} ({money(live)}), the spec per second ({money(usd)})"
    if math.isclose(usd, live, rel_tol=1e-6, abs_tol=1e-9):
        return None
    return f"price: fal's pricing API says {money(live)} per {unit}, the spec {money(usd)}"
