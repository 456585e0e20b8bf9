"""The aiohttp application: fal's routes behind an "ingress" that injects faults and checks keys.

Order on an API request (submit, status, stream, result, cancel, and the storage routes), as
on the real path: ingress faults (slow, reset, 503, 429) first, then the Authorization check
(the API key; a storage token on uploads; none on the older upload's PUT), then the route.
Downloads (``GET /files/...``) and ``/_mock/...`` skip both.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from batchgen.errors import UsageError
from batchgen.mock import routes, storage_routes
from batchgen.mock.config import MockConfig
from batchgen.mock.emulator import EMULATOR, Emulator, answer
from batchgen.mock.faults import ApiFault
from batchgen.mock.files import serve_file
from batchgen.mock.requestlog import by_endpoint

Handler = Callable[[web.Request, Emulator, str], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Who is asking: (the key, or "", and None) or ("", why not).
Check = Callable[[web.Request, Emulator], tuple[str, str | None]]

_SCHEMES = {"any": ("key", "bearer"), "key": ("key",), "bearer": ("bearer",)}
# What fal answers a submit with a key whose account ran out of credit. It can no longer
# start jobs; reading and cancelling its own (and uploads) are assumed to work still.
LOCKED = (
    "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."
)
_INGRESS_503 = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def authenticate(header: str | None, config: MockConfig) -> tuple[str, str | None]:
    """``(key, None)`` for an accepted Authorization header, else ``("", reason)``."""
    if not header:
        return "", "Missing Authorization header"
    scheme, _, token = header.partition(" ")
    allowed = _SCHEMES[config.auth_scheme]
    if scheme.lower() not in allowed:
        expected = " or ".join(s.capitalize() for s in allowed)
        return "", f"Unsupported authorization scheme {scheme!r}; use {expected}"
    token = token.strip()
    if not token:
        return "", "Empty API key"
    if config.api_keys and token not in config.api_keys:
        return "", "Invalid API key"
    return token, None


def _ingress_answer(fault: ApiFault, config: MockConfig) -> web.Response:
    if fault is ApiFault.INGRESS_503:
        # Like nginx: HTML naming it, and no x-fal-request-id (clients tell ingress errors so).
        return web.Response(
            status=503, text=_INGRESS_503, content_type="text/html", headers={"Server": "nginx"}
        )
    headers = {}
    if fault is ApiFault.RATE_LIMIT_RETRY_AFTER:
        # Retry-After carries whole seconds; a tiny time scale rounds it down to "0".
        headers["Retry-After"] = str(round(config.scaled(config.retry_after)))
    return answer({"detail": "Rate limit exceeded"}, 429, headers)


def _hang_up(request: web.Request, emu: Emulator, route: str, label: str) -> web.Response:
    emu.stats.record(route, label)
    if request.transport is not None:
        request.transport.close()
    # Never written: aiohttp finds the transport closed and drops the answer quietly.
    return web.Response(status=204)


def api_key(request: web.Request, emu: Emulator) -> tuple[str, str | None]:
    return authenticate(request.headers.get("Authorization"), emu.config)


def key_if_any(request: web.Request, emu: Emulator) -> tuple[str, str | None]:
    """fal's model API answers without a key too (at a lower rate); a wrong key is refused."""
    if "Authorization" not in request.headers:
        return "", None
    return api_key(request, emu)


def storage_token(request: web.Request, emu: Emulator) -> tuple[str, str | None]:
    return "", emu.storage.token_problem(request.headers.get("Authorization"))


def anyone(request: web.Request, emu: Emulator) -> tuple[str, str | None]:
    return "", None


