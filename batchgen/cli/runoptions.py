"""The options of ``batchgen run`` beyond the plan's: connection, limits, retries, store,
ledger."""

from __future__ import annotations

from pathlib import Path

import click

from batchgen.cli.main import F
from batchgen.plan.durations import spoken
from batchgen.plan.settings import RunSettings

_RUN_SETTINGS = (
    "provider",
    "base_url",
    "auth_scheme",
    "api_key_env",
    "follow",
    "concurrency",
    "rate",
    "max_cost",
    "max_attempts",
    "job_timeout",
    "poll",
    "expect_latency",
    "max_poll_interval",
    "on_uncertain_submit",
    "reconcile",
    "download_concurrency",
    "download_patience",
    "max_file_bytes",
    "upload",
    "storage_base_url",
    "store",
    "ca_bundle",
)


def _default(name: str) -> str:
    """A run setting's default, as --help shows it (the job spec's run: overrides it)."""
    return str(getattr(RunSettings(), name))


# The --mock demo: Kling's ~110 s jobs take ~2 s, four at a time.
MOCK_TIME_SCALE = 0.02
MOCK_IN_PROGRESS = 4


def mock_rate(rate: float, scale: float) -> float:
    """The default --rate of a --mock run whose emulator runs at time ``scale``: ``rate`` at
    the default scale, and as many times more as the emulator's clock is faster (200/s at
    0.001), so the rate, not the emulator, never sets the pace of a compressed run."""
    return max(rate, rate * MOCK_TIME_SCALE / scale)


