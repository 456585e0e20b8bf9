"""Where a problem of a row is reported: the cell (file, line, column) that holds it.

A problem inside a list or object (``multi_prompt.2.prompt``) is at its numbered column when
the row has one, else at the list's column, naming the place (``item 2, prompt: ...``); an
image of a folder has no cells, so its problem names the image and where a prompt comes from.
"""

from __future__ import annotations

from pathlib import Path

from batchgen.errors import Problem
from batchgen.plan.params import place
from batchgen.plan.table import Record


def at_record(
    path: str,
    record: Record,
    column_param: dict[str, str],
    param: str,
    message: str,
    *,
    on: str = "",
) -> Problem:
    """A problem with ``param`` at its cell (``on``: which endpoint, in a comparison). A
    problem within a list or object (``multi_prompt.2.prompt``) is at its numbered column when
    the row has one, else at the list's column, naming the place (``item 2, prompt: ...``)."""
    head, *at = param.split(".")
    for cut in range(len(at), -1, -1):
        name = ".".join([head, *at[:cut]])
        column = next((c for c, p in column_param.items() if p == name), None)
        if column is not None and record.values.get(column) is not None:
            break
    else:
        column, cut = head, 0
    rest = tuple(int(p) if p.isdigit() else p for p in at[cut:])
    told = f"{place(rest)}: {message}" if rest else message
    if record.source is not None and param == "prompt" and "is required" in message:
        # An image of a folder has no cells: say where its prompt can come from.
        image = Path(record.source)
        told = (
            f"no prompt for this image: write one in {image.stem}.txt beside it, or give "
            "every image one with --set prompt=..."
        )
        return Problem(record.source, None, None, told + on)
    return Problem(*record.place(path, column), column, told + on)


def written_place(record: Record, column_param: dict[str, str], at: str) -> str:
    """A place in the payload (``image_urls.2``: the second item sent) as the row numbers it
    (``image_urls.3`` when ``image_urls.2`` was blank): its Nth numbered column holding a
    value. A list from a JSON cell or a default keeps its place."""
    head, *rest = at.split(".")
    if not rest or not rest[0].isdigit():
        return at
    numbers = sorted(
        {
            int(p.split(".")[1])
            for c, p in column_param.items()
            if p.startswith(head + ".")
            and p.split(".")[1].isdigit()
            and record.values.get(c) is not None
        }
    )
    position = int(rest[0])
    if not numbers or position > len(numbers):
        return at
    return ".".join([head, str(numbers[position - 1]), *rest[1:]])
