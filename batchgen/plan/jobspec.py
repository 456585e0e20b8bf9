"""Job spec files: a YAML mapping that says what to run, with which defaults, where to.

    endpoint: fal-ai/kling-video/v2.5-turbo/pro/text-to-video
    provider: fal                  # or quickrouter, mock
    input: ../examples/prompts.csv # relative to this file; or `rows:` inline
    defaults: {duration: "5"}
    matrix: {aspect_ratio: ["16:9", "9:16"]}
    repeat: 2
    output: ../out/demo            # relative to this file
    filename: "{row:04d}-{slug}-{key8}"
    run: {concurrency: 8, rate: 10, max_cost: 25}

Every problem is reported with the spec's file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from batchgen.errors import InputError, Problem
from batchgen.plan.inputs import Loader, Table, yaml_problem, yaml_sequence_rows
from batchgen.plan.settings import RunSettings

KEYS = (
    "endpoint",
    "endpoint_spec",
    "provider",
    "input",
    "rows",
    "defaults",
    "matrix",
    "repeat",
    "output",
    "filename",
    "run",
)


@dataclass(slots=True)
class JobSpec:
    """A parsed job spec; paths are already resolved against the spec's folder."""

    path: str
    endpoint: str | None = None
    endpoint_spec: Path | None = None
    input: Path | None = None
    rows: Table | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    matrix: dict[str, list[Any]] = field(default_factory=dict)
    repeat: int = 1
    output: Path | None = None
    filename: str | None = None
    run: RunSettings = field(default_factory=RunSettings)
    # Lines of keys, for reporting: "defaults.duration" -> 7.
    lines: dict[str, int] = field(default_factory=dict)


def looks_like_spec(path: Path) -> bool:
    """True when ``path`` is a YAML file whose top level is a mapping (a spec, not rows)."""
    if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
        return False
    try:
        for event in yaml.parse(path.read_text(encoding="utf-8-sig")):
            if isinstance(event, yaml.MappingStartEvent):
                return True
            if isinstance(event, yaml.SequenceStartEvent | yaml.ScalarEvent):
                return False
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return False  # reading it as rows reports the problem properly
    return False


def _lines_of(node: yaml.MappingNode, prefix: str = "") -> dict[str, int]:
    lines = {}
    for key_node, value_node in node.value:
        key = f"{prefix}{key_node.value}"
        lines[key] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.MappingNode) and not prefix:
            lines.update(_lines_of(value_node, f"{key}."))
    return lines


def load_jobspec(path: str | Path) -> JobSpec:
    """Parse a job spec file; raises InputError with every problem found."""
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError.one(name, f"cannot read: {exc}", 1) from None
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if not isinstance(node, yaml.MappingNode):
            raise InputError.one(
                name, "a job spec is a YAML mapping (endpoint: ..., input: ...)", 1
            )
        data = loader.construct_mapping(node, deep=True)
        rows_node = next((v for k, v in node.value if k.value == "rows"), None)
        rows = None
        if rows_node is not None:
            if not isinstance(rows_node, yaml.SequenceNode):
                raise InputError.one(name, "'rows' must be a list", rows_node.start_mark.line + 1)
            rows = yaml_sequence_rows(name, loader, rows_node)
    except yaml.YAMLError as exc:
        raise yaml_problem(name, exc) from None
    finally:
        loader.dispose()
    lines = _lines_of(node)
    return _build(name, path.parent, data, rows, lines)


def _build(
    name: str, base: Path, data: dict[Any, Any], rows: Table | None, lines: dict[str, int]
) -> JobSpec:
    spec = JobSpec(path=name, rows=rows, lines=lines)
    problems: list[Problem] = []

    def bad(key: str, message: str) -> None:
        problems.append(Problem(name, lines.get(key, 1), key, message, "field"))

    for key in data:
        if key not in KEYS:
            bad(str(key), "is not a job spec field; known: " + ", ".join(KEYS))
    for key in ("endpoint", "provider", "filename"):
        if key in data and not (isinstance(data[key], str) and data[key].strip()):
            bad(key, "must be a non-empty text")
    spec.endpoint = data.get("endpoint")
    spec.filename = data.get("filename")
    for key in ("input", "output", "endpoint_spec"):
        if key in data:
            if isinstance(data[key], str) and data[key].strip():
                setattr(spec, key, (base / data[key]).resolve())
            else:
                bad(key, "must be a path")
    if "input" in data and rows is not None:
        bad("rows", "give either 'input' or 'rows', not both")
    if "input" not in data and rows is None:
        problems.append(Problem(name, 1, None, "needs 'input' (a prompt file) or 'rows'"))
    repeat = data.get("repeat", 1)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        bad("repeat", f"{repeat!r} must be a whole number of 1 or more")
    else:
        spec.repeat = repeat
    for key in ("defaults", "matrix", "run"):
        if key in data and not isinstance(data[key], dict):
            bad(key, "must be a mapping")
    spec.defaults = {str(k): v for k, v in (data.get("defaults") or {}).items()}
    for param, values in (data.get("matrix") or {}).items():
        if not isinstance(values, list) or not values:
            bad(f"matrix.{param}", "must be a non-empty list of values")
        else:
            spec.matrix[str(param)] = values
    run = dict(data.get("run") or {})
    if "provider" in data:
        run["provider"] = data["provider"]
    try:
        spec.run = RunSettings().merged(
            run,
            name,
            {k.removeprefix("run."): v for k, v in lines.items() if k != "provider"}
            | {"provider": lines.get("provider", 1)},
            label="field",
        )
    except InputError as exc:
        problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return spec