def api_route(route: str, handler: Handler, check: Check = api_key) -> Route:
    """Wrap ``handler`` with ingress faults, auth (``check``) and per-route statistics."""

    async def serve(request: web.Request) -> web.StreamResponse:
        emu = request.app[EMULATOR]
        decision = emu.faults.api()
        if decision.slow:
            emu.stats.faults["slow"] += 1
            await asyncio.sleep(emu.config.scaled(emu.config.slow_delay))
        fault = decision.fault
        if fault is ApiFault.RESET:
            emu.stats.faults["reset"] += 1
            return _hang_up(request, emu, route, "reset")
        response: web.StreamResponse
        if fault is not None:
            emu.stats.faults[fault.value] += 1
            response = _ingress_answer(fault, emu.config)
        else:
            key, problem = check(request, emu)
            if problem is not None:
                response = answer({"detail": problem}, 401)
            elif route == "submit" and key in emu.config.locked_keys:
                emu.stats.key_requests[key][route] += 1
                response = answer({"detail": LOCKED}, 403)
            else:
                if key:
                    emu.stats.key_requests[key][route] += 1
                try:
                    response = await handler(request, emu, key)
                except routes.Dropped:
                    return _hang_up(request, emu, route, "dropped")
        emu.stats.record(route, response.status)
        return response

    serve.__name__ = serve.__qualname__ = f"{route}_route"
    return serve


async def _stats(request: web.Request) -> web.Response:
    return answer(request.app[EMULATOR].snapshot())


async def _reset(request: web.Request) -> web.Response:
    request.app[EMULATOR].reset()
    return answer({"status": "RESET"})


async def _config(request: web.Request) -> web.Response:
    return answer(request.app[EMULATOR].config.describe())


async def _set_config(request: web.Request) -> web.Response:
    config = request.app[EMULATOR].config
    try:
        changes = json.loads(await request.read())
    except ValueError:
        changes = None
    if not isinstance(changes, dict):
        return answer({"detail": "the body must be a JSON object of settings"}, 400)
    try:
        config.update(changes)
    except UsageError as error:
        return answer({"detail": str(error)}, 400)
    return answer(config.describe())


async def _shutdown(app: web.Application) -> None:
    # Open status streams would hold the shutdown for their whole keep-alive loop.
    app[EMULATOR].queue.close()


def _storage_routes(add: web.UrlDispatcher) -> None:
    """fal's storage routes (see ``storage_routes``), before the submit route takes any POST."""
    s = storage_routes
    add.add_post("/storage/auth/token", api_route("storage_token", s.token))
    add.add_post("/storage/upload/initiate", api_route("storage_initiate", s.initiate))
    add.add_put("/storage/put/{upload_id}", api_route("storage_put", s.put, anyone))
    add.add_post(
        "/storage/upload/initiate-multipart",
        api_route("storage_initiate", s.initiate_multipart),
    )
    js = "/storage/multipart/{upload_id}"
    add.add_put(js + "/{part}", api_route("storage_part", s.js_part, anyone))
    add.add_post(js + "/complete", api_route("storage_complete", s.js_complete, anyone))
    add.add_post("/files/upload", api_route("storage_upload", s.upload, storage_token))
    add.add_post(
        "/files/upload/multipart", api_route("storage_multipart", s.multipart, storage_token)
    )
    multipart = "/files/up/{file_id}/{name}/multipart/{upload_id}"
    add.add_put(multipart + "/{part}", api_route("storage_part", s.part, storage_token))
    add.add_post(multipart + "/complete", api_route("storage_complete", s.complete, storage_token))
    add.add_get("/files/up/{file_id}/{name}", s.serve_upload)


def make_app(config: MockConfig) -> web.Application:
    """The emulator as an aiohttp application; ``app[EMULATOR]`` is its state."""
    app = web.Application()
    app[EMULATOR] = Emulator(config)
    add = app.router
    add.add_get("/_mock/stats", _stats)
    add.add_get("/_mock/config", _config)
    add.add_post("/_mock/config", _set_config)
    add.add_post("/_mock/reset", _reset)
    add.add_get("/files/{request_id}/{name}", serve_file)
    _storage_routes(add)
    add.add_get("/v1/models", api_route("models", routes.models, key_if_any))
    add.add_get("/v1/models/pricing", api_route("pricing", routes.pricing))
    add.add_get("/v1/models/requests/by-endpoint", api_route("request_log", by_endpoint))
    requests = "/{owner_app:.+}/requests/{request_id}"
    add.add_get(requests + "/status/stream", api_route("stream", routes.stream))
    add.add_get(requests + "/status", api_route("status", routes.status))
    add.add_put(requests + "/cancel", api_route("cancel", routes.cancel))
    add.add_get(requests, api_route("result", routes.result))
    add.add_post("/{endpoint:.+}", api_route("submit", routes.submit))
    app.on_shutdown.append(_shutdown)
    return app
