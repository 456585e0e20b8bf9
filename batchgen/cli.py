"""The command line: parses flags, calls the library, draws progress, maps errors to exit codes.

Exit codes: 0 all done; 1 some jobs failed; 2 bad input or usage; 3 fatal provider error;
130 interrupted.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from batchgen import __version__
from batchgen.errors import BatchgenError, FatalError, InputError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_FATAL = 3
EXIT_INTERRUPTED = 130


def fail(message: str, code: int) -> None:
    """Print an error for the user and exit with ``code``."""
    click.echo(message, err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn batchgen's errors into a message and an exit code: never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            count = len(exc.problems)
            fail(
                f"{exc}\n{count} problem{'s' if count != 1 else ''} found; nothing was sent.",
                EXIT_INPUT,
            )
        except UsageError as exc:
            fail(f"error: {exc}", EXIT_INPUT)
        except FatalError as exc:
            fail(f"fatal: {exc}", EXIT_FATAL)
        except BatchgenError as exc:
            fail(f"error: {exc}", EXIT_FAILED)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchgen")
def cli() -> None:
    """Run a spreadsheet of prompts as video-generation jobs on a fal-style queue API."""


@cli.command()
@handle_errors
def endpoints() -> None:
    """List the built-in endpoint specs."""
    from batchgen.endpoint import builtin_specs

    for spec in builtin_specs().values():
        click.echo(f"{spec.id}  ({spec.title})")
        for param in spec.params.values():
            bits = [param.type]
            if param.required:
                bits.append("required")
            if param.enum is not None:
                bits.append("one of " + ", ".join(map(str, param.enum)))
            if param.minimum is not None or param.maximum is not None:
                bits.append(f"{param.minimum} to {param.maximum}")
            if param.max_length is not None:
                bits.append(f"at most {param.max_length} characters")
            if param.default is not None:
                bits.append(f"default {param.default!r}")
            click.echo(f"  {param.name}: {'; '.join(bits)}")


def parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    """``--set FIELD=VALUE`` pairs as a mapping."""
    sets = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set takes FIELD=VALUE, not {item!r}")
        sets[name.strip()] = value
    return sets


def plan_options(func: F) -> F:
    """Options shared by every command that builds a plan (plan, run)."""
    for option in reversed(
        [
            click.argument("target", type=click.Path(path_type=Path), required=False),
            click.option(
                "--set",
                "sets",
                multiple=True,
                metavar="FIELD=VALUE",
                help="Default for a parameter (row cells override it).",
            ),
            click.option(
                "--endpoint",
                help="Endpoint id (default: the spec's, else Kling 2.5 turbo pro text-to-video).",
            ),
            click.option(
                "--endpoint-spec",
                type=click.Path(path_type=Path),
                help="Your own endpoint spec file (YAML).",
            ),
            click.option("--filename", help="File name template, e.g. '{row:04d}-{slug}'."),
        ]
    ):
        func = option(func)
    return func


@cli.command()
@plan_options
@click.option("--out", "output", type=click.Path(path_type=Path), help="Output folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as a JSON object.")
@handle_errors
def plan(
    target: Path | None,
    sets: tuple[str, ...],
    endpoint: str | None,
    endpoint_spec: Path | None,
    filename: str | None,
    output: Path | None,
    as_json: bool,
) -> None:
    """Validate TARGET (a prompt file or job spec) and print jobs and cost. Sends nothing."""
    from batchgen.plan import build_plan

    if target is None:
        raise UsageError("give a prompt file or a job spec: batchgen plan FILE")
    result = build_plan(
        target,
        endpoint=endpoint,
        endpoint_spec=endpoint_spec,
        sets=parse_sets(sets),
        output=output,
        filename=filename,
    )
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2, ensure_ascii=False))
        return
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"endpoint: {result.endpoint.id}")
    click.echo(f"input:    {result.input_path} ({result.records} records)")
    click.echo(f"jobs:     {len(result.jobs)}")
    for group in result.breakdown():
        label = ", ".join(f"{k}={v}" for k, v in group.items() if k not in ("jobs", "cost_usd"))
        jobs = f"{group['jobs']} job{'s' if group['jobs'] != 1 else ''}"
        click.echo(f"  {label or 'all'}: {jobs}, {_usd(group['cost_usd'])}")
    click.echo(f"estimated cost: {_usd(result.estimated_cost)}")
    click.echo(f"output:   {result.output_dir}")


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.2f}"


_MOCK_FAULTS = (
    ("429", "answer 429 without Retry-After (API routes)"),
    ("429-retry-after", "answer 429 with Retry-After (API routes)"),
    ("503", "answer an nginx-style 503, no x-fal-request-id (API routes)"),
    ("reset", "close the connection without answering (API routes)"),
    ("slow", "delay the answer by --slow-delay (API routes)"),
    ("submit-drop", "create the job, then drop the submit's connection"),
    ("runner-disconnected", "job ends COMPLETED with error_type runner_disconnected"),
    ("request-timeout", "job ends COMPLETED with error_type request_timeout"),
    ("cancel-ignored", "a running job ignores a cancel and completes"),
    ("truncate", "file downloads stop at half of Content-Length"),
)


def _mock_fault_options(func: F) -> F:
    for name, text in reversed(_MOCK_FAULTS):
        dest = "fault_" + name.replace("-", "_")
        func = click.option(
            f"--fault-{name}",
            dest,
            type=click.FloatRange(0, 1),
            default=0.0,
            show_default=True,
            help=f"Rate: {text}.",
        )(func)
    return func


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, help="Port to listen on (0: any).")
@click.option(
    "--auth-scheme",
    type=click.Choice(["any", "key", "bearer"]),
    default="any",
    show_default=True,
    help="Accepted Authorization scheme: Key, Bearer or either.",
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    help="An accepted key (repeatable); none given: any non-empty key.",
)
@click.option(
    "--max-in-progress",
    default=2,
    show_default=True,
    help="Running jobs per key; the rest wait IN_QUEUE (fal: 2 for new accounts).",
)
@click.option("--latency", default=110.0, show_default=True, help="Mean running seconds.")
@click.option(
    "--latency-jitter",
    default=0.2,
    show_default=True,
    help="Relative spread of the running time (uniform).",
)
@click.option(
    "--queue-delay",
    default=1.0,
    show_default=True,
    help="Seconds IN_QUEUE before a job with a free slot starts.",
)
@click.option(
    "--time-scale",
    default=1.0,
    show_default=True,
    help="Multiply every emulated duration (0.001: a 110 s job takes 0.11 s).",
)
@click.option(
    "--keepalive",
    default=15.0,
    show_default=True,
    help="Seconds between ': ping' lines on a quiet status stream.",
)
@click.option(
    "--result-ttl",
    type=float,
    default=None,
    help="Seconds a result stays fetchable after completion (default: forever).",
)
@click.option(
    "--video-bytes",
    default=0,
    show_default=True,
    help="Pad each video to this size (0: natural size, about 25 KB).",
)
@click.option("--files-base-url", help="Origin of video URLs (default: this server).")
@click.option(
    "--envelope-base-url", help="Origin of status_url/response_url/cancel_url in submit answers."
)
@click.option("--policy-word", help="Prompts containing it end with a content-policy 422.")
@click.option("--seed", type=int, help="Seed for faults, latencies and request ids.")
@click.option(
    "--retry-after",
    default=1.0,
    show_default=True,
    help="Seconds in Retry-After of --fault-429-retry-after answers.",
)
@click.option(
    "--slow-delay",
    default=10.0,
    show_default=True,
    help="Seconds that --fault-slow delays an answer.",
)
@_mock_fault_options
@click.option(
    "--endpoint-spec",
    "spec_files",
    multiple=True,
    type=click.Path(exists=True),
    help="Also serve the endpoint of this spec file (repeatable).",
)
@click.option("--certfile", type=click.Path(exists=True), help="Serve https with this cert.")
@click.option("--keyfile", type=click.Path(exists=True), help="Private key of --certfile.")
@handle_errors
def mock(
    host: str,
    port: int,
    spec_files: tuple[str, ...],
    certfile: str | None,
    keyfile: str | None,
    **settings: Any,
) -> None:
    """Serve a fal-compatible queue emulator until Ctrl-C.

    Submit, status (polled or streamed), result and cancel as on queue.fal.run, a per-key
    concurrency cap, scaled latencies, real MP4 files on /files/..., seeded faults, and
    statistics on GET /_mock/stats. Durations are emulated seconds times --time-scale.
    """
    import ssl

    from batchgen.endpoint import builtin_specs, load_spec_file
    from batchgen.mock import MockConfig, serve

    specs = builtin_specs()
    for path in spec_files:
        spec = load_spec_file(path)
        specs[spec.id] = spec
    config = MockConfig(specs=specs, **settings)
    context = None
    if certfile is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile, keyfile)

    def ready(base_url: str) -> None:
        click.echo(f"batchgen mock serving on {base_url} (Ctrl-C to stop)", err=True)

    try:
        serve(config, host=host, port=port, ssl_context=context, on_ready=ready)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


# -- run ----------------------------------------------------------------------------------------

_RUN_SETTINGS = (
    "provider",
    "base_url",
    "auth_scheme",
    "api_key_env",
    "concurrency",
    "rate",
    "max_cost",
    "max_attempts",
    "job_timeout",
    "poll",
    "expect_latency",
    "max_poll_interval",
    "on_uncertain_submit",
    "download_concurrency",
    "max_file_bytes",
)
# The --mock demo: Kling's ~110 s jobs take ~2 s, four at a time.
MOCK_TIME_SCALE = 0.02
MOCK_IN_PROGRESS = 4


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
            click.option("--provider", help="Provider preset: fal, quickrouter or mock."),
            click.option("--base-url", help="Queue API base URL (overrides the preset)."),
            click.option(
                "--auth-scheme",
                type=click.Choice(["key", "bearer"]),
                help="Authorization scheme: 'Key <k>' or 'Bearer <k>'.",
            ),
            click.option(
                "--api-key-env", metavar="NAME", help="Environment variable with the key."
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
            click.option("--concurrency", type=int, help="Jobs in flight at the provider."),
            click.option("--rate", type=float, help="HTTP requests per second to the API."),
            click.option(
                "--max-cost",
                type=float,
                metavar="USD",
                help="Never submit past this estimated spend for the output folder.",
            ),
            click.option(
                "--max-attempts", type=int, help="Submits per job in all (transient errors)."
            ),
            click.option(
                "--job-timeout",
                type=float,
                metavar="SECONDS",
                help="Cancel and fail a job this long after its submit.",
            ),
            click.option(
                "--poll",
                type=click.Choice(["adaptive", "stream"]),
                help="Poll status adaptively, or follow its event stream.",
            ),
            click.option(
                "--expect-latency",
                type=float,
                metavar="SECONDS",
                help="Expected seconds from submit to done (first status look).",
            ),
            click.option(
                "--max-poll-interval",
                type=float,
                metavar="SECONDS",
                help="Longest wait between two status looks.",
            ),
            click.option(
                "--on-uncertain-submit",
                type=click.Choice(["retry", "fail"]),
                help="A submit whose answer was lost: send again (flagged) or fail.",
            ),
            click.option("--download-concurrency", type=int, help="Parallel downloads."),
            click.option("--max-file-bytes", type=int, help="Refuse video files larger than this."),
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
        ]
    ):
        func = option(func)
    return func


@cli.command()
@plan_options
@run_options
@handle_errors
def run(
    target: Path | None,
    sets: tuple[str, ...],
    endpoint: str | None,
    endpoint_spec: Path | None,
    filename: str | None,
    output: Path | None,
    api_key_file: Path | None,
    mock: bool,
    progress: str,
    time_scale: float | None,
    **options: Any,
) -> None:
    """Run TARGET (a prompt file or job spec): submit, poll, download, write the manifest.

    Run it again (or `batchgen run --out DIR`) to resume: finished jobs are skipped,
    submitted ones polled, never sent twice.
    """
    import asyncio

    from batchgen.plan import build_plan
    from batchgen.runner import stored_run
    from batchgen.timing import Timing

    overrides = {k: v for k, v in options.items() if k in _RUN_SETTINGS and v is not None}
    set_values = parse_sets(sets)
    if target is None:
        if output is None:
            raise UsageError(
                "give a prompt file or a job spec (batchgen run FILE), or the "
                "folder of an earlier run to resume (batchgen run --out DIR)"
            )
        stored = stored_run(output)
        target = Path(stored["target"])
        endpoint = endpoint or stored.get("endpoint")
        spec_file = stored.get("endpoint_spec")
        endpoint_spec = endpoint_spec or (Path(spec_file) if spec_file else None)
        filename = filename or stored.get("filename")
        set_values = set_values or dict(stored.get("sets") or {})
        overrides = {**(stored.get("options") or {}), **overrides}
    if mock:
        overrides["provider"] = "mock"
    plan = build_plan(
        target,
        endpoint=endpoint,
        endpoint_spec=endpoint_spec,
        sets=set_values,
        output=output,
        filename=filename,
        run=overrides,
    )
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)
    resume = {
        "target": str(target.resolve()),
        "endpoint": endpoint,
        "endpoint_spec": str(endpoint_spec.resolve()) if endpoint_spec else None,
        "filename": filename,
        "sets": set_values,
        "options": overrides,
    }
    scale = time_scale if time_scale is not None else (MOCK_TIME_SCALE if mock else 1.0)
    timing = Timing(scale=scale)
    result = asyncio.run(_run(plan, resume, timing, mock, api_key_file, progress))
    code = {"done": 0, "failed": EXIT_FAILED, "fatal": EXIT_FATAL, "interrupted": EXIT_INTERRUPTED}[
        result.outcome
    ]
    prefix = "fatal: " if result.outcome == "fatal" else ""
    click.echo(f"{prefix}{result.message}; output in {plan.output_dir}", err=True)
    if code:
        sys.exit(code)


async def _run(
    plan: Any,
    resume: dict[str, Any],
    timing: Any,
    mock: bool,
    api_key_file: Path | None,
    progress: str,
) -> Any:
    """Run with signal handlers: Ctrl-C once drains, twice (or SIGTERM) stops now."""
    import asyncio
    import contextlib
    import signal

    from batchgen.providers import connect
    from batchgen.runner import Runner

    reporter = _reporter(progress)
    server: Any = None
    if mock:
        from batchgen.mock import MockConfig, MockServer

        server = MockServer(
            MockConfig(time_scale=timing.scale, max_in_progress=MOCK_IN_PROGRESS, seed=None)
        )
        await server.start()
    try:
        connection = connect(
            plan.settings,
            api_key_file=api_key_file,
            base_url=server.base_url if server is not None else None,
        )
        for warning in connection.warnings:
            click.echo(f"warning: {warning}", err=True)
        runner = Runner(plan, connection, timing=timing, reporter=reporter, resume=resume)
        presses = 0

        def interrupted() -> None:
            nonlocal presses
            presses += 1
            if presses == 1:
                reporter.note(
                    "stopping: no new submits; jobs in flight finish and download "
                    "(Ctrl-C again to stop now; the run can be resumed)"
                )
                runner.drain()
            else:
                runner.abort()

        loop = asyncio.get_running_loop()
        # Only the main thread may own signals (and Windows has no add_signal_handler).
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signal.SIGINT, interrupted)
            loop.add_signal_handler(signal.SIGTERM, runner.abort)
        try:
            return await runner.run()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
    finally:
        if server is not None:
            await server.stop()


def _reporter(progress: str) -> Any:
    from batchgen.progress import BarReporter, LineReporter, Reporter

    if progress == "none":
        return Reporter()
    if progress == "bars" or (progress == "auto" and sys.stderr.isatty()):
        return BarReporter(sys.stderr)
    return LineReporter(sys.stderr)


# -- commands on an output folder: status, cancel, report, export ----------------------------

_FOLDER = click.argument("out_dir", metavar="DIR", type=click.Path(path_type=Path))


@cli.command()
@_FOLDER
@click.option("--json", "as_json", is_flag=True, help="Print the status as a JSON object.")
@handle_errors
def status(out_dir: Path, as_json: bool) -> None:
    """Counts, spend, jobs in flight and failures of the batch in DIR (safe during a run)."""
    from batchgen.status import read_status, render

    result = read_status(out_dir)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render(result))


@cli.command()
@_FOLDER
@click.option(
    "--keys",
    multiple=True,
    metavar="KEY[,KEY...]",
    help="Cancel only these jobs (repeatable). Default: every job in flight.",
)
@click.option(
    "--pending",
    "include_pending",
    is_flag=True,
    help="Also cancel jobs not submitted yet, so a resumed run skips them.",
)
@click.option("--provider", help="Provider preset (default: the one the run used).")
@click.option("--base-url", help="Queue API base URL (default: the one the run used).")
@click.option("--auth-scheme", type=click.Choice(["key", "bearer"]), help="Authorization scheme.")
@click.option("--api-key-env", metavar="NAME", help="Environment variable holding the API key.")
@click.option("--api-key-file", type=click.Path(path_type=Path), help="File holding the API key.")
@handle_errors
def cancel(
    out_dir: Path,
    keys: tuple[str, ...],
    include_pending: bool,
    provider: str | None,
    base_url: str | None,
    auth_scheme: str | None,
    api_key_env: str | None,
    api_key_file: Path | None,
) -> None:
    """Cancel the jobs of DIR at the provider; they end 'cancelled' and are not resubmitted."""
    from batchgen.cancel import cancel_folder

    wanted = [k for item in keys for k in item.replace(",", " ").split()] or None
    overrides = {
        "provider": provider,
        "base_url": base_url,
        "auth_scheme": auth_scheme,
        "api_key_env": api_key_env,
    }
    outcomes = cancel_folder(
        out_dir,
        keys=wanted,
        include_pending=include_pending,
        overrides=overrides,
        api_key_file=api_key_file,
    )
    for o in outcomes:
        click.echo(f"row {o.row} {o.key}: {o.before} -> {o.after} ({o.answer})")
    cancelled = sum(o.after == "cancelled" and o.before != "cancelled" for o in outcomes)
    click.echo(
        f"{cancelled} cancelled, {len(outcomes) - cancelled} left as they were"
        if outcomes
        else "nothing to cancel"
    )
    if not all(o.ok for o in outcomes):
        sys.exit(EXIT_FAILED)


@cli.command()
@_FOLDER
@handle_errors
def report(out_dir: Path) -> None:
    """Write DIR/report.html: a summary and a gallery of the batch, viewable offline."""
    from batchgen.report import write_report

    click.echo(write_report(out_dir))


@cli.command()
@_FOLDER
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(["csv", "jsonl", "parquet", "hf"]),
    help="csv/jsonl/parquet: the manifest; hf: a Hugging Face videofolder dataset.",
)
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(path_type=Path),
    help="File to write (hf: a new or empty folder).",
)
@handle_errors
def export(out_dir: Path, fmt: str, to: Path) -> None:
    """Export the batch in DIR as a table, or as a dataset folder of its videos."""
    from batchgen.export import export as run_export

    result = run_export(out_dir, fmt, to)
    if fmt == "hf":
        how = f"{result.linked} linked, {result.copied} copied"
        click.echo(f"wrote {result.rows} videos ({how}) and metadata.jsonl to {result.path}")
        if result.missing:
            click.echo(
                f"warning: {len(result.missing)} done jobs have no file on disk: "
                + ", ".join(result.missing[:10]),
                err=True,
            )
    else:
        click.echo(f"wrote {result.rows} rows to {result.path}")
