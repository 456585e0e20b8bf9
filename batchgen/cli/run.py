"""`batchgen run`: run every job of a plan, or resume an output folder.

Signals: Ctrl-C once drains (no new submits; jobs in flight finish and download); Ctrl-C
twice, SIGTERM or SIGHUP (an ssh session closing; left alone when ignored, as under nohup)
stop now. Either way the ledger, manifest and ``run.json`` are written, and the last line
printed says "interrupted" and the command that resumes the folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from batchgen.cli.falspecs import fal_specs
from batchgen.cli.main import (
    EXIT_FAILED,
    EXIT_FATAL,
    EXIT_INTERRUPTED,
    cli,
    handle_errors,
    parse_sets,
    plan_options,
)
from batchgen.cli.runoptions import (
    _RUN_SETTINGS,
    MOCK_IN_PROGRESS,
    MOCK_TIME_SCALE,
    mock_rate,
    run_options,
)
from batchgen.errors import UsageError
from batchgen.ledger.writer import SWITCH_INTERVAL

if TYPE_CHECKING:
    from batchgen.ledger.shared import SharedBatch


@cli.command()
@plan_options
@run_options
@handle_errors
def run(
    target: Path | None,
    sets: tuple[str, ...],
    endpoint: str | None,
    endpoint_spec: tuple[Path, ...],
    filename: str | None,
    sheet: str | None,
    skip_hidden_rows: bool | None,
    extra_columns: str | None,
    platform_url: str | None,
    offline: bool,
    add: bool,
    output: Path | None,
    api_key_file: Path | None,
    mock: bool,
    retry_failed: str | None,
    retry_cancelled: bool,
    progress: str,
    time_scale: float | None,
    mock_time_scale: float | None,
    on_finish: str | None,
    yes: bool,
    ledger_url: str | None,
    batch: str | None,
    lease: float | None,
    request_timeout: float | None,
    **options: Any,
) -> None:
    """Run TARGET (a prompt file, a folder or glob of images, or a job spec): submit, poll,
    download, write the manifest.

    Run it again (or `batchgen run --out DIR`) to resume: finished jobs are skipped,
    submitted ones polled, never sent twice. Failed and cancelled jobs are left as they
    are unless --retry-failed / --retry-cancelled.
    """

    from batchgen.cli.finish import run_on_finish
    from batchgen.cli.outfolder import check_default_folder, check_same_world
    from batchgen.cli.preview import go_ahead
    from batchgen.ledger.shared import SharedBatch, check_url
    from batchgen.ledger.states import JobStatus
    from batchgen.plan.build import build_plan
    from batchgen.run.descriptors import fit
    from batchgen.run.resume import stored_run
    from batchgen.run.timing import Timing

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
        spec_files = stored.get("endpoint_spec") or ()  # one path before several were taken
        spec_files = [spec_files] if isinstance(spec_files, str) else spec_files
        endpoint_spec = endpoint_spec or tuple(Path(p) for p in spec_files)
        filename = filename or stored.get("filename")
        set_values = set_values or dict(stored.get("sets") or {})
        sheet = sheet or stored.get("sheet")
        skip_hidden_rows = skip_hidden_rows or stored.get("skip_hidden_rows")
        extra_columns = extra_columns or stored.get("extra_columns")
        overrides = {**(stored.get("options") or {}), **overrides}
        # A --mock run resumes on a fresh emulator: it knows none of the earlier request ids,
        # so jobs in flight fail as unknown (--retry-failed submits them again).
        mock = mock or (bool(stored.get("mock")) and "base_url" not in overrides)
    if ledger_url:
        check_url(ledger_url)  # before anything is read or sent
    elif batch is not None:
        raise UsageError("--batch names a batch of a shared ledger: give --ledger URL too")
    mock = mock or mock_time_scale is not None
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
        sheet=sheet,
        extra_columns=extra_columns,
        skip_hidden_rows=skip_hidden_rows,
        fal=fal_specs(
            platform_url,
            offline,
            mock=mock,
            elsewhere=overrides.get("provider", "fal") != "fal" or "base_url" in overrides,
        ),
    )
    check_default_folder(plan, add)
    check_same_world(plan, mock)  # the emulator's videos never pass for a model's
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)
    asked = {JobStatus.FAILED} if retry_failed else set()
    if retry_cancelled:
        asked.add(JobStatus.CANCELLED)
    _check_connection(plan, api_key_file, mock)  # before asking: a refusal sends nothing
    if not go_ahead(plan, asked, retry_failed == "all", ask=not yes and sys.stdin.isatty()):
        click.echo("nothing was sent", err=True)
        return
    resume = {
        "target": str(target.resolve()),
        "endpoint": endpoint,
        "endpoint_spec": [str(p.resolve()) for p in endpoint_spec],
        "filename": filename,
        "sets": set_values,
        "sheet": sheet,
        "skip_hidden_rows": skip_hidden_rows,
        "extra_columns": extra_columns,
        "options": overrides,
        "mock": mock,
    }
    if mock_time_scale is not None and time_scale is None:
        time_scale = mock_time_scale
    scale = time_scale if time_scale is not None else (MOCK_TIME_SCALE if mock else 1.0)
    if mock and "rate" not in plan.given:  # a faster emulator answers more looks a second
        rate = mock_rate(plan.settings.rate, scale)
        plan.settings = dataclasses.replace(plan.settings, rate=rate)
    timing = Timing(scale=scale)
    if request_timeout is not None:
        timing = dataclasses.replace(timing, request_timeout=request_timeout)
    if lease is not None:  # a heartbeat five times a lease: a busy machine misses none
        timing = dataclasses.replace(timing, lease=lease, heartbeat=lease / 5)
    retry = {
        "retry_failed": retry_failed or False,
        "retry_cancelled": retry_cancelled,
        "ledger": ledger_url or None,
        "batch": batch,
    }
    room = fit(plan.settings.concurrency, plan.settings.download_concurrency, emulator=mock)
    if room.warning is not None:  # the soft limit could not be raised far enough
        click.echo(f"warning: {room.warning}", err=True)
        plan.settings = dataclasses.replace(
            plan.settings, concurrency=room.concurrency, download_concurrency=room.downloads
        )
    sys.setswitchinterval(SWITCH_INTERVAL)  # see batchgen.ledger.writer
    result = asyncio.run(_run(plan, resume, timing, mock, api_key_file, progress, retry))
    code = {"done": 0, "failed": EXIT_FAILED, "fatal": EXIT_FATAL, "interrupted": EXIT_INTERRUPTED}[
        result.outcome
    ]
    steps = [f"  {step}" for step in result.next_steps]
    if result.outcome == "interrupted":  # the last line says how to resume
        again = f"batchgen run --out {shlex.quote(str(plan.output_dir))}"
        lines = [*steps, f"interrupted: {result.message}; resume with: {again}"]
    else:
        prefix = "fatal: " if result.outcome == "fatal" else ""
        lines = [f"{prefix}{result.message}; output in {plan.output_dir}", *steps]
    click.echo("\n".join(lines), err=True)
    if plan.settings.store is not None:
        name = batch or Path(plan.output_dir).name  # as the run named it
        shared = SharedBatch(ledger_url, name) if ledger_url else None
        _report_to_store(plan.output_dir, plan.settings.store, shared)
    if on_finish:
        run_on_finish(on_finish, plan, result)
    if code:
        sys.exit(code)


def _check_connection(plan: Any, api_key_file: Path | None, mock: bool) -> None:
    """Refuse, before the preview asks, what the run would refuse at its start: a missing key,
    ``--upload fal`` without FAL_KEY, local files too big to send inline, a ``--store`` that
    cannot be written."""
    from batchgen.api.objectstore import ObjectStore
    from batchgen.api.providers import connect
    from batchgen.run.uploads import check_files

    # The in-process emulator's port is not known yet; any loopback URL checks the same.
    base_url = "http://127.0.0.1" if mock else None
    try:
        connection = connect(plan.settings, api_key_file=api_key_file, base_url=base_url)
    except UsageError as exc:
        if not str(exc).startswith("no API key"):
            raise
        raise UsageError(f"{exc}; or add --mock to try this batch on the emulator, free") from None
    check_files(plan.jobs, connection.storage)
    if plan.settings.store is not None:
        ObjectStore.open(plan.settings.store).probe()


def _report_to_store(out_dir: Path, store: str, shared: SharedBatch | None) -> None:
    """Write the report into the run's store, beside its videos (a worker's: its batch's
    report); a failure is a warning: ``batchgen report`` writes it again."""
    from batchgen.errors import BatchgenError
    from batchgen.folder.report import write_pages

    try:
        if shared is None:
            write_pages(out_dir)
        else:
            write_pages(out_dir, shared=shared, store=store)
    except BatchgenError as exc:
        click.echo(f"warning: the report was not written: {exc}", err=True)


async def _run(
    plan: Any,
    resume: dict[str, Any],
    timing: Any,
    mock: bool,
    api_key_file: Path | None,
    progress: str,
    retry: dict[str, Any],
) -> Any:
    """Run with signal handlers: Ctrl-C once drains, twice (or SIGTERM, SIGHUP) stops now."""

    from batchgen.api.providers import IN_PROCESS, connect
    from batchgen.run.runner import Runner

    reporter = _reporter(progress)
    server: Any = None
    if mock:
        from batchgen.mock import MockConfig, MockServer
        from batchgen.mock.server import quiet_accept_errors
        from batchgen.plan.endpoint import builtin_specs

        # Out of file descriptors, its accept loop says so once instead of a traceback each.
        quiet_accept_errors(asyncio.get_running_loop(), reporter.note)

        # It serves the endpoints the user's spec files describe too.
        own = {i: ep for i, ep in plan.endpoints.items() if not ep.passthrough}
        specs = {**builtin_specs(), **own}
        server = MockServer(
            MockConfig(
                time_scale=timing.scale, max_in_progress=MOCK_IN_PROGRESS, seed=None, specs=specs
            )
        )
        await server.start()
    try:
        connection = connect(
            plan.settings,
            api_key_file=api_key_file,
            base_url=server.base_url if server is not None else None,
        )
        if server is not None:  # a new one each time, on a new port: name it, not its port
            # This process serves it: no proxy could reach it.
            network = dataclasses.replace(connection.network, direct=(server.host,))
            connection = dataclasses.replace(connection, label=IN_PROCESS, network=network)
        for warning in connection.warnings:
            click.echo(f"warning: {warning}", err=True)
        runner = Runner(plan, connection, timing=timing, reporter=reporter, resume=resume, **retry)
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

        on_terminal = sys.stderr.isatty()

        def hung_up() -> None:
            if on_terminal:  # it is gone: writing progress to it would fail (EIO)
                _to_devnull()
            runner.abort()

        handlers = {signal.SIGINT: interrupted, signal.SIGTERM: runner.abort}
        hup = getattr(signal, "SIGHUP", None)
        if hup is not None and signal.getsignal(hup) is not signal.SIG_IGN:  # nohup: ignored
            handlers[hup] = hung_up
        loop = asyncio.get_running_loop()
        # Only the main thread may own signals (and Windows has no add_signal_handler).
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            for sig, handler in handlers.items():
                loop.add_signal_handler(sig, handler)
        try:
            return await runner.run()
        finally:
            # The run is over: a late signal has nothing left to stop and must neither cut
            # the last words nor turn the run's exit code into its own (a SIGTERM's -15).
            for sig in handlers:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
                    signal.signal(sig, signal.SIG_IGN)
    finally:
        if server is not None:
            await server.stop()


def _to_devnull() -> None:
    """Point stdout and stderr at the null device (their terminal hung up)."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)


def _reporter(progress: str) -> Any:
    from batchgen.run.progress import BarReporter, LineReporter, Reporter

    if progress == "none":
        return Reporter()
    if progress == "bars" or (progress == "auto" and sys.stderr.isatty()):
        return BarReporter(sys.stderr)
    return LineReporter(sys.stderr)
