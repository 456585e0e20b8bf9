"""fal's model API, from the emulator's specs: ``GET /v1/models`` with its OpenAPI documents.

``GET /v1/models?endpoint_id=A&endpoint_id=B`` (or ``A,B``) answers ``{"models": [...],
"has_more", "next_cursor"}``, each model ``{"endpoint_id", "metadata": {"display_name",
"category", "description", "status", "updated_at", ...}}``, plus ``"openapi"`` with
``expand=openapi-3.0``; without ``endpoint_id`` it pages through the catalog (``limit``,
``cursor``, ``category``). A retired spec is ``inactive``, as fal lists a model it stopped.

``openapi_of`` writes an endpoint's OpenAPI 3 document as fal serves it (input schema as the
POST body, output schema on the result route), with what fal's documents do not state (file
kinds and size limits, column aliases, UTF-8 byte limits) under ``x-batchgen`` on the
property, so that ``batchgen.plan.openapi`` reads it back to the same spec.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from batchgen.mock.config import MockConfig
from batchgen.plan.endpoint import EndpointSpec
from batchgen.plan.params import Param

_STATUS = {"active": "active", "deprecated": "deprecated", "retired": "inactive"}
_CATEGORY = {"t2v": "text-to-video", "i2v": "image-to-video"}
_PAGE = 50


def model_entry(spec: EndpointSpec, *, expand: bool) -> dict[str, Any]:
    """One model as ``/v1/models`` lists it."""
    entry: dict[str, Any] = {
        "endpoint_id": spec.id,
        "metadata": {
            "display_name": spec.title or spec.id,
            "category": _CATEGORY.get(spec.kind, spec.kind),
            "description": spec.notes.splitlines()[0] if spec.notes else "",
            "status": _STATUS[spec.status],
            "updated_at": "2026-08-02T00:00:00Z",
            "duration_estimate": spec.typical_latency_s,
        },
    }
    if expand:
        entry["openapi"] = openapi_of(spec)
    return entry


def openapi_of(spec: EndpointSpec) -> dict[str, Any]:
    """The OpenAPI 3 document of ``spec``, in the shape of fal's per-endpoint documents."""
    required = [n for n, p in spec.params.items() if p.required]
    input_schema: dict[str, Any] = {
        "type": "object",
        "title": "Input",
        "properties": {n: _schema(p) for n, p in spec.params.items()},
        "x-fal-order-properties": list(spec.params),
        **({"required": required} if required else {}),
    }
    if spec.one_of:  # at least one of them (Kling 3.0: a prompt or a multi_prompt)
        input_schema["anyOf"] = [{"required": [name]} for name in spec.one_of]
    output_schema = {
        "type": "object",
        "title": "Output",
        "properties": {spec.output: {"$ref": "#/components/schemas/File"}},
        "required": [spec.output],
    }
    file_schema = {
        "type": "object",
        "title": "File",
        "properties": {
            "url": {"type": "string"},
            "content_type": {"type": "string"},
            "file_name": {"type": "string"},
            "file_size": {"type": "integer"},
        },
        "required": ["url"],
    }
    json_of = {"application/json": {"schema": {"$ref": "#/components/schemas/Input"}}}
    result = {"application/json": {"schema": {"$ref": "#/components/schemas/Output"}}}
    return {
        "openapi": "3.0.4",
        "info": {
            "title": spec.title or spec.id,
            "version": "1.0.0",
            "x-fal-metadata": {"endpointId": spec.id, "category": _CATEGORY.get(spec.kind)},
        },
        "components": {
            "schemas": {"Input": input_schema, "Output": output_schema, "File": file_schema}
        },
        "paths": {
            f"/{spec.id}": {
                "post": {
                    "requestBody": {"required": True, "content": json_of},
                    "responses": {"200": {"description": "The request status."}},
                }
            },
            f"/{spec.id}/requests/{{request_id}}": {
                "get": {"responses": {"200": {"description": "Result", "content": result}}}
            },
        },
    }


def _schema(param: Param) -> dict[str, Any]:
    """One property's JSON schema (OpenAPI 3.0 dialect)."""
    kind = {"file": "string", "list": "array"}.get(param.type, param.type)
    schema: dict[str, Any] = {"type": kind}
    ours: dict[str, Any] = {}
    if param.is_file:
        schema["format"] = "uri"
        ours = {"accept": list(param.accept), "max_mb": (param.max_bytes or 0) / 1_000_000}
    if param.items is not None:
        schema["items"] = _schema(param.items)
    if param.fields:
        schema["properties"] = {f.name: _schema(f) for f in param.fields}
        inner = [f.name for f in param.fields if f.required]
        if inner:
            schema["required"] = inner
    for ours_key, key in (
        ("default", "default"),
        ("enum", "enum"),
        ("minimum", "minimum"),
        ("maximum", "maximum"),
        ("max_length", "maxLength"),
        ("min_items", "minItems"),
        ("max_items", "maxItems"),
    ):
        value = getattr(param, ours_key)
        if value is not None:
            schema[key] = list(value) if key == "enum" else value
    if param.description:
        schema["description"] = param.description
    if param.aliases:
        ours["aliases"] = list(param.aliases)
    for key in ("max_utf8_bytes", "total_of", "max_total"):
        if getattr(param, key) is not None:
            ours[key] = getattr(param, key)
    if ours:
        schema["x-batchgen"] = ours
    return schema


def models_answer(config: MockConfig, query: Any) -> dict[str, Any]:
    """The answer of ``GET /v1/models`` for ``query`` (the request's query parameters)."""
    expand = "openapi-3.0" in query.getall("expand", [])
    wanted = [i.strip().strip("/") for v in query.getall("endpoint_id", []) for i in v.split(",")]
    if wanted:
        found = [config.specs[i] for i in dict.fromkeys(wanted) if i in config.specs]
        return {
            "models": [model_entry(s, expand=expand) for s in found],
            "has_more": False,
            "next_cursor": None,
        }
    category = query.get("category")
    specs = [
        s
        for _, s in sorted(config.specs.items())
        if category is None or _CATEGORY.get(s.kind) == category
    ]
    try:
        start = max(0, int(query.get("cursor") or 0))
        limit = max(1, min(int(query.get("limit") or _PAGE), 100))
    except ValueError:
        raise web.HTTPBadRequest(text='{"detail": "cursor and limit are numbers"}') from None
    page = specs[start : start + limit]
    more = start + limit < len(specs)
    return {
        "models": [model_entry(s, expand=expand) for s in page],
        "has_more": more,
        "next_cursor": str(start + limit) if more else None,
    }
