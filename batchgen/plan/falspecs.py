"""Specs from fal itself, for endpoints batchgen has no built-in spec for; cached on disk.

For such an id, ``FalSpecs.spec`` asks fal's model API for the model's OpenAPI document and
status and fal's pricing API for its unit price (``batchgen.api.models``), builds the spec
(``plan.openapi``: parameters, lists and objects included), and keeps both answers in the
user's cache folder (``$XDG_CACHE_HOME/batchgen/models``, else ``~/.cache/batchgen/models``),
one JSON file per endpoint with the date fetched. Later plans use the cache and need no
network; ``batchgen endpoints refresh`` fetches again. ``offline`` forbids asking.

fal's status ``inactive`` is a retired endpoint (refused before anything is sent),
``deprecated`` a deprecated one. The unit price becomes the spec's price: unit ``second`` by the
duration parameter, ``video``, ``clip`` or ``request`` flat, any other unit unknown (saying
which). A cache file that cannot be read is ignored (and fetched again where allowed).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchgen.errors import ApiError, InputError
from batchgen.plan.endpoint import EndpointSpec, spec_from_data
from batchgen.plan.openapi import OpenAPIReader

# What asking fal gives: the model entry (None: fal lists no such model) and its unit price
# (``{"unit_price", "unit", "currency"}``, None: none). The client is ``batchgen.api.models``.
Asked = tuple[dict[str, Any] | None, dict[str, Any] | None]

_MOST = 10_000.0  # USD per unit: anything above is no price of a video model
_FLAT_UNITS = ("video", "videos", "clip", "clips", "request", "requests", "generation")
_SECOND_UNITS = ("second", "seconds", "s", "video second", "video seconds")


def cache_dir() -> Path:
    """Where fal's answers are kept: ``$XDG_CACHE_HOME/batchgen/models`` (else ``~/.cache``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(root) / "batchgen" / "models"


