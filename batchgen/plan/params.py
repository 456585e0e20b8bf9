"""One input field of an endpoint: its type, its rules, and how a cell becomes its value.

Types: ``string``, ``number``, ``integer``, ``boolean``, ``file`` (a URL, a ``data:`` URI or a
local path, see ``plan.inputfiles``), ``list`` (of ``items``, a parameter of its own: strings,
numbers, files or objects; ``min_items``/``max_items``) and ``object`` (named ``fields``, each
a parameter; unknown fields refused). ``Param.coerce`` turns what a cell, a YAML value or
``--set`` holds into the value to send, where the meaning is certain (``5`` -> ``"5"`` for a
string enum, ``"0.70"`` -> ``0.7`` for a number), or raises ValueError saying why it cannot.

In a CSV or XLSX cell a list or an object is JSON (``["a.png", "b.png"]``, ``{"prompt": ...}``);
a list cell holding one plain value is a list of that one item. Numbered columns
(``image_urls.1``, ``multi_prompt.2.prompt``) name an item or an item's field (``assemble``).
Blank items are dropped, yet every item keeps its number in messages: a list's or an object's
problems are one ``ValueProblems``, each at its place (``(2, "prompt")``: item 2's prompt).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from batchgen.plan.text import counted, fold, is_blank, shown

TYPES = ("string", "number", "integer", "boolean", "file", "list", "object")
# Media kinds a ``type: file`` parameter may accept (checked by magic bytes, see plan.inputfiles).
MEDIA_KINDS = ("image", "video", "audio")
# Where a spec gives no size limit for a file, the provider answers beyond this (50 MB).
DEFAULT_MAX_BYTES = 50_000_000
# The highest item number a numbered column may give (``image_urls.1000``).
MAX_NUMBERED = 1000
_TRUE = {"true", "yes", "1", "on"}
_TIME = re.compile(r"\d{1,2}:\d{2}:\d{2}")  # what Excel makes of 16:9 typed in a cell
DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")  # 0,7: seven tenths, written in Europe
_FALSE = {"false", "no", "0", "off"}

# A place within a list or object value: item numbers (from 1) and field names.
At = tuple[int | str, ...]


class ValueProblems(ValueError):
    """Every problem of a list's or an object's items, each at its place within the value."""

    def __init__(self, found: list[tuple[At, str]]) -> None:
        super().__init__("; ".join(f"{place(at)}: {m}" if at else m for at, m in found))
        self.found = found


def place(at: At) -> str:
    """``(2, "prompt")`` -> ``item 2, prompt``: a place as a message names it."""
    return ", ".join(f"item {p}" if isinstance(p, int) else p for p in at)


def dotted(name: str, at: At) -> str:
    """``("multi_prompt", (2, "prompt"))`` -> ``multi_prompt.2.prompt``, as columns name it."""
    return ".".join([name, *(str(p) for p in at)])


def is_empty(value: Any) -> bool:
    """A value not given: blank text, None, or a list or object holding only gaps (blank
    numbered cells). An object written with an empty field (``{"prompt": ""}``) is given,
    and its field then found empty."""
    if isinstance(value, list):
        return all(is_empty(v) for v in value)
    if isinstance(value, dict):
        return all(
            v is None or (isinstance(v, list | dict) and is_empty(v)) for v in value.values()
        )
    return is_blank(value)


@dataclass(frozen=True, slots=True)
class Param:
    """One input field of an endpoint (or an item or field within a list or object)."""

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
    # ``type: list``: what each item is, and how many there may be.
    items: Param | None = None
    min_items: int | None = None
    max_items: int | None = None
    # ``type: list`` of objects: the most the items' field ``total_of`` may add up to
    # (Kling 3.0: shots of at most 15 s in all).
    total_of: str | None = None
    max_total: float | None = None
    # ``type: object``: its fields.
    fields: tuple[Param, ...] = ()

    def as_data(self) -> dict[str, Any]:
        """The parameter as a spec file writes it (only the keys that say something)."""
        data: dict[str, Any] = {"type": self.type}
        if self.required:
            data["required"] = True
        for key in (
            "default",
            "enum",
            "minimum",
            "maximum",
            "max_length",
            "max_utf8_bytes",
            "min_items",
            "max_items",
            "total_of",
            "max_total",
        ):
            value = getattr(self, key)
            if value is not None:
                data[key] = list(value) if key == "enum" else value
        if self.is_file:
            data["accept"] = list(self.accept)
            data["max_mb"] = (self.max_bytes or DEFAULT_MAX_BYTES) / 1_000_000
        if self.items is not None:
            data["items"] = self.items.as_data()
        if self.fields:
            data["fields"] = {f.name: f.as_data() for f in self.fields}
        if self.aliases:
            data["aliases"] = list(self.aliases)
        if self.description:
            data["description"] = self.description
        return data

    @property
    def is_file(self) -> bool:
        """True for a file input: a URL, a ``data:`` URI or a local path in a cell."""
        return self.type == "file"

    @property
    def holds_files(self) -> bool:
        """True for a file input, or a list or object with one somewhere inside."""
        return self.is_file or any(p.holds_files for p in self.children())

    def children(self) -> tuple[Param, ...]:
        """The item parameter of a list, the fields of an object; nothing for the others."""
        return (self.items,) if self.items is not None else self.fields

    def field(self, name: str) -> Param | None:
        """An object's field that ``name`` means, compared loosely (``Prompt`` is ``prompt``)."""
        folded = fold(name)
        return next((f for f in self.fields if f.name == name or fold(f.name) == folded), None)

    def coerce(self, value: Any) -> Any:
        """Return ``value`` as this field's type, or raise ValueError saying why it cannot be.

        A file's value is kept as text here; which file it names is ``plan.inputfiles``' job.
        """
        if self.type == "list":
            return self._list(value)
        if self.type == "object":
            return self._object(value)
        if isinstance(value, list | dict):
            kind = "a list" if isinstance(value, list) else "an object"
            raise ValueError(f"must be a single value, not {kind}")
        if self.is_file:
            return _as_string(value).strip()
        if self.type == "string":
            return self._string(value)
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

    def _string(self, value: Any) -> str:
        text = _as_string(value)
        if self.enum is not None and text not in self.enum:
            allowed = ", ".join(repr(v) for v in self.enum)
            hint = (
                "; Excel stored it as a time: format the column as text and type the value again"
                if _TIME.fullmatch(text.strip())
                else _close(text, self.enum)
            )
            raise ValueError(f"{shown(text)} is not one of the allowed values: {allowed}{hint}")
        if self.max_length is not None and len(text) > self.max_length:
            raise ValueError(f"is {len(text)} characters long, above the maximum {self.max_length}")
        size = len(text.encode("utf-8", "surrogatepass"))
        if self.max_utf8_bytes is not None and size > self.max_utf8_bytes:
            raise ValueError(
                f"is {size} bytes long in UTF-8, above the maximum {self.max_utf8_bytes} "
                "bytes (an accented letter takes 2, many other letters 3)"
            )
        return text

    def _list(self, value: Any) -> list[Any]:
        given = structured(value, list)
        if isinstance(given, dict):
            raise ValueError("is an object, not a list ([...])")
        if not isinstance(given, list):
            given = [given]  # one plain value: a list of one item
        assert self.items is not None
        found: list[tuple[At, str]] = []
        items = []
        for number, item in enumerate(given, start=1):
            if is_empty(item):
                continue
            try:
                items.append(self.items.coerce(item))
            except ValueProblems as exc:
                found.extend(((number, *at), message) for at, message in exc.found)
            except ValueError as exc:
                found.append(((number,), str(exc)))
        if found:
            raise ValueProblems(found)
        if self.min_items is not None and 0 < len(items) < self.min_items:
            raise ValueError(
                f"has {counted(len(items), 'item')}, fewer than the {self.min_items} it needs"
            )
        if self.max_items is not None and len(items) > self.max_items:
            raise ValueError(
                f"has {counted(len(items), 'item')}, more than the {self.max_items} it may hold"
            )
        if self.total_of is not None and self.max_total is not None:
            total = sum(_amount(i.get(self.total_of)) for i in items if isinstance(i, dict))
            if total > self.max_total:
                raise ValueError(
                    f"its items' {self.total_of} add up to {_show(total)}, above the "
                    f"{_show(self.max_total)} the endpoint allows in all"
                )
        return items

    def _object(self, value: Any) -> dict[str, Any]:
        given = structured(value, dict)
        if not isinstance(given, dict):
            raise ValueError(f'{shown(value)} is not an object ({{"field": value, ...}})')
        found: list[tuple[At, str]] = []
        values: dict[str, Any] = {}
        for key, item in given.items():
            known = self.field(str(key))
            if known is None:
                names = ", ".join(f.name for f in self.fields)
                found.append(((str(key),), f"is not a field of {self.name} (fields: {names})"))
            else:
                values[known.name] = item
        out: dict[str, Any] = {}
        for param in self.fields:
            item = values.get(param.name)
            if is_empty(item):
                if param.required:
                    found.append(((param.name,), "is required and is empty"))
                elif param.default is not None:
                    out[param.name] = param.default
                continue
            try:
                out[param.name] = param.coerce(item)
            except ValueProblems as exc:
                found.extend(((param.name, *at), message) for at, message in exc.found)
            except ValueError as exc:
                found.append(((param.name,), str(exc)))
        if found:
            raise ValueProblems(found)
        return out

    def at(self, path: list[str]) -> list[str] | None:
        """The canonical spelling of ``path`` within this parameter (``["1", "Prompt"]`` ->
        ``["1", "prompt"]``), or None when it names nothing in it."""
        if not path:
            return []
        head, rest = path[0].strip(), path[1:]
        if self.items is not None and head.isdigit() and 1 <= int(head) <= MAX_NUMBERED:
            tail = self.items.at(rest)
            return None if tail is None else [str(int(head)), *tail]
        known = self.field(head) if self.fields else None
        if known is None:
            return None
        tail = known.at(rest)
        return None if tail is None else [known.name, *tail]

    def leaf(self, path: list[str]) -> Param:
        """The parameter at a canonical ``path`` (see ``at``)."""
        param = self
        for part in path:
            found = param.items if part.isdigit() else param.field(part)
            assert found is not None, (self.name, path)
            param = found
        return param

    def file_leaves(self, value: Any, at: At = ()) -> Iterator[tuple[At, Param, str]]:
        """Every file inside a coerced ``value`` of this parameter: its place (item numbers
        count from 1 in the value as sent), its parameter, its text."""
        if self.is_file and isinstance(value, str):
            yield at, self, value
        elif self.items is not None and isinstance(value, list):
            for number, item in enumerate(value, start=1):
                yield from self.items.file_leaves(item, (*at, number))
        elif self.fields and isinstance(value, dict):
            for param in self.fields:
                if param.name in value and param.holds_files:
                    yield from param.file_leaves(value[param.name], (*at, param.name))


