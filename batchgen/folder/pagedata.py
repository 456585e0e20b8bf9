"""What the report pages (``report.html``, ``compare.html``) share: values as page text, the
parameters every job shares, and data made safe to place inside a ``<script>`` element."""

from __future__ import annotations

import json
from typing import Any

from batchgen.fsnames import json_escaped
from batchgen.ledger.manifest import Manifest


def label(value: Any) -> str:
    """A parameter or cell value as the pages show it: text as is, JSON for the rest."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def natural(text: str) -> tuple[int, float, str]:
    """A sort key putting numbers first, in numeric order, then text."""
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def common_values(manifest: Manifest) -> dict[str, str]:
    """Parameters and input columns (not the prompt) that hold one same value in every job."""
    if not manifest.records:
        return {}
    common = {}
    for column in [*manifest.params, *manifest.inputs]:
        if column == "prompt":
            continue
        if any(r[column] is None for r in manifest.records):
            continue
        labels = {label(r[column]) for r in manifest.records}
        if len(labels) == 1:
            common[column] = labels.pop()
    return common


def same_for_every_job(common: dict[str, str]) -> str:
    """The header's line naming what every job shares; empty when nothing is."""
    shared = " · ".join(f"{name}: {value}" for name, value in common.items())
    return f"Same for every job: {shared}" if shared else ""


def script_json(data: Any) -> str:
    """``data`` as JSON safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&``
    written as ``\\u`` escapes, so no value can close the element or open a comment."""
    text = json_escaped(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
