"""A lost ledger brought back: rebuilt from the manifest, and what the manifest missed looked up.

``still_lost`` says whether this run must rebuild: the ledger was missing (``records`` from
``batchgen.ledger.rebuild.lost_ledger``), or an earlier run began rebuilding it and was killed
before it finished (the ledger's ``rebuilt_from_manifest`` meta, set before anything is
rebuilt: the manifest is not written again until the rebuild is over, so it still holds what
the lost ledger held). ``rebuild`` restores the manifest's state. ``adopt_lost`` then asks the
provider's request log for the submits made after the manifest's last write, which the rebuilt
ledger does not know (jobs it holds as pending, uncertain, or in flight by an earlier attempt:
``batchgen.run.reconcile.adopt_after_loss``): found, they are followed, not paid for again;
then the rebuild is over.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from batchgen.api.providers import Connection
from batchgen.api.sessions import api_session
from batchgen.ledger.base import LedgerStore
from batchgen.ledger.rebuild import MANIFEST, manifest_records, restored, seconds_of
from batchgen.ledger.store import LEDGER_NAME
from batchgen.plan.build import Plan
from batchgen.plan.settings import RunSettings
from batchgen.run.progress import Reporter
from batchgen.run.reconcile import SKEW, adopt_after_loss, request_logs
from batchgen.run.timing import Timing

log = logging.getLogger("batchgen.run")
# The ledger's meta while it is rebuilt: the manifest's mtime, since when jobs may have been
# submitted that the manifest does not know.
LOST = "rebuilt_from_manifest"
# Seconds the window may open before the folder's first run (the provider's clock and this
# one's differ a little): narrower than the log's SKEW, so another folder's jobs of a minute
# before are not taken for this one's.
FIRST_RUN_SKEW = 5.0


def first_started(out: Path) -> str | None:
    """When the folder's first run started, as its ``run.json`` says (None: no run yet)."""
    try:
        info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    found = info.get("first_started_at") or info.get("started_at")
    return found if isinstance(found, str) else None


def still_lost(
    ledger: LedgerStore, out: Path, records: list[dict[str, Any]] | None
) -> list[dict[str, Any]] | None:
    """The manifest records to rebuild ``ledger`` from (see the module docstring), or None."""
    lost = ledger.meta(LOST)
    if records is not None and not lost:
        ledger.set_meta(LOST, {"since": (out / MANIFEST).stat().st_mtime})
    elif records is None and lost:
        records = manifest_records(out, LEDGER_NAME)
    return records


def rebuild(
    ledger: LedgerStore, plan: Plan, records: list[dict[str, Any]], reporter: Reporter
) -> list[str]:
    """Give a lost ledger back the state ``manifest.jsonl`` recorded; the orphaned keys."""
    states = [state for state in map(restored, records) if state is not None]
    orphans = {}
    for record in records:
        payload = {name: record.get(name, record.get(f"param.{name}")) for name in plan.params}
        row, endpoint = record.get("row"), record.get("endpoint")
        orphans[str(record.get("key"))] = (
            row if isinstance(row, int) else 0,
            {k: v for k, v in payload.items() if v is not None},
            endpoint if isinstance(endpoint, str) and endpoint else None,
        )
    count = ledger.restore(states, plan.endpoint.id, orphans)
    reporter.note(
        f"{LEDGER_NAME} was missing: rebuilt {count} job(s) from {MANIFEST}; jobs submitted "
        "after its last write are looked for in the provider's request log (where it has "
        "one), else may be submitted again"
    )
    log.warning("ledger rebuilt from %s: %d jobs", MANIFEST, count)
    return [row.key for row in ledger.jobs() if not row.in_input]


async def adopt_lost(
    ledger: LedgerStore,
    first_run: str | None,
    connection: Connection,
    settings: RunSettings,
    timing: Timing,
    reporter: Reporter,
) -> None:
    """After ``rebuild``: adopt from the request log what the manifest missed, not before
    ``first_run`` (the folder's first run, ``first_started``); then the rebuild is over
    (the meta cleared)."""
    lost = ledger.meta(LOST)
    since = lost.get("since") if isinstance(lost, dict) else None
    if isinstance(since, int | float):
        # Not before the folder's first run: another folder's earlier jobs are not its own.
        began = seconds_of(first_run)
        if began is not None:
            since = max(float(since), began - FIRST_RUN_SKEW + SKEW)
        async with api_session(connection.network) as session:
            await adopt_after_loss(
                ledger,
                request_logs(connection, settings, session, timing),
                origin=connection.origin,
                since=float(since),
                timing=timing,
                reporter=reporter,
            )
    ledger.set_meta(LOST, None)
