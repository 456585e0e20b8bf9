"""The queue routes: submit, status, status stream, result and cancel.

Each handler runs after the ingress faults and the auth check (see ``app.py``) and gets the
caller's key, which names the account whose concurrency cap the job counts against.

Cancel answers 200 ``{"status": "CANCELLATION_REQUESTED"}`` and the job then ends COMPLETED
with ``error_type`` ``client_cancelled`` (499 at result): the protocol doc lists that type,
while a ``CANCELLED`` status is only reported by observers.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from batchgen.mock import mp4, outcomes
from batchgen.mock.emulator import Emulator, answer, public_base
from batchgen.mock.models import models_answer
from batchgen.mock.queue import Job, JobState, Logged
from batchgen.mock.stats import payload_digest

# A refused input fails in the runner's input parsing, long before a video would be done.
REFUSAL_RUNNING_FRACTION = 0.1
_TRUE = frozenset({"1", "true", "True", "yes"})


class Dropped(Exception):
    """Raised by a handler to close the connection without answering (after doing the work)."""


def _unknown_path() -> web.Response:
    """What aiohttp (or a proxy) answers for a path it has no route for."""
    return web.Response(status=404, text="404: Not Found")


def _find(request: web.Request, emu: Emulator, key: str, route: str) -> Job | web.Response:
    """The job the path names, or a 404. A request sent with another key than the one that
    submitted the job is counted (``foreign_key_requests``) and answered as
    ``foreign_keys`` says: all the same (one account's keys), 403 or 404."""
    request_id = request.match_info["request_id"]
    job = emu.queue.jobs.get(request_id)
    known = job is not None and _same_app(request.match_info["owner_app"].strip("/"), job.owner_app)
    if job is not None and known and key != job.key:
        emu.stats.foreign[route] += 1
        if emu.config.foreign_keys == "refuse":
            return answer({"detail": "Forbidden: the request belongs to another account"}, 403)
        known = emu.config.foreign_keys != "unknown"
    if job is None or not known:
        return answer({"detail": f"Request {request_id} not found"}, 404)
    return job


def _same_app(asked: str, owner_app: str) -> bool:
    if asked == owner_app:
        return True
    # quickrouter documents {owner}/auto as an alias for whichever app ran the request.
    prefix, _, app = asked.rpartition("/")
    return app == "auto" and owner_app.rpartition("/")[0] == prefix


def _log(message: str, level: str, when: float) -> dict[str, str]:
    stamp = datetime.fromtimestamp(when, UTC).isoformat()
    return {"message": message, "level": level, "source": "USER", "timestamp": stamp}


def _logs(job: Job) -> list[dict[str, str]]:
    if job.started_wall is None:
        return []
    items = [_log("Starting video generation", "INFO", job.started_wall)]
    if job.finished_at is None or job.started_at is None:
        now = time.time()
        done = 0.0 if job.running <= 0 else (now - job.started_wall) / job.running
        items.append(_log(f"Generating: {min(99, int(done * 100))}%", "STDERR", now))
        return items
    # A finished job's logs must read the same on every poll.
    ended = job.started_wall + (job.finished_at - job.started_at)
    if job.failure is not None and job.failure.error is not None:
        items.append(_log(job.failure.error, "ERROR", ended))
    else:
        items.append(_log("Video generated", "INFO", ended))
    return items


def status_body(job: Job, emu: Emulator, base: str, with_logs: bool) -> dict[str, Any]:
    """The status object fal answers for ``job`` (also the submit envelope's shape)."""
    url = f"{base}/{job.owner_app}/requests/{job.id}"
    body: dict[str, Any] = {
        "status": job.state.value,
        "request_id": job.id,
        "response_url": url,
        "status_url": url + "/status",
        "cancel_url": url + "/cancel",
        "logs": _logs(job) if with_logs and job.state is not JobState.IN_QUEUE else None,
        "metrics": {},
    }
    if job.state is JobState.IN_QUEUE:
        body["queue_position"] = emu.queue.position(job)
    elif job.state is JobState.COMPLETED:
        if job.inference_time is not None:
            body["metrics"] = {"inference_time": round(job.inference_time, 3)}
        failure = job.failure
        if failure is not None and failure.error_type is not None:
            body["error"] = failure.error
            body["error_type"] = failure.error_type
    return body


def _plan(
    emu: Emulator,
    values: dict[str, Any],
    problems: list[tuple[str, str]],
    files: list[tuple[str, str, str]],
) -> tuple[float, outcomes.Failure | None]:
    """Draw a job's real running time and its fate; every submit draws the same numbers."""
    running = emu.faults.running_time()
    job_fault = emu.faults.job()
    planned = None
    word = emu.config.policy_word
    prompt = values.get("prompt")
    if problems or files:
        planned = outcomes.validation(problems, files)
    elif word and isinstance(prompt, str) and word.lower() in prompt.lower():
        planned = outcomes.content_policy()
    elif job_fault is not None:
        planned = outcomes.infrastructure(job_fault.value)
    if planned is not None and planned.http_status == 422:
        running *= REFUSAL_RUNNING_FRACTION
    return emu.config.scaled(running), planned


async def submit(request: web.Request, emu: Emulator, key: str) -> web.Response:
    """Queue any JSON object; input the spec refuses still runs and fails only at result."""
    endpoint_id = request.match_info["endpoint"].strip("/")
    spec = emu.config.specs.get(endpoint_id)
    if spec is None or spec.status == "retired":  # fal no longer serves a retired model
        return answer({"detail": f"Application '{endpoint_id}' not found"}, 404)
    try:
        values = json.loads(await request.read() or b"null")
    except ValueError:
        values = None
    if not isinstance(values, dict):
        detail = [{"loc": ["body"], "msg": "Input should be a JSON object", "type": "dict_type"}]
        return answer({"detail": detail}, 422)
    timeout_header = request.headers.get("X-Fal-Request-Timeout")
    try:
        start_timeout = None if timeout_header is None else float(timeout_header)
    except ValueError:
        return answer({"detail": "X-Fal-Request-Timeout must be a number of seconds"}, 400)
    emu.stats.submits_by_payload[payload_digest(values)] += 1
    emu.stats.submits_by_endpoint[spec.id] += 1
    payload, problems = spec.check(values)
    # A model fetches its file inputs when it runs: one it cannot fails the job at result.
    own = {
        urlsplit(base).netloc.lower()
        for base in (public_base(request, None), emu.config.files_base_url)
        if base
    }
    files = emu.storage.refused(spec, values, emu.queue, own)
    running, planned = _plan(emu, values, problems, files)
    units = 1
    seconds = None if problems else spec.video_seconds(payload)
    if seconds is not None:
        # A longer video takes longer: the latency is for a video of the default length.
        running *= seconds / (spec.default_seconds() or seconds)
        if spec.price.duration_parameter is not None:
            # Bill in seconds of video where the price is per second ("5", 8, "8s").
            units = max(1, round(seconds))
    job = Job(
        emu.faults.request_id(),
        spec.id,
        spec.owner_app,
        key,
        output_key=spec.output,
        running=running,
        planned=planned,
        billable_units=units,
    )
    emu.queue.submit(job, start_timeout)
    emu.requests.append(Logged(job.id, spec.id, key, time.time(), values))
    if emu.faults.submit_drop():
        emu.stats.faults["submit_drop"] += 1
        raise Dropped
    base = public_base(request, emu.config.envelope_base_url)
    return answer(status_body(job, emu, base, with_logs=False))


async def status(request: web.Request, emu: Emulator, key: str) -> web.Response:
    emu.stats.status_requests[request.match_info["request_id"]] += 1
    if not emu.config.status_route:
        return _unknown_path()
    job = _find(request, emu, key, "status")
    if isinstance(job, web.Response):
        return job
    base = public_base(request, emu.config.envelope_base_url)
    body = status_body(job, emu, base, request.query.get("logs") in _TRUE)
    return answer(body, 200 if job.state is JobState.COMPLETED else 202)


async def stream(request: web.Request, emu: Emulator, key: str) -> web.StreamResponse:
    """Server-sent events: one ``data:`` event per change, ``: ping`` when quiet, closes
    after COMPLETED."""
    if not emu.config.status_route:
        return _unknown_path()
    job = _find(request, emu, key, "stream")
    if isinstance(job, web.Response):
        return job
    base = public_base(request, emu.config.envelope_base_url)
    with_logs = request.query.get("logs") in _TRUE
    response = web.StreamResponse(headers={"Cache-Control": "no-cache"})
    response.content_type = "text/event-stream"
    try:
        await response.prepare(request)
        last = ""
        while True:
            text = json.dumps(status_body(job, emu, base, with_logs))
            if text != last:
                await response.write(b"data: " + text.encode() + b"\n\n")
                last = text
            gone = emu.queue.closed or emu.queue.jobs.get(job.id) is not job
            if job.state is JobState.COMPLETED or gone:
                break  # done, or the server shuts down, or a reset forgot the job
            quiet = emu.config.scaled(emu.config.keepalive)
            if not await emu.queue.wait_change(job, quiet):
                await response.write(b": ping\n\n")
    except ConnectionError:
        pass  # the client went away; nothing to tell anyone
    return response


async def result(request: web.Request, emu: Emulator, key: str) -> web.Response:
    job = _find(request, emu, key, "result")
    if isinstance(job, web.Response):
        return job
    headers = {"x-fal-request-id": job.id}
    if job.state is not JobState.COMPLETED or job.finished_at is None:
        return answer({"detail": "Request is still in progress"}, 400, headers)
    ttl = emu.config.result_ttl
    if ttl is not None and emu.queue.loop.time() > job.finished_at + emu.config.scaled(ttl):
        return answer({"detail": f"Request {job.id} not found (result expired)"}, 404, headers)
    if job.failure is not None:
        headers.update(job.failure.result_headers())
        return answer(job.failure.result_body(), job.failure.http_status, headers)
    size = mp4.video_file(job.id, emu.config.video_bytes).size
    files = public_base(request, emu.config.files_base_url)
    url = f"{files}/files/{job.id}/output.mp4"
    link_ttl = emu.config.file_link_ttl
    if link_ttl is not None:  # a presigned link, valid for a while from now
        url += "?" + emu.links.query(job.id, emu.queue.loop.time() + emu.config.scaled(link_ttl))
    output = {
        "url": url,
        "content_type": "video/mp4",
        "file_name": "output.mp4",
        "file_size": size,
    }
    headers["x-fal-billable-units"] = str(job.billable_units)
    return answer({job.output_key: output}, 200, headers)


async def cancel(request: web.Request, emu: Emulator, key: str) -> web.Response:
    job = _find(request, emu, key, "cancel")
    if isinstance(job, web.Response):
        return job
    if job.state is JobState.COMPLETED:
        return answer({"status": "ALREADY_COMPLETED"}, 400)
    ignored = job.state is JobState.IN_PROGRESS and emu.faults.cancel_ignored()
    if ignored:
        emu.stats.faults["cancel_ignored"] += 1
    emu.queue.cancel(job, ignored=ignored)
    return answer({"status": "CANCELLATION_REQUESTED"})


async def models(request: web.Request, emu: Emulator, key: str) -> web.Response:
    """``GET /v1/models``: fal's model API from the emulator's specs (``mock.models``)."""
    return answer(models_answer(emu.config, request.query))


async def pricing(request: web.Request, emu: Emulator, key: str) -> web.Response:
    """``GET /v1/models/pricing?endpoint_id=A,B``: each known endpoint's unit price, from its
    spec at its default parameters (per second where the spec prices by the second)."""
    prices = []
    for endpoint_id in request.query.get("endpoint_id", "").split(","):
        spec = emu.config.specs.get(endpoint_id.strip())
        if spec is None:
            continue
        payload, _ = spec.check({})
        unit = spec.price.unit_price(spec.priced_as(payload))
        if unit is not None:
            usd, name = unit
            prices.append(
                {"endpoint_id": spec.id, "unit_price": usd, "unit": name, "currency": "USD"}
            )
    return answer({"prices": prices})
