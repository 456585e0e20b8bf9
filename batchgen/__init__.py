"""batchgen: a spreadsheet of prompts in, a folder of verified generated videos out.

The package's folders are the path a job takes: ``plan`` (files to a costed plan, no network)
→ ``api`` (the provider's queue) → ``run`` (one run of a plan: workers, downloads) with
``ledger`` (the durable state) → ``folder`` (status, cancel, report, export afterwards);
``mock`` is the emulator beside it and ``cli`` the thin command line over it all.

A library user needs only the names below::

    plan = build_plan("jobs/demo.yaml")
    result = await Runner(plan, connect(plan.settings)).run()
    print(read_status(plan.output_dir).counts)
"""

from batchgen.api.providers import Connection, connect
from batchgen.errors import BatchgenError
from batchgen.folder.status import Status, read_status
from batchgen.ledger.states import JobStatus
from batchgen.ledger.store import Ledger
from batchgen.mock import MockConfig, MockServer
from batchgen.plan.build import Plan, build_plan
from batchgen.run.outcome import RunResult
from batchgen.run.runner import Runner
from batchgen.run.timing import Timing
from batchgen.version import __version__

__all__ = [
    "BatchgenError",
    "Connection",
    "JobStatus",
    "Ledger",
    "MockConfig",
    "MockServer",
    "Plan",
    "RunResult",
    "Runner",
    "Status",
    "Timing",
    "__version__",
    "build_plan",
    "connect",
    "read_status",
]
