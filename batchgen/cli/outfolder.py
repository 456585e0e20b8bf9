"""What an output folder already holds, for ``plan`` and ``run``; read-only, never written.

``folder_counts``: of a plan's jobs, how many the folder has done, holds unfinished, or lacks
(new), and how many of its jobs the plan no longer has (left over). ``check_same_world``: a
folder holds ``--mock`` runs or real ones, never both. ``check_default_folder``: the default
folder ``out/<input name>`` is never shared by unrelated batches. It refuses a plan
whose folder was not named (no ``--out``, no spec ``output``) when that folder holds the run
of another input file (another path, and other content). The same path with changed content is
an edited input, which a folder resumes by design.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from batchgen.api.providers import IN_PROCESS
from batchgen.errors import UsageError
from batchgen.folder.report import read_run_json
from batchgen.folder.status import on_emulator
from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import LEDGER_NAME, Ledger
from batchgen.plan.build import Plan


def folder_counts(plan: Plan) -> dict[str, int] | None:
    """``done``, ``unfinished``, ``new`` and ``left_over`` for the plan's folder, or None when
    the folder has no ledger yet."""
    path = plan.output_dir / LEDGER_NAME
    if not path.is_file():
        return None
    with Ledger(path, readonly=True) as ledger:
        statuses = {job.key: job.status for job in ledger.iter_jobs()}
    keys = {job.key for job in plan.jobs}
    done = sum(1 for key in keys if statuses.get(key) is JobStatus.DONE)
    held = sum(1 for key in keys if key in statuses)
    return {
        "done": done,
        "unfinished": held - done,
        "new": len(keys) - held,
        "left_over": len(statuses.keys() - keys),
    }


def _same_file(stored: str, current: str) -> bool:
    if os.path.abspath(stored) == os.path.abspath(current):
        return True
    try:
        return os.path.samefile(stored, current)
    except OSError:
        return False


def check_default_folder(plan: Plan, add: bool) -> None:
    """Raise UsageError when the plan's unnamed default folder holds another input's run,
    or a run of the same input on none of this plan's endpoints (``--endpoint`` forgotten:
    its jobs would join that batch on another model)."""
    path = plan.output_dir / LEDGER_NAME
    if add or not plan.default_output or not path.is_file():
        return
    with Ledger(path, readonly=True) as ledger:
        meta: Any = ledger.meta("plan")
    if not isinstance(meta, dict) or not isinstance(meta.get("input_path"), str):
        return
    folder = shlex.quote(str(plan.output_dir))
    if _same_file(meta["input_path"], plan.input_path) or (
        meta.get("input_sha256") == plan.input_sha256  # the same file moved or copied
    ):
        ran = meta.get("endpoints") or [meta.get("endpoint")]
        ours = set(plan.endpoints) or {plan.endpoint.id}
        # Rows that name their endpoints (a column, a matrix axis) chose them on purpose.
        chosen = plan.rows_name_endpoints
        if not chosen and isinstance(ran, list) and ran and None not in ran and not ours & set(ran):
            raise UsageError(
                f"{plan.output_dir} holds this input's run on {', '.join(map(str, ran))}, and "
                f"this plan runs on {', '.join(sorted(ours))}; nothing was sent. Name the "
                f"endpoint of that run (--endpoint {ran[0]}), or give this one its own folder "
                f"with --out DIR (or add it there with --add)"
            )
        return
    raise UsageError(
        f"{plan.output_dir} holds the run of another input, {meta['input_path']}, not "
        f"{plan.input_path}; nothing was sent. Give this batch its own folder with --out DIR, "
        f"or add it to that one with --out {folder} (or --add)"
    )


def check_same_world(plan: Plan, mock: bool) -> None:
    """Raise UsageError when the folder holds an emulator run (``--mock``, or the mock
    provider) and this one is real, or the other way round: the emulator's videos are no
    model's, and never pass for one. A folder whose runs sent nothing yet holds neither; one
    whose ledger is lost is judged by its run.json."""
    was = _world(plan.output_dir)
    if was is None or was == (mock or plan.settings.provider == "mock"):
        return
    folder = shlex.quote(str(plan.output_dir))
    if was:
        raise UsageError(
            f"{plan.output_dir} holds an emulator run: its videos are the emulator's, not a "
            f"model's; nothing was sent. Run the real batch in a folder of its own "
            f"(--out {shlex.quote(str(plan.output_dir) + '-real')}), or delete {folder} first"
        )
    raise UsageError(
        f"{plan.output_dir} holds a real run; an emulator run would add the emulator's videos "
        f"to it; nothing was sent. Try it in a folder of its own (--out "
        f"{shlex.quote(str(plan.output_dir) + '-mock')})"
    )


def _world(folder: Path) -> bool | None:
    """True when ``folder``'s runs went to the emulator, False to a provider, None when it
    holds no job ever sent (or no run at all)."""
    path = folder / LEDGER_NAME
    if path.is_file() and path.stat().st_size > 0:
        with Ledger(path, readonly=True) as ledger:
            stored: Any = ledger.meta("run")
            counts = ledger.counts()
        sent = sum(n for status, n in counts.items() if status is not JobStatus.PENDING)
        if not sent or not isinstance(stored, dict) or "mock" not in stored:
            return None
        return on_emulator(stored)
    # The ledger is lost (it is rebuilt from the manifest): run.json still says.
    connection = read_run_json(folder).get("connection")
    if not isinstance(connection, dict):
        return None
    return connection.get("provider") == "mock" or connection.get("label") == IN_PROCESS
