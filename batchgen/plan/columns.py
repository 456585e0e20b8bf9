"""Which column of an input feeds which parameter of the endpoint; never silently.

A column is a parameter when its name matches one loosely: case, spaces, hyphens and
underscores do not count (``Aspect Ratio``, ``aspect-ratio`` and ``ASPECT_RATIO`` are all
``aspect_ratio``). Any other column is the input's own (``id``, ``notes``): kept for the
manifest, never sent. A column that still looks like a parameter (``cfg``, ``neg prompt``) is
an error naming the parameter it probably meant, since running with the default instead of the
value the user wrote spends money on the wrong thing; ``extra_columns="ok"`` keeps such columns
as plain notes.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from batchgen.errors import Problem
from batchgen.plan.endpoint import EndpointSpec
from batchgen.plan.table import Table
from batchgen.plan.text import fold

# Column names people write for a parameter, beyond what fuzzy matching finds (folded).
_ALIASES = {
    "cfg": "cfg_scale",
    "guidance": "cfg_scale",
    "aspect": "aspect_ratio",
    "ratio": "aspect_ratio",
    "length": "duration",
    "seconds": "duration",
    "negative": "negative_prompt",
    "neg": "negative_prompt",
    "negprompt": "negative_prompt",
}


@dataclass(slots=True)
class Columns:
    """The input's columns sorted out: parameter columns and the input's own."""

    params: dict[str, str] = field(default_factory=dict)  # column -> parameter
    extra: list[str] = field(default_factory=list)


def suggest(column: str, params: list[str]) -> str | None:
    """The parameter a column name probably meant, or None."""
    word = fold(column)
    folded = {fold(p): p for p in params}
    if word in folded:
        return folded[word]
    if word in _ALIASES and _ALIASES[word] in params:
        return _ALIASES[word]
    if len(word) >= 3:
        prefixed = [p for f, p in folded.items() if f.startswith(word) or word.startswith(f)]
        if len(prefixed) == 1:
            return prefixed[0]
    close = difflib.get_close_matches(word, list(folded), n=1, cutoff=0.75)
    return folded[close[0]] if close else None


def sort_columns(
    table: Table,
    ep: EndpointSpec,
    extra_ok: bool,
    problems: list[Problem],
    skip: str | None = None,
) -> Columns:
    """Sort ``table``'s columns (but ``skip``, the endpoint column); problems (two columns for
    one parameter, a column that looks like a misspelt parameter unless ``extra_ok``) are
    appended to ``problems``."""
    out = Columns()
    params = list(ep.params)
    for column in table.columns:
        if column == skip:
            continue
        name = column.strip().lower() if ep.passthrough else ep.lookup(column)
        if name is None:
            out.extra.append(column)
            guess = None if extra_ok else suggest(column, params)
            if guess:
                problems.append(
                    Problem(
                        table.path,
                        _first_line(table, column),
                        column,
                        f"is not a parameter of {ep.id}; did you mean {guess!r}? Rename the "
                        "column, or keep it as a note with --extra-columns ok",
                    )
                )
            continue
        first = next((c for c, p in out.params.items() if p == name), None)
        if first is not None:
            problems.append(
                Problem(
                    table.path,
                    _first_line(table, column),
                    column,
                    f"a second column for parameter {name!r} (the first is {first!r})",
                )
            )
        out.params[column] = name
    return out


def _first_line(table: Table, column: str) -> int:
    """Where a column is first written: the header row of a sheet; in YAML and JSONL, where
    a record first names it (each record names its own keys)."""
    return next((r.lines[column] for r in table.records if column in r.lines), table.header_line)


def elsewhere_notes(
    extra: list[str], ep: EndpointSpec, known: dict[str, EndpointSpec]
) -> list[str]:
    """A note for each of the input's own columns that another endpoint takes as a parameter
    (``image_urls`` on a text-to-video endpoint): kept as a note, never sent, so the plan
    says so out loud; the endpoint was probably not named."""
    notes = []
    for column in extra:
        takers = [
            ident
            for ident, other in known.items()
            if ident != ep.id and other.status != "retired" and other.lookup(column) is not None
        ]
        if takers:
            more = f" and {len(takers) - 1} more" if len(takers) > 1 else ""
            notes.append(
                f"column {column!r} is not a parameter of {ep.id}: it is kept as a note, never "
                f"sent ({takers[0]}{more} take it: pass --endpoint ID to run on one of them)"
            )
    return notes
