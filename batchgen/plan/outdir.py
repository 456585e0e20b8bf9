"""Whether an output folder can be used, checked at plan time, before anything is sent.

A run writes its ledger, videos and manifest into the folder; finding out after the first
submit that it cannot be written would leave paid jobs with nowhere to go. The folder is fine
when it is a writable folder, or when it does not exist yet and its nearest existing parent is
a writable folder (the run creates it).

"Writable" is ``os.access`` (W_OK and X_OK): the permission bits for an ordinary user, a
read-only mount for everyone (root included, who passes every permission bit).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from batchgen.plan.files import kind_of


def output_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be the output folder of a run, or None when it can."""
    path = Path(os.path.abspath(folder))
    for current in (path, *path.parents):
        try:
            mode = current.stat().st_mode
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            continue  # a parent further up is a file: found as the walk goes up
        except (OSError, ValueError) as exc:
            return f"cannot be used: {getattr(exc, 'strerror', None) or exc}"
        if not stat.S_ISDIR(mode):
            kind = kind_of(mode) or "a file"
            if current == path:
                return f"is {kind}, not a folder"
            return f"cannot be created: {current} is {kind}, not a folder"
        if not os.access(current, os.W_OK | os.X_OK):
            if current == path:
                return "is not writable (read-only or permission denied)"
            return f"cannot be created: {current} is not writable (read-only or permission denied)"
        return None
    return "cannot be created: no existing parent folder"
