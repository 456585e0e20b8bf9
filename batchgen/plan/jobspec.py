"""Job spec files: a YAML mapping that says what to run, with which defaults, where to.

    endpoint: fal-ai/kling-video/v2.5-turbo/pro/text-to-video
    provider: fal                  # or quickrouter, mock
    input: ../examples/prompts.csv # relative to this file; or `rows:` inline
    defaults: {duration: "5"}
    matrix: {aspect_ratio: ["16:9", "9:16"]}   # or {endpoint: [A, B]}: every row on each
    per_endpoint: {fal-ai/veo3.1/fast: {duration: 8s}}  # defaults for one endpoint's jobs
    repeat: 2
    output: ../out/demo            # relative to this file
    filename: "{row:04d}-{slug}-{key8}"
    endpoint_spec: [a.yaml, b.yaml]  # your own endpoints, each described by a file (or one)
    sheet: Prompts                 # an XLSX's sheet (default: the first with a prompt column)
    skip_hidden_rows: true         # leave an XLSX's hidden rows out (default: read them)
    extra_columns: ok              # keep columns that look like misspelt parameters as notes
    run: {concurrency: 8, rate: 10, max_cost: 25}
    # a private CA's certificates: run: {ca_bundle: certs/ca.pem} (relative to this file)
    # several keys, each with its own cap: run: {keys: [{env: FAL_KEY_A, concurrency: 2}, ...]}

Every problem is reported with the spec's file and line.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from batchgen.errors import InputError, Problem
from batchgen.plan.files import open_regular, read_text
from batchgen.plan.inputs import Table, yaml_sequence_rows
from batchgen.plan.settings import KEY_FIELDS, KeyEnv, RunSettings, env_name, key_cap
from batchgen.plan.text import shown, unicode_problem
from batchgen.plan.yamlload import Loader, yaml_problem

# What each field holds; a field of another shape is a problem at its line, never a traceback.
SHAPES = {
    "endpoint": "text",
    "endpoint_spec": "paths",
    "provider": "text",
    "input": "path",
    "sheet": "text",
    "skip_hidden_rows": "flag",
    "rows": "rows",
    "defaults": "values",
    "matrix": "lists",
    "per_endpoint": "endpoint values",
    "repeat": "count",
    "output": "path",
    "filename": "text",
    "run": "values",
    "extra_columns": "text",
}
# What a column that looks like a misspelt parameter is: an error, or ok (kept as a note).
EXTRA_COLUMNS = ("error", "ok")
KEYS = tuple(SHAPES)
WANTED = {
    "text": "a non-empty text",
    "path": "a path (text)",
    "paths": "a path (text) or a list of paths",
    "rows": "a list of rows (- prompt: ...)",
    "values": "a mapping of names to single values",
    "lists": "a mapping of parameters to lists of values",
    "endpoint values": "a mapping of endpoint ids to mappings of parameter defaults",
    "count": "a whole number",
    "flag": "true or false",
}
MAX_REPEAT = 10_000
# How far into a file ``looks_like_spec`` reads to find the shape of the document.
_SNIFF_CHARS = 1 << 16


@dataclass(slots=True)
class JobSpec:
    """A parsed job spec; paths are already resolved against the spec's folder."""

    path: str
    endpoint: str | None = None
    # Endpoint spec files, each describing its own endpoint (``endpoint_spec: [a.yaml, b.yaml]``).
    endpoint_specs: list[Path] = field(default_factory=list)
    input: Path | None = None
    sheet: str | None = None
    skip_hidden_rows: bool = False
    rows: Table | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    matrix: dict[str, list[Any]] = field(default_factory=dict)
    per_endpoint: dict[str, dict[str, Any]] = field(default_factory=dict)
    repeat: int = 1
    output: Path | None = None
    filename: str | None = None
    extra_columns: str | None = None
    run: RunSettings = field(default_factory=RunSettings)
    # Lines of keys, for reporting: "defaults.duration" -> 7.
    lines: dict[str, int] = field(default_factory=dict)


