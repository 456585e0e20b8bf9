"""File names for videos: from a template, always safe and unique inside the output folder.

Template fields: ``row``, ``repeat``, ``key`` (16 hex), ``key8``, ``slug`` (of the prompt),
``stem`` (the name without extension of the job's first file input: ``cat`` for ``photos/cat.png``
or ``https://host/cat.png``; the prompt's slug when the job has none, or only a ``data:`` URI),
``endpoint`` (the endpoint id as a slug), ``model`` (a short one: ``kling-video-v2-5-turbo-pro``),
every parameter sent and every input column, matched as columns are (``{ID}`` and ``{id}`` are the
column ``id``; ``{shot_no}`` the column ``Shot No``). Whatever the row data, the result has
no path separators, no ``..``, no control characters, no invisible format characters (bidi
overrides such as U+202E that make ``evil\u202egpm.exe`` look like ``evilexe.mpg``, zero-width
spaces, BOMs), only valid Unicode, a bounded length and ends in ``.mp4``.
"""

from __future__ import annotations

import re
import string
import unicodedata
from pathlib import PurePath, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from batchgen.errors import InputError
from batchgen.plan.text import fold

DEFAULT_TEMPLATE = "{row:05d}-{slug}-{key8}"
# A folder of images names each video after its image (collisions get the key added).
FOLDER_TEMPLATE = "{stem}"
MAX_STEM = 120
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
# Unicode categories a file name must not hold: controls (Cc, C1 included) and line or paragraph
# separators become "_"; format characters (Cf: bidi controls, zero-width, BOM) and lone
# surrogates (Cs: not characters at all) are dropped, since they show nothing.
_REPLACED = frozenset({"Cc", "Zl", "Zp"})
_DROPPED = frozenset({"Cf", "Cs"})
_RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(10)),
    *(f"lpt{i}" for i in range(10)),
}


def slug(text: str, length: int = 40) -> str:
    """A short lower-case ASCII slug of ``text`` (``"untitled"`` when nothing is left)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return words[:length].rstrip("-") or "untitled"


def model_slug(endpoint_id: str) -> str:
    """A short name for an endpoint: its id without the owner and the generic words
    (``fal-ai/veo3.1/fast/image-to-video`` -> ``veo3-1-fast``)."""
    parts = endpoint_id.strip("/").split("/")[1:] or [endpoint_id]
    generic = {"text-to-video", "image-to-video", "video", "standard"}
    kept = [p for p in parts if p not in generic] or parts
    return slug("-".join(kept), 60)


def file_stem(location: str) -> str:
    """The name without its extension of the file at ``location``, a local path or an
    ``http(s)://`` URL (its path's last part, %-escapes decoded); ``""`` for a ``data:`` URI or
    a URL that names no file. Not yet safe: ``safe_name`` makes the whole name so."""
    if location[:5].lower() == "data:":
        return ""
    if "://" in location:
        try:
            return PurePosixPath(unquote(urlsplit(location).path)).stem
        except ValueError:  # not a URL after all (planning refuses those)
            return ""
    return PurePath(location).stem


def check_template(template: str, source: str, line: int | None = None) -> None:
    """Raise InputError when ``template`` is not a usable format string."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise InputError.one(
            source, f"filename template {template!r}: {exc}", line, "filename", "field"
        ) from None
    for name in fields:
        if not name or not name.isidentifier():
            raise InputError.one(
                source,
                f"filename template {template!r}: field {{{name}}} must be a plain name",
                line,
                "filename",
                "field",
            )


def safe_name(stem: str) -> str:
    """``stem`` made safe as one file name (no extension added)."""
    if not (stem.isascii() and stem.isprintable()):
        stem = "".join(_visible(ch) for ch in stem)
    stem = unicodedata.normalize("NFC", stem)
    stem = _UNSAFE.sub("_", stem)
    stem = re.sub(r"\.{2,}", ".", stem).strip(" .")
    if stem.lower().removesuffix(".mp4") in _RESERVED:
        stem = f"_{stem}"
    encoded = stem.encode("utf-8")[:MAX_STEM]
    return encoded.decode("utf-8", "ignore").strip(" .") or "video"


def _visible(ch: str) -> str:
    if ch.isascii() and ch.isprintable():
        return ch
    category = unicodedata.category(ch)
    return "_" if category in _REPLACED else "" if category in _DROPPED else ch


class _Fields(dict[str, Any]):
    """Template fields by name; a name not spelt exactly is matched as columns are."""

    def __missing__(self, name: str) -> Any:
        folded = fold(name)
        found = [k for k in self if fold(k) == folded]
        if not found:
            raise KeyError(name)
        return self[found[-1]]  # the last given wins, as in ``dict.update``


class Namer:
    """Gives each job a unique, safe ``.mp4`` name from one template."""

    __slots__ = ("_taken", "template")

    def __init__(self, template: str = DEFAULT_TEMPLATE) -> None:
        self.template = template.removesuffix(".mp4")
        self._taken: set[str] = set()

    def name(self, fields: dict[str, Any]) -> str:
        """The file name for one job. Raises KeyError for a field the template names but
        ``fields`` lacks, ValueError for a format spec that does not fit the value."""
        stem = safe_name(self.template.format_map(_Fields(fields)))
        candidate = f"{stem}.mp4"
        if candidate.lower() in self._taken:
            candidate = f"{stem[: MAX_STEM - 17]}-{fields['key']}.mp4"
        counter = 2
        while candidate.lower() in self._taken:  # only if the template drops the key entirely
            candidate = f"{stem[: MAX_STEM - 24]}-{fields['key']}-{counter}.mp4"
            counter += 1
        self._taken.add(candidate.lower())
        return candidate
