"""fal's OpenAPI document for one endpoint, read as an endpoint spec.

fal serves one document per endpoint (``/api/openapi/queue/openapi.json?endpoint_id=ID``):
``info.x-fal-metadata.endpointId`` names the endpoint, the POST on ``/ID`` takes the input
schema as its JSON request body (a ``$ref`` into ``components/schemas``), and the GET on
``/ID/requests/{request_id}`` answers the output schema. From it come the parameters, with type,
enum, default, minimum, maximum, ``maxLength``, required and description, and the output key.

Which strings are files: a string field whose name ends in ``_url`` and whose name (else its
description) names a media kind (image or frame, video, audio or music) is ``type: file``
accepting those kinds; a string with ``format: uri`` or ``binary`` and no kind named takes any
file; an array's items are files by the same rule, from the array's name less its ``s``
(``image_urls``). A size in the description ("up to 15 MB") becomes ``max_mb``. Arrays are
``list`` parameters and objects with properties ``object`` ones, with ``minItems``, ``maxItems``
and required fields; a field of no single type (a free-form object, a union) is left out and
named in the spec's notes. A document batchgen's emulator wrote carries ``x-batchgen`` on a
property (file kinds and size, aliases, UTF-8 byte limits), read back as is. The document
states no price, so the price is unknown.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from batchgen.errors import InputError

_TYPES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "array": "list",
    "object": "object",
}
_MAX_DEPTH = 6  # lists of objects of lists: deeper than any model's input
_KINDS = (
    ("image", ("image", "frame", "photo", "picture")),
    ("video", ("video",)),
    ("audio", ("audio", "music", "sound", "speech")),
)
_MB = re.compile(r"(\d+(?:\.\d+)?)\s*MB\b", re.IGNORECASE)


def looks_like_openapi(text: str) -> bool:
    """True for a JSON object that declares ``"openapi"`` near its start (told by content)."""
    head = text.lstrip("\ufeff \t\r\n")
    return head.startswith("{") and '"openapi"' in head[:4096]


def spec_data_from_openapi(text: str, source: str) -> dict[str, Any]:
    """The spec file mapping (see ``plan.endpoint``) an OpenAPI document describes."""
    reader = OpenAPIReader(text, source)
    return reader.spec_data()


def _shape_problem(source: str, exc: BaseException) -> InputError:
    """An OpenAPI document whose parts are not the types OpenAPI gives them."""
    return InputError.one(
        source, f"OpenAPI document: a part is not of the expected kind ({exc!r:.160})"
    )


class OpenAPIReader:
    """Reads one fal OpenAPI document; every problem is an InputError naming ``source``."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        try:
            doc = json.loads(text)
        except ValueError as exc:
            line, col = getattr(exc, "lineno", None), getattr(exc, "colno", None)
            where = f" (line {line}, column {col})" if line else ""
            raise self._bad(f"not valid JSON{where}: {getattr(exc, 'msg', exc)}") from None
        except RecursionError:
            raise self._bad("not valid JSON: nested too deep to read") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
            raise self._bad("an OpenAPI document is a JSON object with 'paths'")
        self.doc = doc
        self.skipped: list[str] = []

    def _bad(self, message: str) -> InputError:
        return InputError.one(self.source, f"OpenAPI document: {message}")

    def endpoint_id(self) -> str:
        meta = (self.doc.get("info") or {}).get("x-fal-metadata") or {}
        if isinstance(meta, dict) and isinstance(meta.get("endpointId"), str):
            return str(meta["endpointId"]).strip("/")
        posts = [p for p, op in self.doc["paths"].items() if isinstance(op, dict) and "post" in op]
        if not posts:
            raise self._bad("no POST operation: which endpoint does it describe?")
        return str(posts[0]).strip("/")

    def spec_data(self) -> dict[str, Any]:
        """The spec file mapping; InputError for a document of the wrong shape anywhere (a
        string where an object belongs, nesting past any reading)."""
        try:
            return self._spec_data()
        except (AttributeError, TypeError, KeyError, ValueError, RecursionError) as exc:
            raise _shape_problem(self.source, exc) from None

    def _spec_data(self) -> dict[str, Any]:
        endpoint = self.endpoint_id()
        schema = self._input_schema(endpoint)
        props = schema.get("properties")
        if not isinstance(props, dict) or not props:
            raise self._bad("the input schema has no properties")
        order = [p for p in schema.get("x-fal-order-properties") or [] if p in props]
        names = order + [p for p in props if p not in order]
        required = set(schema.get("required") or [])
        params = {}
        for name in names:
            param = self._param(name, props[name], name in required)
            if param is not None:
                params[name] = param
        files = any('"file"' in json.dumps(p) for p in params.values())
        # ``anyOf`` of lone ``required`` names: at least one of them must be given.
        either = [
            b["required"][0]
            for b in schema.get("anyOf") or []
            if isinstance(b, dict) and set(b) == {"required"} and len(b["required"]) == 1
        ]
        data: dict[str, Any] = {
            "id": endpoint,
            "title": endpoint,
            "kind": self._kind(files),
            "output": self._output_key(endpoint),
            "parameters": params,
            "price": {"unknown": "the OpenAPI document states no price"},
        }
        if either and all(name in params for name in either):
            data["one_of"] = either
        return data

    def _kind(self, files: bool) -> str:
        """``t2v`` or ``i2v``: as fal's metadata names the category, else by file inputs."""
        meta = (self.doc.get("info") or {}).get("x-fal-metadata") or {}
        category = meta.get("category") if isinstance(meta, dict) else None
        if category == "text-to-video":
            return "t2v"
        if category == "image-to-video":
            return "i2v"
        return "i2v" if files else "t2v"

    def _resolve(self, schema: Any, depth: int = 0) -> dict[str, Any]:
        """``schema`` with ``$ref``, one-branch ``allOf`` and nullable ``anyOf`` followed."""
        if depth > 20:
            raise self._bad("$ref chain too deep (a cycle?)")
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix("#/components/schemas/")
            target = ((self.doc.get("components") or {}).get("schemas") or {}).get(name)
            if name == ref or not isinstance(target, dict):
                raise self._bad(f"$ref {ref!r} points at no schema in components/schemas")
            merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            return self._resolve(merged, depth + 1)
        for key in ("anyOf", "oneOf", "allOf"):
            branches = schema.get(key)
            if isinstance(branches, list):
                real = [
                    b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")
                ]
                if len(real) == 1:
                    rest = {k: v for k, v in schema.items() if k != key}
                    return {**self._resolve(real[0], depth + 1), **rest}
        return schema

    def _input_schema(self, endpoint: str) -> dict[str, Any]:
        paths = self.doc["paths"]
        op = (paths.get("/" + endpoint) or {}).get("post")
        if op is None:
            op = next(
                (o["post"] for o in paths.values() if isinstance(o, dict) and "post" in o), None
            )
        body = ((op or {}).get("requestBody") or {}).get("content") or {}
        schema = (body.get("application/json") or {}).get("schema")
        if schema is None:
            raise self._bad(f"no JSON request body on POST /{endpoint}: no input schema")
        resolved = self._resolve(schema)
        if resolved.get("type", "object") != "object":
            raise self._bad("the input schema is not an object")
        return resolved

    def _param(self, name: str, raw: Any, required: bool, depth: int = 0) -> dict[str, Any] | None:
        schema = self._resolve(raw)
        kind = schema.get("type")
        if kind is None and isinstance(schema.get("enum"), list):
            kind = "string" if all(isinstance(v, str) for v in schema["enum"]) else None
        if kind == "object" and not isinstance(schema.get("properties"), dict):
            kind = "a free-form object"
        if kind not in _TYPES or depth > _MAX_DEPTH:
            self.skipped.append(f"{name} ({kind or 'no single type'})")
            return None
        description = " ".join(str(schema.get("description") or "").split())
        param: dict[str, Any] = {"type": _TYPES[kind]}
        extension = schema.get("x-batchgen")
        ours: dict[str, Any] = extension if isinstance(extension, dict) else {}
        accept = _file_kinds(name, schema, description, ours) if kind == "string" else None
        if accept is not None:
            param = {"type": "file", "accept": list(accept)}
            size = _MB.search(description)
            param["max_mb"] = ours.get("max_mb") or (float(size.group(1)) if size else 50.0)
        if kind == "array":
            # A list's items: files when the list's name says so (``image_urls``).
            before = len(self.skipped)
            item = self._param(name.removesuffix("s"), schema.get("items"), False, depth + 1)
            if item is None:
                del self.skipped[before:]
                self.skipped.append(f"{name} (a list of {_kind_of(schema)})")
                return None
            param["items"] = item
        if kind == "object":
            inner = set(schema.get("required") or [])
            fields = {}
            for field, value in schema["properties"].items():
                found = self._param(str(field), value, field in inner, depth + 1)
                if found is not None:
                    fields[str(field)] = found
            if not fields:
                return None
            param["fields"] = fields
        if required:
            param["required"] = True
        for key, value in ours.items():
            if key in ("aliases", "max_utf8_bytes", "total_of", "max_total"):
                param[key] = value
        for key, mine in (
            ("default", "default"),
            ("enum", "enum"),
            ("minimum", "minimum"),
            ("maximum", "maximum"),
            ("maxLength", "max_length"),
            ("minItems", "min_items"),
            ("maxItems", "max_items"),
        ):
            if schema.get(key) is not None and not (mine == "enum" and accept is not None):
                param[mine] = schema[key]
        if description:
            param["description"] = description
        return param

    def _output_key(self, endpoint: str) -> str:
        op = (self.doc["paths"].get(f"/{endpoint}/requests/{{request_id}}") or {}).get("get")
        content = ((((op or {}).get("responses") or {}).get("200") or {}).get("content")) or {}
        schema = self._resolve((content.get("application/json") or {}).get("schema"))
        props = schema.get("properties") or {}
        if "video" in props or not props:
            return "video"
        for key, value in props.items():
            value = self._resolve(value)
            value = self._resolve(value.get("items")) if value.get("type") == "array" else value
            if "url" in (value.get("properties") or {}):
                return str(key)
        return "video"

    def notes(self, origin: str) -> list[str]:
        """Lines for the header comment of a spec made from this document."""
        given = self.doc.get("info")
        info: dict[str, Any] = given if isinstance(given, dict) else {}
        lines = [f"Made by `batchgen endpoints import` from {origin}: {info.get('title', '')}."]
        if self.skipped:
            lines.append("Left out (no single type): " + ", ".join(self.skipped) + ".")
        lines.append("Price: unknown (an OpenAPI document states none); add a price block.")
        return lines


