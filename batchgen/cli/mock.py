"""`batchgen mock`: serve the fal-compatible queue emulator until stopped."""

from __future__ import annotations

from typing import Any

import click

from batchgen.cli.main import (
    F,
    cli,
    handle_errors,
)

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
    ("file-503", "file downloads answer 503 (1: a file host outage)"),
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
    "--locked-key",
    "locked_keys",
    multiple=True,
    help="A key whose account is out of credit (repeatable): its submits answer 403 "
    '"User is locked. Reason: Exhausted balance"; its jobs can still be read.',
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
    default=0.01,
    show_default=True,
    help="Multiply every emulated duration (0.01: a 110 s job takes 1.1 s; 1: real time).",
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
    "--file-ttl",
    type=float,
    default=None,
    help="Seconds a video stays downloadable after completion, then 404 (default: forever).",
)
@click.option(
    "--file-link-ttl",
    type=float,
    default=None,
    help="Hand out signed video links (S3 presigned style) that expire this many seconds "
    "after the result was read, then 403 until the result is read again (default: plain "
    "links, as fal's CDN).",
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
@click.option(
    "--no-status-route",
    "status_route",
    is_flag=True,
    flag_value=False,
    default=True,
    show_default=False,
    help="Answer status and status-stream requests 404, like a proxy with only a result route.",
)
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

    from batchgen.mock import MockConfig, serve
    from batchgen.plan.endpoint import builtin_specs, load_spec_file

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
        click.echo(f"  {config.summary()}", err=True)

    try:
        serve(
            config,
            host=host,
            port=port,
            ssl_context=context,
            on_ready=ready,
            notify=lambda message: click.echo(f"warning: {message}", err=True),
        )
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
