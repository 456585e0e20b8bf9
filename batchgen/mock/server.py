"""Starting and stopping the emulator: in a running event loop, in a thread, or until Ctrl-C.

Out of file descriptors, asyncio's accept loop logs a traceback for every connection it cannot
accept (and retries a second later): ``quiet_accept_errors`` makes that one warning.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from batchgen.errors import open_files_error, too_many_open_files
from batchgen.mock.app import make_app
from batchgen.mock.config import MockConfig
from batchgen.mock.emulator import EMULATOR, Emulator

log = logging.getLogger("batchgen.mock")

# In-flight answers get this long at shutdown; open status streams are released before.
_SHUTDOWN_TIMEOUT = 2.0


class MockServer:
    """A fal-compatible queue emulator listening on ``host:port`` (port 0: a free one).

    Use as ``async with MockServer(config) as server:``; inside, ``server.base_url`` is the
    API's ``http(s)://host:port`` (https with ``ssl_context``), ``server.stats()`` is the same
    dict as ``GET /_mock/stats``, and ``server.config`` is the live config.
    """

    def __init__(
        self,
        config: MockConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config if config is not None else MockConfig()
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._app = make_app(self.config)
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._runner is not None else "stopped"
        return f"<MockServer {where} {self.emulator.queue!r}>"

    @property
    def emulator(self) -> Emulator:
        """The shared state behind the routes (queue, stats, fault dice)."""
        return self._app[EMULATOR]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (or https), valid once started."""
        if self._runner is None:
            raise RuntimeError("the mock server is not started")
        scheme = "https" if self.ssl_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def stats(self) -> dict[str, Any]:
        """What the server saw so far: the dict ``GET /_mock/stats`` answers."""
        return self.emulator.snapshot()

    def reset(self) -> None:
        """Forget every job and counter; the fault sequences start again from the seed."""
        self.emulator.reset()

    async def start(self) -> None:
        """Bind and start answering; fills in ``port`` when it was 0."""
        if self._runner is not None:
            return
        runner = web.AppRunner(
            self._app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening, end open streams and cancel every job timer."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Start if needed and serve until cancelled (then stop)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    @classmethod
    def start_in_thread(
        cls,
        config: MockConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> MockThread:
        """Start a server on its own event loop in a daemon thread; returns once it listens."""
        return MockThread(cls(config, host=host, port=port, ssl_context=ssl_context))


class MockThread:
    """A MockServer running in a background thread: ``.base_url``, ``.stats()``, ``.stop()``.

    Also a context manager. ``config`` is shared with the thread: plain attribute changes
    take effect on the next request.
    """

    def __init__(self, server: MockServer) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="batchgen-mock", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._errors:
            self._thread.join()
            raise self._errors[0]

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self._errors.append(exc)
            self._started.set()
            self._loop.close()
            return
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self.server.stop())
            self._loop.close()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def config(self) -> MockConfig:
        return self.server.config

    def stats(self) -> dict[str, Any]:
        """The server's statistics, read on its own loop."""
        return self._call(self.server.stats)

    def _call(self, func: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        async def call() -> dict[str, Any]:
            return func()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()

    def stop(self) -> None:
        """Stop the server and wait for its thread; calling it twice is harmless."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    config: MockConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    ssl_context: ssl.SSLContext | None = None,
    on_ready: Callable[[str], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> None:
    """Serve in the current thread until interrupted (KeyboardInterrupt propagates).

    ``on_ready(base_url)`` is called once the server listens, e.g. to print where;
    ``notify`` once if connections are turned away for want of file descriptors.
    """

    async def main() -> None:
        quiet_accept_errors(asyncio.get_running_loop(), notify or log.warning)
        server = MockServer(config, host=host, port=port, ssl_context=ssl_context)
        await server.start()
        if on_ready is not None:
            on_ready(server.base_url)
        await server.serve_forever()

    asyncio.run(main())


def quiet_accept_errors(
    loop: asyncio.AbstractEventLoop, say: Callable[[str], None]
) -> Callable[[], None]:
    """Install on ``loop`` a handler that turns a server's ``accept()`` failing for want of
    descriptors into one ``say`` (and a log line for each); every other error goes to the
    handler that was there. Returns a function restoring that handler."""
    before = loop.get_exception_handler()
    said = False

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        nonlocal said
        exc = context.get("exception")
        message = str(context.get("message", ""))
        code = None if exc is None else open_files_error(exc)
        if code is not None and "accept" in message:
            log.warning("a connection was not accepted: %s", too_many_open_files(code))
            if not said:
                said = True
                say(f"the emulator turns connections away: {too_many_open_files(code)}")
            return
        if isinstance(exc, ValueError) and "_start_serving" in message:
            # asyncio's accept retry, a second after EMFILE, on a server closed meanwhile.
            log.debug("a closed server's accept retry: %s", exc)
            return
        if before is not None:
            before(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    return lambda: loop.set_exception_handler(before)
