"""A folder or a glob of images as input: one job per image, its prompt in a text file beside it.

``batchgen plan photos/`` (or ``'photos/*.png'``, ``'shots/**/*.jpg'``) reads each image, in
order of name, as one record of two columns: ``image_url``, the image's path (an endpoint spec's
aliases map it to its own parameter, e.g. ``start_image_url``), and ``prompt``, the text of
``NAME.txt`` beside ``NAME.png`` when there is one (UTF-8, stripped). An image is a file whose
first bytes are one (PNG, JPEG, WebP, GIF), whatever its name; other files are left out, with
one note saying how many. A folder's hidden files and subfolders are not looked into.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from batchgen.errors import InputError, Problem
from batchgen.plan.files import not_a_file, open_regular, read_text
from batchgen.plan.media import FORMATS, HEAD_BYTES, sniff
from batchgen.plan.table import Record, Table, clean
from batchgen.plan.text import counted

IMAGE_COLUMN = "image_url"
_MAGIC = re.compile(r"[*?[]")
# Names of left-out files a note shows before "...".
_NAMED = 3


def _is_glob(path: Path) -> bool:
    return _MAGIC.search(str(path)) is not None and not path.exists()


def is_image_set(path: Path) -> bool:
    """True when ``path`` is a folder or a glob pattern (and no file of that very name)."""
    return path.is_dir() or _is_glob(path)


def _root(path: Path) -> Path:
    """The folder a glob pattern starts in (``photos`` for ``photos/**/*.png``)."""
    parts = path.parts
    plain = next(i for i, part in enumerate(parts) if _MAGIC.search(part))
    return Path(*parts[:plain])


def input_name(path: Path) -> str:
    """The name of an input, for its default output folder ``out/NAME``: a file's stem, a
    folder's name, a glob's first folder's name."""
    if _is_glob(path):
        path = _root(path)
    elif not path.is_dir():
        return path.stem
    return Path(os.path.abspath(path)).name or "input"


def read_images(path: Path) -> Table:
    """The images of folder or glob ``path`` as a Table; InputError with every problem found
    (an unreadable image or prompt file, no image at all)."""
    name = str(path)
    root = _root(path) if _is_glob(path) else path
    candidates, subfolders = _candidates(path, name)
    problems: list[Problem] = []
    images: list[Path] = []
    others: list[Path] = []
    for candidate in candidates:
        is_image = _is_image(candidate, problems)
        if is_image is not None:
            (images if is_image else others).append(candidate)
    prompts = {image: image.with_suffix(".txt") for image in images}
    prompts = {image: text for image, text in prompts.items() if text.is_file()}
    others = [other for other in others if other not in prompts.values()]
    records: list[Record] = []
    digest = hashlib.sha256()
    for position, image in enumerate(images, start=1):
        prompt = _prompt(prompts.get(image), problems)
        values = {IMAGE_COLUMN: os.path.abspath(image), "prompt": prompt}
        records.append(Record(position, values, source=str(image)))
        digest.update(os.fsencode(f"{os.path.relpath(image, root)}\0{image.stat().st_size}\0"))
        digest.update(f"{prompt or ''}\n".encode())
    if problems:
        raise InputError(problems)
    if not records:
        raise InputError.one(name, _nothing(path, others, subfolders))
    table = Table(name, [IMAGE_COLUMN, "prompt"], records, images=True, digest=digest.hexdigest())
    note = _left_out(others, subfolders, name)
    if note:
        table.notes.append(f"{name}: {note}")
    return table


def _candidates(path: Path, name: str) -> tuple[list[Path], int]:
    """The files to look at, in order of name, and how many subfolders were not looked into."""
    if not path.is_dir():
        return sorted(_glob(path), key=str), 0
    try:
        entries = sorted(
            (e for e in os.scandir(path) if not e.name.startswith(".")), key=lambda e: e.name
        )
    except OSError as exc:
        raise InputError.one(name, f"cannot read the folder: {exc.strerror or exc}") from None
    folders = sum(1 for e in entries if e.is_dir())
    return [Path(e.path) for e in entries if not e.is_dir()], folders


def _glob(pattern: Path) -> list[Path]:
    """The files ``pattern`` matches. pathlib's ``**`` never walks into a link to a folder (the
    glob module does, so a link back up made it walk 40 levels deep, or for ever with two);
    names starting with a dot match only a part that starts with one, as in a shell."""
    root = _root(pattern)
    rule = pattern.parts[len(root.parts) :]
    matched = []
    for found in root.glob(str(Path(*rule))):
        parts = found.relative_to(root).parts
        hidden = any(p.startswith(".") for p in parts)
        if (hidden and not any(r.startswith(".") for r in rule)) or found.is_dir():
            continue
        matched.append(found)
    return matched


def _is_image(path: Path, problems: list[Problem]) -> bool | None:
    """Whether ``path`` holds an image by its first bytes; None (and a problem) when it cannot
    be read. A FIFO, a device or a broken link is no image and is never opened."""
    if not_a_file(path) is not None:
        return False
    try:
        with open_regular(path, str(path)) as handle:
            head = handle.read(HEAD_BYTES)
    except InputError as exc:
        problems.extend(exc.problems)
        return None
    except OSError as exc:
        problems.append(Problem(str(path), None, None, f"cannot read: {exc.strerror or exc}"))
        return None
    media = sniff(head)
    return media is not None and media.kind == "image"


def _prompt(path: Path | None, problems: list[Problem]) -> str | None:
    """The prompt written in ``path`` (stripped; None when blank or no such file)."""
    if path is None:
        return None
    try:
        text = clean(read_text(path, str(path)))
    except InputError as exc:
        problems.extend(exc.problems)
        return None
    return text if isinstance(text, str) else None


def _listed(paths: list[Path]) -> str:
    names = ", ".join(p.name for p in paths[:_NAMED])
    return names + (", ..." if len(paths) > _NAMED else "")


def _left_out(others: list[Path], subfolders: int, name: str) -> str:
    """What a folder input left out, in words ("" when nothing)."""
    parts = []
    if others:
        parts.append(
            f"{counted(len(others), 'file')} left out, not {FORMATS['image']}: {_listed(others)}"
        )
    if subfolders:
        where = os.path.join(name, "**", "*")
        parts.append(
            f"{counted(subfolders, 'subfolder')} not looked into (give '{where}' to include them)"
        )
    return "; ".join(parts)


def _nothing(path: Path, others: list[Path], subfolders: int) -> str:
    """Why a folder or glob gave no image."""
    if not others and not subfolders:
        return "matches no file" if _is_glob(path) else "the folder is empty: no image to run"
    return f"no image in it: {_left_out(others, subfolders, str(path))}"