def looks_like_spec(path: Path) -> bool:
    """True when ``path`` is a YAML file whose top level is a mapping (a spec, not rows)."""
    if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
        return False
    try:
        with (
            open_regular(path, str(path)) as handle,
            io.TextIOWrapper(handle, encoding="utf-8-sig") as stream,
        ):
            head = stream.read(_SNIFF_CHARS)
        for event in yaml.parse(head, Loader=Loader):
            if isinstance(event, yaml.MappingStartEvent):
                return True
            if isinstance(event, yaml.SequenceStartEvent | yaml.ScalarEvent):
                return False
    except (yaml.YAMLError, OSError, UnicodeDecodeError, InputError):
        return False  # reading it as rows reports the problem properly
    return False


def load_jobspec(path: str | Path) -> JobSpec:
    """Parse a job spec file; raises InputError with every problem found."""
    path = Path(path)
    name = str(path)
    text = read_text(path, name)
    loader = Loader(text)
    spec = JobSpec(path=name)
    problems: list[Problem] = []
    try:
        node = loader.get_single_node()
        if not isinstance(node, yaml.MappingNode):
            raise InputError.one(
                name, "a job spec is a YAML mapping (endpoint: ..., input: ...)", 1
            )
        fields = _Fields(name, loader, spec.lines, problems)
        data = fields.read(node)
    except yaml.YAMLError as exc:
        raise yaml_problem(name, exc) from None
    finally:
        loader.dispose()
    _build(spec, path.parent, data, problems)
    return spec


