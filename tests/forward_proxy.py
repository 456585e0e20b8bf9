"""A small forward proxy on loopback for the network tests: absolute-form requests and CONNECT.

It alone knows where the names in ``hosts`` are (``api.example.invalid:80`` -> a loopback
port), so a client that ignores it cannot reach them. It records every request head it is
sent (``seen``): for an http URL the whole head (the proxy sees it all), for https only the
``CONNECT`` line and its headers (TLS runs end to end through the tunnel). With ``user`` and
``password`` it answers 407 to requests without them.

Each absolute-form request is forwarded on a connection of its own with ``Connection: close``
and answered with ``Connection: close``, so each request head is read here, however the client
pools its connections.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

_HOP = {b"proxy-authorization", b"proxy-connection", b"connection", b"keep-alive"}


@dataclass
class Seen:
    """One request head the proxy was sent."""

    method: str
    target: str  # http://host/path, or host:port for CONNECT
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    @property
    def host(self) -> str:
        if self.method == "CONNECT":
            return self.target
        parts = urlsplit(self.target)
        return f"{parts.hostname}:{parts.port or 80}"

    @property
    def path(self) -> str:
        return "" if self.method == "CONNECT" else urlsplit(self.target).path


class ForwardProxy:
    """``async with ForwardProxy({"api.example.invalid:80": port}) as proxy``: ``proxy.url``."""

    def __init__(
        self, hosts: dict[str, int], *, user: str | None = None, password: str | None = None
    ) -> None:
        self.hosts = hosts
        self.seen: list[Seen] = []
        self._auth = None
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self._auth = f"Basic {token}"
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a cancelled callback task would be logged with a traceback by asyncio
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line, *lines = head[:-4].split(b"\r\n")
        method, target, _ = line.decode().split(" ", 2)
        headers = [tuple(h.split(b":", 1)) for h in lines]
        named = {k.strip().lower().decode(): v.strip().decode() for k, v in headers}
        self.seen.append(Seen(method, target, named))
        if self._auth is not None and named.get("proxy-authorization") != self._auth:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n")
            writer.write(b"Proxy-Authenticate: Basic\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        where = target if method == "CONNECT" else Seen(method, target).host
        port = self.hosts.get(where)
        if port is None:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                return
            parts = urlsplit(target)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            kept = [(k, v) for k, v in headers if k.strip().lower() not in _HOP]
            out = [f"{method} {path} HTTP/1.1".encode()]
            out += [k + b":" + v for k, v in kept] + [b"Connection: close", b"", b""]
            up_writer.write(b"\r\n".join(out))
            length = int(named.get("content-length", "0"))
            if length:
                up_writer.write(await reader.readexactly(length))
            await up_writer.drain()
            answer = await up_reader.readuntil(b"\r\n\r\n")
            status, *answer_lines = answer[:-4].split(b"\r\n")
            kept_answer = [h for h in answer_lines if h.split(b":", 1)[0].lower() not in _HOP]
            writer.write(b"\r\n".join([status, *kept_answer, b"Connection: close", b"", b""]))
            await _pipe(up_reader, writer)
        finally:
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