def _kind_of(schema: dict[str, Any]) -> str:
    items = schema.get("items")
    kind = items.get("type") if isinstance(items, dict) else None
    return str(kind or "no single type")


def _file_kinds(
    name: str, schema: dict[str, Any], description: str, ours: dict[str, Any]
) -> tuple[str, ...] | None:
    """The media kinds a string field takes as a file, or None when it is not a file.
    ``ours``: a document batchgen's emulator wrote says so itself (``x-batchgen``)."""
    if isinstance(ours.get("accept"), list):
        return tuple(str(kind) for kind in ours["accept"])
    if name.endswith("_url"):
        for text in (name, description.lower()):
            kinds = tuple(k for k, words in _KINDS if any(w in text for w in words))
            if kinds:
                return kinds
    if schema.get("format") in ("uri", "binary"):
        return ("image", "video", "audio")
    return None


def import_openapi(text: str, source: str, today: str) -> str:
    """A spec file (YAML text, with a header comment naming ``source`` and ``today``) for the
    endpoint an OpenAPI document describes; every problem is an InputError naming ``source``."""
    if not looks_like_openapi(text):
        raise InputError.one(
            source, 'not an OpenAPI document (a JSON object with "openapi" and "paths")'
        )
    reader = OpenAPIReader(text, source)
    data = reader.spec_data()
    header = [f"{data['id']}: endpoint spec for batchgen.", *reader.notes(f"{source} on {today}")]
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=96)
    return "".join(f"# {line}\n" for line in header) + body
