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
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from batchgen.errors import InputError
from batchgen.plan.files import read_text
from batchgen.plan.openapi import looks_like_openapi, spec_data_from_openapi
from batchgen.plan.params import (
    Param,
    ValueProblems,
    assemble,
    dotted,
    is_empty,
)
from batchgen.plan.paramspec import parse_param
from batchgen.plan.price import PriceRule, parse_price, seconds_of
from batchgen.plan.text import fold, is_blank
from batchgen.plan.yamlload import load_yaml

# What an endpoint makes a video from: text alone, or text and an image (or other file).
KINDS = ("t2v", "i2v")
STATUSES = ("active", "deprecated", "retired")  # an endpoint's life at its provider


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
    # Parameters of which at least one must be given (Kling 3.0: a prompt or a multi_prompt).
    one_of: tuple[str, ...] = ()

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
        ``aspect-ratio`` and ``ASPECT_RATIO`` all mean ``aspect_ratio``), or None. A numbered
        column names an item of a list (``image_urls.2``) or its field (``multi_prompt.1.prompt``):
        its canonical dotted name is returned."""
        if name in self.params:
            return name
        folded = fold(name)
        found = next(
            (
                p
                for p, param in self.params.items()
                if fold(p) == folded or any(fold(a) == folded for a in param.aliases)
            ),
            None,
        )
        if found is not None or "." not in name:
            return found
        head, *rest = name.split(".")
        top = self.lookup(head)
        if top is None or "." in top:
            return None
        path = self.params[top].at(rest)
        return None if path is None else ".".join([top, *path])

    def param_at(self, name: str) -> Param | None:
        """The parameter a canonical name (``lookup``'s) holds: a top one, or an item's."""
        head, *rest = name.split(".")
        top = self.params.get(head)
        return None if top is None else top.leaf(rest)

    def check(self, values: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Coerce ``values`` (missing = use default) into the payload to send.

        Returns the payload and a list of ``(parameter, message)`` problems; the payload is
        only meaningful when there are none. A problem inside a list or object names its
        place (``multi_prompt.2.prompt``). Defaults are written into the payload, so that it
        records exactly what was asked for.
        """
        if self.passthrough:
            # Nothing is known of the endpoint, but a batch of prompts needs its prompt.
            missing = (
                [("prompt", "is required and is empty")] if is_blank(values.get("prompt")) else []
            )
            return {k: v for k, v in values.items() if not is_blank(v)}, missing
        payload: dict[str, Any] = {}
        values, problems = self._assembled(values)
        for name, param in self.params.items():
            value = values.get(name)
            coerced = None
            if not is_empty(value):  # only spaces or invisible characters: not given
                try:
                    coerced = param.coerce(value)
                except ValueProblems as exc:
                    problems.extend((dotted(name, at), message) for at, message in exc.found)
                    continue
                except ValueError as exc:
                    problems.append((name, str(exc)))
                    continue
            if not is_empty(coerced):
                payload[name] = coerced
            elif param.required:
                problems.append((name, "is required and is empty"))
            elif param.default is not None:
                payload[name] = param.default
        # Asked only when none of them was given (one given but wrong has its own problem).
        if self.one_of and all(is_empty(values.get(n)) for n in self.one_of):
            names = " or ".join(self.one_of)
            problems.append((self.one_of[0], f"is empty: give {names}"))
        return payload, problems

    def _assembled(self, values: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """``values`` with numbered columns (``image_urls.1``) built into their lists."""
        if not any("." in name for name in values):
            return values, []
        whole = {k: v for k, v in values.items() if "." not in k}
        problems: list[tuple[str, str]] = []
        for name, param in self.params.items():
            parts = {k: v for k, v in values.items() if k.startswith(name + ".")}
            if not parts:
                continue
            if not is_empty(whole.get(name)):
                problems.append(
                    (name, f"is given both whole and by its numbered columns ({', '.join(parts)})")
                )
                continue
            whole[name], wrong = assemble(parts, param)
            problems.extend(wrong)
        return whole, problems

    def cost(self, payload: dict[str, Any]) -> float | None:
        return None if self.passthrough else self.price.cost(self.priced_as(payload))

    def priced_as(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``payload`` as its price is reckoned: a duration that is no length (``"auto"``:
        the model picks) at the longest the endpoint allows, as the bill may be."""
        name = self.price.duration_parameter
        if name is None or name not in payload or seconds_of(payload[name]) is not None:
            return payload
        longest = self.longest_seconds()
        return payload if longest is None else {**payload, name: longest}

    def longest_seconds(self) -> float | None:
        """The longest video the duration parameter allows (its enum's or its maximum)."""
        name = self.price.duration_parameter or "duration"
        param = self.params.get(name)
        if param is None:
            return None
        lengths = [s for v in param.enum or () if (s := seconds_of(v)) is not None]
        if param.maximum is not None:
            lengths.append(float(param.maximum))
        return max(lengths, default=None)

    def video_seconds(self, payload: dict[str, Any]) -> float | None:
        """Seconds of video ``payload`` asks for (``"5"``, ``8``, ``"8s"``), if it says."""
        priced = self.priced_as(payload)
        if self.price.per_second is not None:
            return self.price.seconds(priced)
        name = "duration" if "duration" in self.params else None
        return None if name is None else seconds_of(priced.get(name))

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
            **({"one_of": list(self.one_of)} if self.one_of else {}),
        }


def owner_app(endpoint_id: str) -> str:
    """The ``owner/app`` part of an endpoint id (``workflows/`` and ``comfy/`` keep three)."""
    parts = endpoint_id.strip("/").split("/")
    keep = 3 if parts[0] in ("workflows", "comfy") else 2
    return "/".join(parts[:keep])


_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def id_problem(endpoint_id: str) -> str | None:
    """Why ``endpoint_id`` cannot name an endpoint (None when it can): two or more segments
    of letters, digits, ``.``, ``_`` and ``-``, none of them ``.`` or ``..``; no query, no
    fragment, no spaces. It becomes a URL path, so nothing in it may lead elsewhere."""
    parts = endpoint_id.strip("/").split("/")
    if len(parts) < 2:
        return f"{endpoint_id!r} is not an endpoint id: owner/app[/path] (fal-ai/veo3.1)"
    for part in parts:
        if part in (".", "..") or not _SEGMENT.fullmatch(part):
            return (
                f"{endpoint_id!r} is not an endpoint id: {part!r} is no path segment (letters, "
                "digits, '.', '_' and '-'; no '..', '?' or '#')"
            )
    return None


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
        str(n): parse_param(str(n), raw, source)
        for n, raw in (data.get("parameters") or {}).items()
    }
    kind = data.get("kind") or ("i2v" if any(p.holds_files for p in params.values()) else "t2v")
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
        one_of=_one_of(data.get("one_of"), params, source),
    )


def _one_of(raw: Any, params: dict[str, Param], source: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or any(name not in params for name in raw):
        raise InputError.one(source, "'one_of' must be a list of the spec's parameters")
    return tuple(str(name) for name in raw)


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