class _Fields:
    """Reads the spec's mapping node field by field, checking each shape before building it,
    so a wrong shape is a problem at the field's line and an odd value is never expanded."""

    def __init__(
        self, name: str, loader: Loader, lines: dict[str, int], problems: list[Problem]
    ) -> None:
        self.name, self.loader, self.lines, self.problems = name, loader, lines, problems

    def bad(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.name, self.lines.get(key, 1), key, message, "field"))

    def pairs(self, node: yaml.MappingNode, prefix: str) -> list[tuple[str, yaml.Node]]:
        """The mapping's (name, value node) pairs; names must be text and appear once."""
        self.loader.flatten_mapping(node)  # merge keys (<<: *base)
        out = []
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            key = (
                self.loader.construct_object(key_node)
                if isinstance(key_node, yaml.ScalarNode)
                else None
            )
            if not isinstance(key, str) or not key.strip():
                what = shown(key) if isinstance(key_node, yaml.ScalarNode) else "a list or mapping"
                self.problems.append(
                    Problem(self.name, line, None, f"a field name must be text, not {what}")
                )
                continue
            full = f"{prefix}{key.strip()}"
            if full in self.lines:
                self.problems.append(
                    Problem(
                        self.name,
                        line,
                        full,
                        f"appears twice (first on line {self.lines[full]}); keep one",
                        "field",
                    )
                )
                continue
            self.lines[full] = line
            out.append((key.strip(), value_node))
        return out

    def read(self, node: yaml.MappingNode) -> dict[str, Any]:
        """Every known field of the spec as a value of its shape; others reported."""
        data: dict[str, Any] = {}
        for key, value_node in self.pairs(node, ""):
            shape = SHAPES.get(key)
            if shape is None:
                self.bad(key, "is not a job spec field; known: " + ", ".join(KEYS))
                continue
            value = self.shaped(key, shape, value_node)
            if value is not None:
                data[key] = value
        return data

    def shaped(self, key: str, shape: str, node: yaml.Node) -> Any:
        """``node`` read as ``shape``, or None after reporting why it is not one."""
        wrong = f"must be {WANTED[shape]}, not "
        if shape == "rows":
            if isinstance(node, yaml.SequenceNode):
                try:
                    return yaml_sequence_rows(self.name, self.loader, node)
                except InputError as exc:
                    self.problems.extend(exc.problems)
                    return None
            self.bad(key, wrong + _kind(node, self.loader))
            return None
        if shape == "endpoint values":
            if _is_null(node):
                return {}
            if not isinstance(node, yaml.MappingNode):
                self.bad(key, wrong + _kind(node, self.loader))
                return None
            return {
                ident.strip("/"): value
                for ident, child in self.pairs(node, f"{key}.")
                if (value := self.shaped(f"{key}.{ident}", "values", child)) is not None
            }
        if shape == "paths":
            if not isinstance(node, yaml.SequenceNode):
                one = self.shaped(key, "path", node)
                return None if one is None else [one]
            if not node.value:
                self.bad(key, wrong + "an empty list")
                return None
            paths = []
            for number, entry in enumerate(node.value, 1):
                where = f"{key}[{number}]"
                self.lines[where] = entry.start_mark.line + 1
                paths.append(self.shaped(where, "path", entry))
            return None if None in paths else paths
        if shape in ("values", "lists"):
            if _is_null(node):
                return {}
            if not isinstance(node, yaml.MappingNode):
                self.bad(key, wrong + _kind(node, self.loader))
                return None
            out = {}
            for name, child in self.pairs(node, f"{key}."):
                if (key, name) == ("run", "keys"):
                    item: Any = self.keys("run.keys", child)
                elif shape == "values" and key != "run" and not isinstance(child, yaml.ScalarNode):
                    # A list or mapping default: a list or object parameter's (checked by it).
                    item = self.loader.construct_object(child, deep=True)
                elif shape == "values":
                    item = self.single(f"{key}.{name}", child)
                else:
                    item = self.values(f"{key}.{name}", child)
                if item is not None:
                    out[name] = item
            return out
        if not isinstance(node, yaml.ScalarNode):
            self.bad(key, wrong + _kind(node, self.loader))
            return None
        value = self.loader.construct_object(node)
        if shape == "flag":
            if not isinstance(value, bool):
                self.bad(key, wrong + shown(value))
                return None
            return value
        if shape == "count":
            if isinstance(value, bool) or not isinstance(value, int):
                self.bad(key, wrong + shown(value))
            elif not 1 <= value <= MAX_REPEAT:
                self.bad(key, f"{shown(value)} must be from 1 to {MAX_REPEAT:,}")
            else:
                return value
            return None
        if not isinstance(value, str) or not value.strip():
            self.bad(key, wrong + ("an empty value" if _is_null(node) else shown(value)))
            return None
        return self.checked_text(key, value.strip())

    def single(self, key: str, node: yaml.Node) -> Any:
        """One scalar value (``None`` for an empty one is kept as ``None``)."""
        if not isinstance(node, yaml.ScalarNode):
            self.bad(key, f"must be a single value, not {_kind(node, self.loader)}")
            return None
        value = self.loader.construct_object(node)
        return self.checked_text(key, value) if isinstance(value, str) else value

    def keys(self, key: str, node: yaml.Node) -> tuple[KeyEnv, ...] | None:
        """``run.keys``: a list of ``{env: NAME, concurrency: N}``, each problem at its line."""
        wanted = "a list of keys ({env: NAME, concurrency: N})"
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            what = "an empty list" if isinstance(node, yaml.SequenceNode) else None
            self.bad(key, f"must be {wanted}, not {what or _kind(node, self.loader)}")
            return None
        out, count = [], len(self.problems)
        for number, item in enumerate(node.value, 1):
            where = f"{key}[{number}]"
            self.lines[where] = item.start_mark.line + 1
            if not isinstance(item, yaml.MappingNode):
                self.bad(
                    where, f"must be {{env: NAME, concurrency: N}}, not {_kind(item, self.loader)}"
                )
                continue
            fields = dict(self.pairs(item, f"{where}."))
            for name in fields.keys() - set(KEY_FIELDS):
                self.bad(
                    f"{where}.{name}", "is not a field of a key; known: " + ", ".join(KEY_FIELDS)
                )
            env = cap = None
            if "env" not in fields:
                self.bad(where, "needs env: the variable that holds the key")
            else:
                env = self.checked(f"{where}.env", fields["env"], env_name)
            if "concurrency" in fields:
                cap = self.checked(f"{where}.concurrency", fields["concurrency"], key_cap)
            if isinstance(env, str):
                out.append(KeyEnv(env, cap))
        names = [k.env for k in out]
        for dup in sorted({name for name in names if names.count(name) > 1}):
            self.bad(key, f"{dup} is named twice: name each key once")
        return tuple(out) if len(self.problems) == count else None

    def checked(self, key: str, node: yaml.Node, check: Any) -> Any:
        """``check`` of the single value at ``node``; None after reporting what is wrong."""
        if not isinstance(node, yaml.ScalarNode):
            return self.single(key, node)  # reports it
        try:
            return check(self.loader.construct_object(node))
        except ValueError as exc:
            self.bad(key, str(exc))
            return None

    def values(self, key: str, node: yaml.Node) -> list[Any] | None:
        """A non-empty list of single values."""
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            what = "an empty list" if isinstance(node, yaml.SequenceNode) else None
            self.bad(
                key, f"must be a non-empty list of values, not {what or _kind(node, self.loader)}"
            )
            return None
        if not all(isinstance(item, yaml.ScalarNode) for item in node.value):
            self.bad(key, "must be a list of single values, not of lists or mappings")
            return None
        out = [self.loader.construct_object(item) for item in node.value]
        if any(isinstance(v, str) and self.checked_text(key, v) is None for v in out):
            return None
        return out

    def checked_text(self, key: str, value: str) -> str | None:
        wrong = unicode_problem(value)
        if wrong:
            self.bad(key, wrong)
            return None
        return value


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _kind(node: yaml.Node, loader: Loader) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return shown(loader.construct_object(node))


