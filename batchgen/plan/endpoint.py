"""Endpoint specs: each endpoint's input schema, defaults, typical latency and price, as data.

A spec is a YAML file (built-ins live in ``batchgen/plan/endpoints/``). ``EndpointSpec.check``
coerces one set of parameters where the meaning is certain (``5`` -> ``"5"`` for a string enum,
``"0.70"`` -> ``0.7`` for a number) and reports every violation of the schema. An endpoint id
with no spec is run as *passthrough*: parameters are sent as given and the price is unknown.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from batchgen.errors import InputError
from batchgen.plan.files import read_text
from batchgen.plan.openapi import looks_like_openapi, spec_data_from_openapi
from batchgen.plan.price import PriceRule, parse_price, seconds_of
from batchgen.plan.text import fold, is_blank, shown
from batchgen.plan.yamlload import load_yaml

_TYPES = ("string", "number", "integer", "boolean", "file")
# What an endpoint makes a video from: text alone, or text and an image (or other file).
KINDS = ("t2v", "i2v")
STATUSES = ("active", "deprecated", "retired")  # an endpoint's life at its provider
# Media kinds a ``type: file`` parameter may accept (checked by magic bytes, see plan.inputfiles).
MEDIA_KINDS = ("image", "video", "audio")
# Where a spec gives no size limit for a file, the provider answers beyond this (50 MB).
DEFAULT_MAX_BYTES = 50_000_000
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


@dataclass(frozen=True, slots=True)
class Param:
    """One input field of an endpoint."""

    name: str
    type: str = "string"
    required: bool = False
    default: Any = None
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None  # in characters
    max_utf8_bytes: int | None = None  # a limit some models count in UTF-8 bytes (PixVerse)
    description: str = ""
    # ``type: file`` only: the media kinds taken and the largest file, in bytes.
    accept: tuple[str, ...] = ()
    max_bytes: int | None = None
    # Other names a column may use for this parameter (``image_url`` for ``start_image_url``).
    aliases: tuple[str, ...] = ()

    def as_data(self) -> dict[str, Any]:
        """The parameter as a spec file writes it (only the keys that say something)."""
        data: dict[str, Any] = {"type": self.type}
        if self.required:
            data["required"] = True
        for key in ("default", "enum", "minimum", "maximum", "max_length", "max_utf8_bytes"):
            value = getattr(self, key)
            if value is not None:
                data[key] = list(value) if key == "enum" else value
        if self.is_file:
            data["accept"] = list(self.accept)
            data["max_mb"] = (self.max_bytes or DEFAULT_MAX_BYTES) / 1_000_000
        if self.aliases:
            data["aliases"] = list(self.aliases)
        if self.description:
            data["description"] = self.description
        return data

    @property
    def is_file(self) -> bool:
        """True for a file input: a URL, a ``data:`` URI or a local path in a cell."""
        return self.type == "file"

    def coerce(self, value: Any) -> Any:
        """Return ``value`` as this field's type, or raise ValueError saying why it cannot be.

        A file's value is kept as text here; which file it names is ``plan.inputfiles``' job.
        """
        if self.is_file:
            return _as_string(value).strip()
        if self.type == "string":
            value = _as_string(value)
            if self.enum is not None and value not in self.enum:
                allowed = ", ".join(repr(v) for v in self.enum)
                raise ValueError(f"{shown(value)} is not one of the allowed values: {allowed}")
            if self.max_length is not None and len(value) > self.max_length:
                raise ValueError(
                    f"is {len(value)} characters long, above the maximum {self.max_length}"
                )
            size = len(value.encode("utf-8", "surrogatepass"))
            if self.max_utf8_bytes is not None and size > self.max_utf8_bytes:
                raise ValueError(
                    f"is {size} bytes long in UTF-8, above the maximum {self.max_utf8_bytes} "
                    "bytes (an accented letter takes 2, many other letters 3)"
                )
            return value
        if self.type == "boolean":
            return _as_boolean(value)
        number = _as_number(value, integer=self.type == "integer")
        if self.minimum is not None and number < self.minimum:
            raise ValueError(f"{_show(number)} is below the minimum {_show(self.minimum)}")
        if self.maximum is not None and number > self.maximum:
            raise ValueError(f"{_show(number)} is above the maximum {_show(self.maximum)}")
        if self.enum is not None and number not in self.enum:
            allowed = ", ".join(_show(v) for v in self.enum)
            raise ValueError(f"{_show(number)} is not one of the allowed values: {allowed}")
        return number


def _show(number: float | int) -> str:
    return str(int(number)) if float(number).is_integer() else repr(number)


def _as_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{shown(value)} is not text")
    # 5 and 5.0 (a spreadsheet's number cell) both mean "5"; 5.5 means "5.5".
    return _show(value) if math.isfinite(value) else repr(value)


def _as_number(value: Any, *, integer: bool) -> float | int:
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool):
        raise ValueError(f"{shown(value)} is not {kind}")
    if isinstance(value, str):
        text = value.strip()
        try:
            number: float | int = (
                int(text) if integer and text.lstrip("+-").isdigit() else float(text)
            )
        except ValueError:
            raise ValueError(f"{shown(value)} is not {kind}") from None
    elif isinstance(value, int | float):
        number = value
    else:
        raise ValueError(f"{shown(value)} is not {kind}")
    if not math.isfinite(number):
        raise ValueError(f"{shown(value)} is not {kind}")
    if integer:
        if not float(number).is_integer():
            raise ValueError(f"{shown(value)} is not {kind}")
        return int(number)
    return float(number)


def _as_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{shown(value)} is not true or false")


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """What batchgen knows of one endpoint. ``passthrough`` specs know nothing."""

    id: str
    title: str = ""
    kind: str = "t2v"
    params: dict[str, Param] = field(default_factory=dict)
    price: PriceRule = field(default_factory=PriceRule)
    typical_latency_s: float | None = None
    output: str = "video"
    passthrough: bool = False
    source: str = "built-in"
    digest: str = ""
    # The spec file's header comment: where its facts came from, and when.
    notes: str = ""
    # active; deprecated (warned about); retired (refused before anything is sent): since
    # when, why, and the endpoint to use instead.
    status: str = "active"
    since: str = ""
    why: str = ""
    instead: str | None = None

    def lifecycle(self) -> str | None:
        """What a plan says of a deprecated or retired endpoint (None for an active one)."""
        if self.status == "active":
            return None
        when = f" on {self.since}" if self.since else ""
        why = f" ({self.why})" if self.why else ""
        verb = "was retired" if self.status == "retired" else "is deprecated"
        instead = f"; use {self.instead} instead" if self.instead else ""
        tail = "" if self.status == "retired" else ": it may stop answering"
        return f"endpoint {self.id!r} {verb}{when}{why}{tail}{instead}"

    @property
    def owner_app(self) -> str:
        """The ``owner/app`` part of the id, on which status, result and cancel live."""
        return owner_app(self.id)

    def lookup(self, name: str) -> str | None:
        """The parameter a column or field name means, compared loosely (``Aspect Ratio``,
        ``aspect-ratio`` and ``ASPECT_RATIO`` all mean ``aspect_ratio``), or None."""
        if name in self.params:
            return name
        folded = fold(name)
        return next(
            (
                p
                for p, param in self.params.items()
                if fold(p) == folded or any(fold(a) == folded for a in param.aliases)
            ),
            None,
        )

    def check(self, values: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Coerce ``values`` (missing = use default) into the payload to send.

        Returns the payload and a list of ``(parameter, message)`` problems; the payload is
        only meaningful when there are none. Defaults are written into the payload, so that
        it records exactly what was asked for.
        """
        if self.passthrough:
            # Nothing is known of the endpoint, but a batch of prompts needs its prompt.
            missing = (
                [("prompt", "is required and is empty")] if is_blank(values.get("prompt")) else []
            )
            return {k: v for k, v in values.items() if not is_blank(v)}, missing
        payload: dict[str, Any] = {}
        problems: list[tuple[str, str]] = []
        for name, param in self.params.items():
            value = values.get(name)
            if is_blank(value):  # only spaces or invisible characters: not given
                if param.required:
                    problems.append((name, "is required and is empty"))
                elif param.default is not None:
                    payload[name] = param.default
                continue
            try:
                payload[name] = param.coerce(value)
            except ValueError as exc:
                problems.append((name, str(exc)))
        return payload, problems

    def cost(self, payload: dict[str, Any]) -> float | None:
        return None if self.passthrough else self.price.cost(payload)

    def video_seconds(self, payload: dict[str, Any]) -> float | None:
        """Seconds of video ``payload`` asks for (``"5"``, ``8``, ``"8s"``), if it says."""
        name = self.price.duration_parameter or ("duration" if "duration" in self.params else None)
        return None if name is None else seconds_of(payload.get(name))

    def default_seconds(self) -> float | None:
        """Seconds of video a job asks for when it leaves the duration at its default."""
        return self.video_seconds({n: p.default for n, p in self.params.items()})

    def as_data(self) -> dict[str, Any]:
        """The whole spec as plain data, in the shape of a spec file (``endpoints ID --json``)."""
        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "output": self.output,
            "typical_latency_s": self.typical_latency_s,
            "parameters": {n: p.as_data() for n, p in self.params.items()},
            "price": self.price.as_data(),
            "price_summary": self.price.summary(),
            "source": self.source,
            "notes": self.notes,
            "status": self.status,
            **({"since": self.since} if self.since else {}),
            **({"why": self.why} if self.why else {}),
            **({"instead": self.instead} if self.instead else {}),
        }