def assemble(parts: dict[str, Any], param: Param) -> tuple[Any, list[tuple[str, str]]]:
    """The value of ``param`` that numbered columns give: ``parts`` maps canonical dotted
    names (``multi_prompt.2.prompt``) to their cells; a missing number is a gap (a blank item).
    Returns the value and ``(name, problem)`` pairs (a name given whole and by its parts)."""
    tree: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for name, value in parts.items():
        path = name.split(".")[1:]
        node = tree
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append((name, f"is given both whole and by its parts ({name})"))
                break
            node = child
        else:
            if isinstance(node.get(path[-1]), dict):
                problems.append((name, "is given both whole and by its parts; keep one"))
            else:
                node[path[-1]] = value
    return _built(tree, param), problems


def _built(node: Any, param: Param) -> Any:
    if not isinstance(node, dict):
        return node
    if param.items is not None:
        numbers = {int(k): v for k, v in node.items()}
        return [
            _built(numbers[n], param.items) if n in numbers else None
            for n in range(1, max(numbers) + 1)
        ]
    return {k: _built(v, param.leaf([k])) for k, v in node.items()}


def structured(value: Any, kind: type) -> Any:
    """``value`` as a list or dict (``kind``): as it is, or read from JSON text (a CSV cell);
    anything else as it is. ValueError when JSON text is not well-formed."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text[:1] not in ("[", "{"):
        return value
    try:
        data = json.loads(text, object_pairs_hook=_unique)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON: {exc.msg} (at character {exc.pos + 1})") from None
    except RecursionError:
        raise ValueError("is not valid JSON: nested too deep") from None
    expected = "a list" if kind is list else "an object"
    if kind is dict and not isinstance(data, dict):
        raise ValueError(f"is JSON but not {expected} ({{...}})")
    return data


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"is not valid JSON here: field {key!r} appears twice")
        data[key] = value
    return data


def _close(text: str, allowed: tuple[Any, ...]) -> str:
    """``; did you mean '8s'?`` when an allowed value is ``text`` with or without a unit's
    ``s``, or in another case (``8`` for Veo's ``8s``, ``720P`` for ``720p``); else ``""``."""
    bare = text.strip()
    for value in allowed:
        if (
            isinstance(value, str)
            and value != bare
            and (value.lower() == bare.lower() or value in (bare + "s", bare.removesuffix("s")))
        ):
            return f"; did you mean {value!r}?"
    return ""


def _amount(value: Any) -> float:
    """A field's number for a total (``"5"``, ``5``, ``"5s"``: 5); 0 when it says none."""
    text = str(value).strip().lower().removesuffix("s") if value is not None else ""
    try:
        number = float(text)
    except ValueError:
        return 0.0
    return number if math.isfinite(number) else 0.0


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
        if "_" in text:  # Python reads 1_0 as 10; nobody writes a cell so
            raise ValueError(f"{shown(value)} is not {kind}")
        try:
            number: float | int = (
                int(text) if integer and text.lstrip("+-").isdigit() else float(text)
            )
        except ValueError:
            comma = (
                " (a decimal comma? write it with a point)" if DECIMAL_COMMA.fullmatch(text) else ""
            )
            raise ValueError(f"{shown(value)} is not {kind}{comma}") from None
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