def _build(spec: JobSpec, base: Path, data: dict[str, Any], problems: list[Problem]) -> None:
    name, lines = spec.path, spec.lines

    def bad(key: str, message: str) -> None:
        problems.append(Problem(name, lines.get(key, 1), key, message, "field"))

    spec.endpoint = data.get("endpoint")
    spec.filename = data.get("filename")
    spec.sheet = data.get("sheet")
    spec.skip_hidden_rows = data.get("skip_hidden_rows", False)
    extra = data.get("extra_columns")
    if extra is not None and extra.lower() not in EXTRA_COLUMNS:
        bad("extra_columns", f"{shown(extra)} is not one of: {', '.join(EXTRA_COLUMNS)}")
    spec.extra_columns = extra.lower() if extra is not None else None
    for key in ("input", "output"):
        if key in data:
            setattr(spec, key, (base / data[key]).resolve())
    spec.endpoint_specs = [(base / p).resolve() for p in data.get("endpoint_spec", ())]
    spec.rows = data.get("rows")
    if "input" in lines and "rows" in lines:
        bad("rows", "give either 'input' or 'rows', not both")
    if "input" not in lines and "rows" not in lines:
        problems.append(Problem(name, 1, None, "needs 'input' (a prompt file) or 'rows'"))
    spec.repeat = data.get("repeat", 1)
    spec.defaults = data.get("defaults", {})
    spec.matrix = data.get("matrix", {})
    spec.per_endpoint = data.get("per_endpoint", {})
    run_lines = {k.removeprefix("run."): v for k, v in lines.items() if k.startswith("run.")}
    settings = RunSettings()
    try:
        settings = settings.merged(data.get("run", {}), name, run_lines, label="field")
    except InputError as exc:
        problems.extend(
            Problem(p.path, p.line, f"run.{p.column}", p.message, p.label) for p in exc.problems
        )
    if "provider" in data:
        try:
            settings = settings.merged({"provider": data["provider"]}, name, lines, label="field")
        except InputError as exc:
            problems.extend(exc.problems)
    if settings.ca_bundle is not None:  # a path in a spec is relative to it, as every path is
        settings = replace(settings, ca_bundle=str((base / settings.ca_bundle).resolve()))
    spec.run = settings
    if problems:
        raise InputError(sorted(problems, key=lambda p: p.line or 0))