def owner_app(endpoint_id: str) -> str:
    """The ``owner/app`` part of an endpoint id (``workflows/`` and ``comfy/`` keep three)."""
    parts = endpoint_id.strip("/").split("/")
    keep = 3 if parts[0] in ("workflows", "comfy") else 2
    return "/".join(parts[:keep])


def passthrough(endpoint_id: str) -> EndpointSpec:
    """A spec for an endpoint batchgen does not know: send parameters as given."""
    return EndpointSpec(id=endpoint_id, passthrough=True, source="passthrough")


def parse_spec(text: str, source: str) -> EndpointSpec:
    """Build a spec from a YAML spec file's text, or from a fal OpenAPI document (JSON, told
    by its content); every problem is an InputError naming ``source``."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    if looks_like_openapi(text):
        return spec_from_data(spec_data_from_openapi(text, source), source, digest)
    data = load_yaml(source, text)
    notes = "\n".join(
        line.lstrip("#").strip()
        for line in itertools.takewhile(lambda line: line.startswith("#"), text.splitlines())
    )
    return spec_from_data(data, source, digest, notes)


def spec_from_data(data: Any, source: str, digest: str = "", notes: str = "") -> EndpointSpec:
    """Build a spec from a spec file's mapping (see ``parse_spec``)."""
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise InputError.one(source, "an endpoint spec is a mapping with at least an 'id'")
    if not isinstance(data.get("parameters") or {}, dict):
        raise InputError.one(source, "'parameters' must be a mapping")
    params = {
        str(n): _param(str(n), raw, source) for n, raw in (data.get("parameters") or {}).items()
    }
    kind = data.get("kind") or ("i2v" if any(p.is_file for p in params.values()) else "t2v")
    if kind not in KINDS:
        raise InputError.one(source, f"'kind' must be one of {', '.join(KINDS)}, not {kind!r}")
    latency = data.get("typical_latency_s")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int | float)):
        raise InputError.one(source, "'typical_latency_s' must be a number of seconds")
    status = data.get("status", "active")
    if status not in STATUSES:
        raise InputError.one(source, f"'status' must be one of {', '.join(STATUSES)}")
    instead = data.get("instead")
    return EndpointSpec(
        id=data["id"].strip("/"),
        title=str(data.get("title", "")),
        kind=kind,
        params=params,
        price=parse_price(data.get("price"), source),
        typical_latency_s=latency,
        output=str(data.get("output", "video")),
        source=source,
        digest=digest,
        notes=notes,
        status=status,
        since=str(data.get("since") or ""),
        why=str(data.get("why") or "").strip(),
        instead=str(instead).strip("/") if instead else None,
    )


