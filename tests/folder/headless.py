"""Drive headless Chromium over its DevTools pipe: open a page, run script in it, close.

``--remote-debugging-pipe`` makes Chromium read DevTools commands from fd 3 and write answers to
fd 4, each a JSON message ended by a NUL byte: no port, no network, no extra dependency. A
``sh`` wrapper hands it our pipes as those two descriptors.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-pipe",
]


# Our two pipes arrive as stdin and stdout; Chromium gets them as fds 3 and 4.
RELAY = ["sh", "-c", 'exec "$@" 3<&0 4>&1 0</dev/null 1>/dev/null', "sh"]


class Browser:
    """One headless Chromium with one page; ``evaluate`` runs script in it."""

    def __init__(self, chromium: str, profile: Path, *, timeout: float = 60.0) -> None:
        self.timeout = timeout
        commands_r, self._commands = os.pipe()
        self._answers, answers_w = os.pipe()
        self._proc = subprocess.Popen(
            [*RELAY, chromium, *FLAGS, f"--user-data-dir={profile}"],
            stdin=commands_r,
            stdout=answers_w,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_r)
        os.close(answers_w)
        self._buffer = b""
        self._next = 0
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attach = {"targetId": target, "flatten": True}
        self._session = self._call("Target.attachToTarget", attach)["sessionId"]
        self._call("Page.enable", session=True)

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event (its scripts have run by then)."""
        self._call("Page.navigate", {"url": url}, session=True)
        self._wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` evaluated in the page."""
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        answer = self._call("Runtime.evaluate", params, session=True)
        if "exceptionDetails" in answer:
            raise AssertionError(f"script failed in the page: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def close(self) -> None:
        try:
            self._send("Browser.close", {})
            self._proc.wait(timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        finally:
            os.close(self._commands)
            os.close(self._answers)

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the pipe ------------------------------------------------------------------------------

    def _send(self, method: str, params: dict[str, Any], *, session: bool = False) -> int:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        return self._next

    def _call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = False
    ) -> dict[str, Any]:
        wanted = self._send(method, params or {}, session=session)
        while True:
            message = self._read()
            if message.get("id") == wanted:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def _wait_event(self, method: str) -> None:
        while self._read().get("method") != method:
            pass

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._answers], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._answers, 65536)
            if not chunk:
                raise EOFError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message