@dataclass(slots=True)
class FalSpecs:
    """Where specs for unknown ids come from: the cache, else fal's platform (unless
    ``offline``). ``fetch`` asks the platform (``batchgen.api.models.lookup`` bound to its URL,
    key and network, see ``Asked``); None when there is no platform to ask."""

    fetch: Callable[[str], Asked] | None
    platform_url: str | None = None
    offline: bool = False
    folder: Path = field(default_factory=cache_dir)
    clock: Callable[[], float] = time.time
    said: list[str] = field(default_factory=list)  # what the plan should tell the user

    def spec(self, endpoint_id: str) -> EndpointSpec | None:
        """The spec fal gives ``endpoint_id`` (cached, else fetched), or None (passthrough);
        what happened is appended to ``said``."""
        entry = self.cached(endpoint_id)
        if entry is not None:
            self.said.append(
                f"endpoint {endpoint_id!r}: spec from fal's model API, cached on "
                f"{entry['fetched_at'][:10]} ({self.path(endpoint_id)}; refresh it with "
                "batchgen endpoints refresh)"
            )
            return spec_of(entry)
        if self.offline:
            self.said.append(f"endpoint {endpoint_id!r}: no cached spec, and --offline asks none")
            return None
        if self.fetch is None:
            return None
        try:
            entry = self.refresh(endpoint_id)
        except ApiError as exc:
            self.said.append(f"endpoint {endpoint_id!r}: fal's model API could not say ({exc})")
            return None
        if entry is None:
            self.said.append(f"endpoint {endpoint_id!r}: fal's model API lists no such model")
            return None
        self.said.append(
            f"endpoint {endpoint_id!r}: spec read now from fal's model API at "
            f"{self.platform_url} (and cached; plan sent no job)"
        )
        return spec_of(entry)

    def refresh(self, endpoint_id: str) -> dict[str, Any] | None:
        """Ask fal again and cache its answer; None when fal lists no such model. ApiError
        when it cannot be asked."""
        if self.fetch is None:
            raise ApiError("no platform API to ask (this provider has none: --platform-url URL)")
        model, price = self.fetch(endpoint_id)
        if model is None:
            return None
        entry = {
            "endpoint_id": endpoint_id,
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock())),
            "platform_url": self.platform_url,
            "model": model,
            "price": price,
        }
        spec_of(entry)  # refuse (InputError) what cannot be read, before it is kept
        self._write(endpoint_id, entry)
        return entry

    def path(self, endpoint_id: str) -> Path:
        """The cache file of ``endpoint_id`` (its id, readable, plus a hash: ids may hold any
        character and two spellings must not meet)."""
        safe = urllib.parse.quote(endpoint_id, safe="")[:120]
        digest = hashlib.sha256(endpoint_id.encode()).hexdigest()[:12]
        return self.folder / f"{safe}.{digest}.json"

    def cached(self, endpoint_id: str) -> dict[str, Any] | None:
        """The cached answers for ``endpoint_id``; None when there are none, or the file is
        unreadable or names another endpoint (a file edited or misplaced: never followed)."""
        try:
            entry = json.loads(self.path(endpoint_id).read_text(encoding="utf-8"))
            if not isinstance(entry, dict) or entry.get("endpoint_id") != endpoint_id:
                return None
            spec_of(entry)
        except (OSError, ValueError, InputError, RecursionError):
            return None
        return entry

    def _write(self, endpoint_id: str, entry: dict[str, Any]) -> None:
        path = self.path(endpoint_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            temp.write_text(json.dumps(entry, indent=1), encoding="utf-8")
            os.replace(temp, path)
        except OSError as exc:  # a cache that cannot be written only costs a later fetch
            self.said.append(f"fal's answer for {endpoint_id!r} was not cached ({exc.strerror})")


def cached_ids(folder: Path) -> list[str]:
    """The endpoint ids ``folder`` (a cache) holds answers for, sorted."""
    ids = set()
    for path in folder.glob("*.json"):
        try:
            ids.add(str(json.loads(path.read_text(encoding="utf-8"))["endpoint_id"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(ids)


def spec_of(entry: dict[str, Any]) -> EndpointSpec:
    """The spec a cached entry describes; InputError when it cannot be read as one."""
    try:
        return _spec_of(entry)
    except (KeyError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        where = f"fal model API answer for {entry.get('endpoint_id')!r}"
        raise InputError.one(where, f"cannot be read as an endpoint spec ({exc!r:.200})") from None


def _spec_of(entry: dict[str, Any]) -> EndpointSpec:
    endpoint_id = str(entry["endpoint_id"])
    source = f"fal model API ({entry['platform_url']}, fetched {entry['fetched_at'][:10]})"
    model = entry["model"]
    document = model.get("openapi")
    if not isinstance(document, dict):
        raise InputError.one(source, f"fal's model API gave {endpoint_id!r} no OpenAPI document")
    text = json.dumps(document)
    reader = OpenAPIReader(text, source)
    data = reader.spec_data()
    data["id"] = endpoint_id
    meta = model.get("metadata") if isinstance(model.get("metadata"), dict) else {}
    data["title"] = str(meta.get("display_name") or endpoint_id)
    status = str(meta.get("status") or "active")
    if status == "inactive":
        data.update(status="retired", why="fal lists it as inactive")
    elif status == "deprecated":
        data.update(status="deprecated", why="fal lists it as deprecated")
    latency = meta.get("duration_estimate")
    if isinstance(latency, int | float) and not isinstance(latency, bool) and latency > 0:
        data["typical_latency_s"] = float(latency)
    data["price"] = price_block(entry.get("price"), data["parameters"])
    notes = "\n".join([*reader.notes(source)[:-1], _price_note(entry.get("price"))])
    digest = hashlib.sha256(text.encode()).hexdigest()
    return spec_from_data(data, source, digest, notes)


def price_block(price: Any, params: dict[str, Any]) -> Any:
    """A spec's price block from fal's unit price (see the module docstring)."""
    if not isinstance(price, dict) or not isinstance(price.get("unit_price"), int | float):
        return {"unknown": "fal's pricing API gave no price"}
    usd, unit = float(price["unit_price"]), str(price.get("unit") or "").strip().lower()
    if not math.isfinite(usd) or not 0 <= usd <= _MOST:
        return {"unknown": f"fal's pricing API gave an implausible price ({usd!r:.20})"}
    if unit in _SECOND_UNITS:
        if "duration" in params:
            return {"per_second": {"parameter": "duration", "usd": usd}}
        return {"unknown": "fal prices it per second, and it has no duration parameter"}
    if unit in _FLAT_UNITS:
        return {"flat_usd": usd}
    return {"unknown": f"fal prices it per {unit or 'unit'} (${usd:g}), not per video"}


def _price_note(price: Any) -> str:
    if not isinstance(price, dict):
        return "Price: unknown (fal's pricing API gave none)."
    return (
        f"Price: fal's pricing API, {price.get('unit_price')} {price.get('currency', 'USD')} "
        f"per {price.get('unit')} (one unit price per endpoint: rates by resolution or audio "
        "are not in it)."
    )