def _param(name: str, raw: Any, source: str) -> Param:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise InputError.one(source, f"parameter {name!r}: must be a mapping (type: ...)")
    if raw.get("type", "string") not in _TYPES:
        raise InputError.one(source, f"parameter {name!r}: type must be one of {_TYPES}")
    enum = raw.get("enum")
    accept = tuple(raw.get("accept") or (MEDIA_KINDS if raw.get("type") == "file" else ()))
    if any(kind not in MEDIA_KINDS for kind in accept):
        raise InputError.one(source, f"parameter {name!r}: accept must be among {MEDIA_KINDS}")
    max_mb = raw.get("max_mb")
    return Param(
        name=name,
        type=raw.get("type", "string"),
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
            if raw.get("type") == "file"
            else None
        ),
        aliases=tuple(str(a) for a in raw.get("aliases") or ()),
    )


def builtin_specs() -> dict[str, EndpointSpec]:
    """Every built-in endpoint spec, by endpoint id (a new dict each call: callers add to it)."""
    return dict(_builtins())


@functools.cache
def _builtins() -> dict[str, EndpointSpec]:
    specs = {}
    for entry in sorted(resources.files("batchgen.plan.endpoints").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            spec = parse_spec(entry.read_text(encoding="utf-8"), f"built-in:{entry.name}")
            specs[spec.id] = spec
    return specs


def load_spec_file(path: str | Path) -> EndpointSpec:
    """Read a user's endpoint spec file."""
    path = Path(path)
    return parse_spec(read_text(path, str(path)), str(path))


def resolve(endpoint_id: str, spec_file: str | Path | None = None) -> EndpointSpec:
    """The spec for ``endpoint_id``: the user's file if given, a built-in, or passthrough."""
    if spec_file is not None:
        return load_spec_file(spec_file)
    return builtin_specs().get(endpoint_id.strip("/")) or passthrough(endpoint_id.strip("/"))


DEFAULT_ENDPOINT = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
