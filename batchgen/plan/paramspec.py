"""A parameter as a spec file writes it: its mapping read into a ``Param``, every rule checked
to be of its kind before any use, and its default checked against its own rules."""

from __future__ import annotations

import math
from typing import Any

from batchgen.errors import InputError
from batchgen.plan.params import DEFAULT_MAX_BYTES, MEDIA_KINDS, TYPES, Param


def parse_param(name: str, raw: Any, source: str) -> Param:
    """A parameter from a spec file's mapping (``type: ...``); InputError naming ``source``."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise InputError.one(source, f"parameter {name!r}: must be a mapping (type: ...)")
    kind = raw.get("type", "string")
    if kind not in TYPES:
        raise InputError.one(source, f"parameter {name!r}: type must be one of {TYPES}")
    _check_rules(name, raw, source)
    enum = raw.get("enum")
    accept = tuple(raw.get("accept") or (MEDIA_KINDS if kind == "file" else ()))
    if any(media not in MEDIA_KINDS for media in accept):
        raise InputError.one(source, f"parameter {name!r}: accept must be among {MEDIA_KINDS}")
    items = None
    if kind == "list":
        if not isinstance(raw.get("items"), dict):
            raise InputError.one(source, f"parameter {name!r}: a list needs 'items' (type: ...)")
        items = parse_param(f"{name} item", raw["items"], source)
    fields: tuple[Param, ...] = ()
    if kind == "object":
        given = raw.get("fields")
        if not isinstance(given, dict) or not given:
            raise InputError.one(source, f"parameter {name!r}: an object needs 'fields'")
        fields = tuple(parse_param(str(n), f, source) for n, f in given.items())
    max_mb = raw.get("max_mb")
    param = Param(
        name=name,
        type=kind,
        required=bool(raw.get("required", False)),
        default=raw.get("default"),
        enum=tuple(enum) if enum is not None else None,
        minimum=raw.get("minimum"),
        maximum=raw.get("maximum"),
        max_length=raw.get("max_length"),
        max_utf8_bytes=raw.get("max_utf8_bytes"),
        description=str(raw.get("description") or "").strip(),
        accept=accept,
        max_bytes=(
            int(float(max_mb) * 1_000_000)
            if max_mb is not None
            else DEFAULT_MAX_BYTES
            if kind == "file"
            else None
        ),
        aliases=tuple(str(a) for a in raw.get("aliases") or ()),
        items=items,
        min_items=raw.get("min_items"),
        max_items=raw.get("max_items"),
        total_of=raw.get("total_of"),
        max_total=raw.get("max_total"),
        fields=fields,
    )
    if param.default is not None:  # a default the parameter itself refuses is no default
        try:
            param.coerce(param.default)
        except ValueError as exc:
            raise InputError.one(source, f"parameter {name!r}: its default {exc}") from None
    return param


_COUNTS = ("max_length", "max_utf8_bytes", "min_items", "max_items")


def _check_rules(name: str, raw: dict[str, Any], source: str) -> None:
    """InputError for a rule of the wrong kind (``max_items: two``), before any use of it."""

    def bad(message: str) -> InputError:
        return InputError.one(source, f"parameter {name!r}: {message}")

    for key in ("minimum", "maximum", "max_mb", "max_total"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise bad(f"{key} must be a number, not {value!r:.40}")
        if value is not None and not math.isfinite(value):
            raise bad(f"{key} must be a finite number")
    for key in _COUNTS:
        value = raw.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise bad(f"{key} must be a whole number, 0 or more, not {value!r:.40}")
    if raw.get("enum") is not None and not isinstance(raw["enum"], list):
        raise bad("enum must be a list of values")
    if not isinstance(raw.get("required", False), bool):
        raise bad("required must be true or false")
    aliases = raw.get("aliases")
    if aliases is not None and not (
        isinstance(aliases, list) and all(isinstance(a, str) for a in aliases)
    ):
        raise bad("aliases must be a list of names")
    if raw.get("accept") is not None and not isinstance(raw["accept"], list):
        raise bad("accept must be a list of media kinds")