def run_options(func: F) -> F:
    """The options of ``batchgen run`` beyond the plan's (unset ones leave the spec's)."""
    for option in reversed(
        [
            click.option(
                "--out",
                "output",
                type=click.Path(path_type=Path),
                help="Output folder (alone: resume the run in that folder).",
            ),
            click.option(
                "--provider",
                help="Provider preset: fal, quickrouter or mock.",
                show_default=_default("provider"),
            ),
            click.option(
                "--base-url",
                help="Queue API base URL (overrides the preset).",
                show_default="the provider's",
            ),
            click.option(
                "--auth-scheme",
                type=click.Choice(["key", "bearer"]),
                help="Authorization scheme: 'Key <k>' or 'Bearer <k>'.",
                show_default="the provider's",
            ),
            click.option(
                "--api-key-env",
                metavar="NAME[,NAME...]",
                help=(
                    "Environment variable with the key; several (A,B) make a pool: submits "
                    "spread over the keys, each job followed with its own."
                ),
                show_default="the provider's",
            ),
            click.option(
                "--follow",
                type=click.Choice(["status", "result", "auto"]),
                help=(
                    "How to follow jobs: status looks, then one result read; result polling "
                    "(a proxy with only a result route); auto: status until it answers 404/405. "
                    "Default: the provider's."
                ),
                show_default="the provider's",
            ),
            click.option(
                "--upload",
                type=click.Choice(["fal", "data"]),
                help=(
                    "Where local input files go: fal storage (key in FAL_KEY), or inline as "
                    "data: URIs of a few MB."
                ),
                show_default="the provider's: fal and mock upload, quickrouter inlines",
            ),
            click.option(
                "--storage-base-url",
                metavar="URL",
                help="fal storage host for uploads.",
                show_default="https://rest.fal.ai; the emulator's own for mock",
            ),
            click.option(
                "--store",
                metavar="URL",
                help=(
                    "Stream the videos to object storage (s3://BUCKET/PREFIX, gcs://..., "
                    "file:///...) and write the manifest, run.json and report there; "
                    "credentials from the environment (AWS_ACCESS_KEY_ID..., AWS_PROFILE)."
                ),
                show_default="none: videos in the output folder",
            ),
            click.option(
                "--ca-bundle",
                metavar="FILE",
                type=click.Path(exists=True, dir_okay=False, readable=True, resolve_path=True),
                help=(
                    "Also trust the CA certificates of this PEM file (a corporate proxy's, a "
                    "private API's); SSL_CERT_FILE / SSL_CERT_DIR replace the system's."
                ),
                show_default="the system's CAs",
            ),
            click.option(
                "--api-key-file",
                type=click.Path(path_type=Path),
                help="Read the API key from this file.",
            ),
            click.option(
                "--mock",
                is_flag=True,
                help="Run against an emulator started in-process (no key, no network).",
            ),
            click.option(
                "--mock-time-scale",
                type=float,
                help=(
                    "Speed of the --mock emulator, implying --mock "
                    f"[default: {MOCK_TIME_SCALE}: a 110 s job takes {110 * MOCK_TIME_SCALE:g} s]."
                ),
            ),
            click.option(
                "--on-finish",
                metavar="CMD",
                help=(
                    "Run CMD (a shell command) when the run ends, for a notification; it gets "
                    "BATCHGEN_OUTCOME, BATCHGEN_MESSAGE, BATCHGEN_OUT, BATCHGEN_DONE, "
                    "BATCHGEN_FAILED, BATCHGEN_SPENT_USD in its environment (not the API key)."
                ),
            ),
            click.option(
                "--yes",
                "-y",
                is_flag=True,
                help="Do not ask before spending (never asked when stdin is not a terminal).",
            ),
            click.option(
                "--retry-failed",
                type=click.Choice(["retryable", "all"]),
                is_flag=False,
                flag_value="retryable",
                default=None,
                help=(
                    "Run this folder's failed jobs again: those a new try can mend (transient "
                    "errors, timeouts, downloads), or 'all', refusals by validation or "
                    "content policy too. A paid video is downloaded again, not submitted; "
                    "others get a fresh --max-attempts budget (attempts keep counting)."
                ),
            ),
            click.option(
                "--retry-cancelled",
                is_flag=True,
                help="Submit this folder's cancelled jobs anew (attempts restart as above).",
            ),
            click.option(
                "--concurrency",
                type=int,
                help="Jobs in flight at the provider.",
                show_default=_default("concurrency"),
            ),
            click.option(
                "--rate",
                type=float,
                help="HTTP requests per second to the API (unless set, a --mock run's grows as "
                "its clock speeds up: 200 at --mock-time-scale 0.001).",
                show_default=_default("rate"),
            ),
            click.option(
                "--max-cost",
                type=float,
                metavar="USD",
                help="Never submit past this estimated spend for the output folder.",
                show_default="no limit",
            ),
            click.option(
                "--max-attempts",
                type=int,
                help="Submits per job in all (transient errors).",
                show_default=_default("max_attempts"),
            ),
            click.option(
                "--job-timeout",
                type=float,
                metavar="SECONDS",
                help="Cancel and fail a job this long after its submit.",
                show_default=_default("job_timeout"),
            ),
            click.option(
                "--poll",
                type=click.Choice(["adaptive", "stream"]),
                help="Poll status adaptively, or follow its event stream.",
                show_default=_default("poll"),
            ),
            click.option(
                "--expect-latency",
                type=float,
                metavar="SECONDS",
                help="Expected seconds from submit to done (first status look).",
                show_default="the endpoint's typical latency",
            ),
            click.option(
                "--max-poll-interval",
                type=float,
                metavar="SECONDS",
                help="Longest wait between two status looks.",
                show_default=_default("max_poll_interval"),
            ),
            click.option(
                "--on-uncertain-submit",
                type=click.Choice(["retry", "fail"]),
                help="A submit whose answer was lost: send again (flagged) or fail.",
                show_default=_default("on_uncertain_submit"),
            ),
            click.option(
                "--reconcile",
                type=click.Choice(["on", "off"]),
                help="Before sending an uncertain submit again, look for its job in the "
                "provider's request log (fal direct).",
                show_default=_default("reconcile"),
            ),
            click.option(
                "--download-concurrency",
                type=int,
                help="Parallel downloads.",
                show_default=_default("download_concurrency"),
            ),
            click.option(
                "--download-patience",
                metavar="DURATION",
                help=(
                    "How long a file host that fails is tried again (growing waits) before "
                    "its videos are left for the next run, which fetches them without paying "
                    "again: seconds, or 30m, 2h."
                ),
                show_default=spoken(RunSettings().download_patience),
            ),
            click.option(
                "--max-file-bytes",
                type=int,
                help="Refuse video files larger than this.",
                show_default="no limit",
            ),
            click.option(
                "--progress",
                type=click.Choice(["auto", "bars", "lines", "none"]),
                default="auto",
                show_default=True,
                help="How to show progress.",
            ),
            click.option(
                "--time-scale",
                type=float,
                hidden=True,
                help="Multiply every wait (tests and the --mock demo).",
            ),
            click.option(
                "--ledger",
                "ledger_url",
                metavar="URL",
                envvar="BATCHGEN_LEDGER",
                help=(
                    "Keep the batch's state in this PostgreSQL database "
                    "(postgresql://USER:PASSWORD@HOST/DB; or BATCHGEN_LEDGER), shared by "
                    "every run given the same --batch: each is one worker of the batch."
                ),
                show_default="DIR/batchgen.db, the folder's own",
            ),
            click.option(
                "--batch",
                metavar="NAME",
                help="The batch's name in the --ledger database.",
                show_default="the output folder's name",
            ),
            click.option(
                "--request-timeout",
                type=click.FloatRange(min=0.1),
                metavar="SECONDS",
                help=(
                    "How long one request to the API may take before it counts as lost, "
                    "counting only the time this process runs (a stopped process or a "
                    "sleeping laptop reads the answers that came meanwhile)."
                ),
                show_default="60",
            ),
            click.option(
                "--lease",
                type=click.FloatRange(min=0.01),
                hidden=True,
                help="Seconds a worker's claim holds without a heartbeat (tests).",
            ),
        ]
    ):
        func = option(func)
    return func
