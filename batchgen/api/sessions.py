"""The one place HTTP sessions are made: for the API (and its storage), and for file hosts.

Every session reaches hosts as its ``Network`` says (``batchgen.api.network``): a middleware
picks the proxy of each request from its URL, redirects included, so ``NO_PROXY`` holds for a
file host a CDN redirects to as for the first one; TLS trusts the system's CAs and the
``--ca-bundle``. Sessions keep no cookies and never read ``~/.netrc`` (no ``trust_env``): the
only credentials a request carries are the ones its caller puts in it, and the proxy's, which
go to the proxy alone.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from yarl import URL

from batchgen.api.network import Network
from batchgen.errors import UsageError
from batchgen.version import __version__


def api_session(network: Network | None = None, **kwargs: Any) -> aiohttp.ClientSession:
    """A session for the queue API and its storage (callers add ``Authorization`` per
    request, and never follow redirects with it)."""
    return _session(network, **kwargs)


def file_session(network: Network | None = None, **kwargs: Any) -> aiohttp.ClientSession:
    """A session for file hosts: no Authorization, no cookies, no netrc; redirects are
    followed, each hop through its own proxy (or none)."""
    return _session(network, **kwargs)


def _session(network: Network | None, **kwargs: Any) -> aiohttp.ClientSession:
    network = network if network is not None else Network.from_env()
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ssl=network.ssl_context()),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": f"batchgen/{__version__}"},
        middlewares=(_through_proxy(network),),
        **kwargs,
    )


def _through_proxy(network: Network) -> aiohttp.ClientMiddlewareType:
    """A middleware sending each request through the proxy its URL calls for."""

    async def middleware(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        proxy = network.proxy_for(str(request.url))
        if proxy is not None:
            headers = None
            authorization = proxy.authorization
            if authorization is not None and request.is_ssl():  # on the CONNECT alone
                headers = {"Proxy-Authorization": authorization}
            elif authorization is not None:  # on the request the proxy forwards (it drops it)
                request.headers["Proxy-Authorization"] = authorization
            request.update_proxy(URL(proxy.url), None, headers)
        return await handler(request)

    return middleware


def authorization_header(authorization: str | None) -> dict[str, str]:
    """The header that carries ``authorization``; UsageError for one no header can carry
    (refused here, not half-way through a submit: see ``providers.connect``)."""
    if authorization is None:
        return {}
    if not all(" " <= c <= "~" for c in authorization):
        raise UsageError("the API key holds a control or non-ASCII character")
    return {"Authorization": authorization} if authorization else {}
