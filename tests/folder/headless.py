"""Drive headless Chromium over its DevTools pipe: open a page, run script in it, close.

``--remote-debugging-pipe`` makes Chromium read DevTools commands from fd 3 and write answers to
fd 4, each a JSON message ended by a NUL byte: no port, no network, no extra dependency. A
``sh`` wrapper hands it our pipes as those two descriptors.
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import time
from collections.abc import Callable
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
        self._events: list[dict[str, Any]] = []  # events read while waiting for an answer
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attach = {"targetId": target, "flatten": True}
        self._session = self._call("Target.attachToTarget", attach)["sessionId"]
        self._call("Page.enable", session=True)

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event (its scripts have run by then)."""
        self._events.clear()
        self._call("Page.navigate", {"url": url}, session=True)
        self._wait_event("Page.loadEventFired")

    def reopen_until(self, url: str, expression: str, done: Callable[[Any], bool]) -> Any:
        """Load ``url`` until ``expression``'s value satisfies ``done`` (or ``timeout``); that
        value, or the last one. For what a page stored just before (localStorage reaches the
        browser by a channel of its own: a page loaded at once may not see it yet)."""
        deadline = time.monotonic() + self.timeout
        while True:
            self.open(url)
            value = self.evaluate(expression)
            if done(value) or time.monotonic() >= deadline:
                return value

    def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` evaluated in the page."""
        params = {
            "expression": expression,
            "returnByValue": True,
            "awaitPromise": True,
            "userGesture": True,
        }
        answer = self._call("Runtime.evaluate", params, session=True)
        if "exceptionDetails" in answer:
            raise AssertionError(f"script failed in the page: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def press(self, key: str) -> None:
        """Type ``key`` (a ``KeyboardEvent.key``: ``j``, ``1``, `` ``, ``ArrowDown``) as a user
        would: the page sees keydown and keyup from the browser itself."""
        named = {" ": ("Space", 32), "ArrowDown": ("ArrowDown", 40), "ArrowUp": ("ArrowUp", 38)}
        if key in named:
            code, number = named[key]
        else:
            code, number = f"Digit{key}" if key.isdigit() else f"Key{key.upper()}", ord(key.upper())
        event = {"key": key, "code": code, "windowsVirtualKeyCode": number}
        text = {"text": key} if len(key) == 1 else {}
        self._call("Input.dispatchKeyEvent", {"type": "keyDown", **event, **text}, session=True)
        self._call("Input.dispatchKeyEvent", {"type": "keyUp", **event}, session=True)

    def download(self, expression: str, folder: Path) -> Path:
        """Run ``expression`` (which starts a download), let the browser save the file in
        ``folder`` and return it once complete."""
        behaviour = {"behavior": "allow", "downloadPath": str(folder), "eventsEnabled": True}
        self._call("Browser.setDownloadBehavior", behaviour)
        self.evaluate(expression)
        begun = self._wait_event("Browser.downloadWillBegin")
        guid = begun["params"]["guid"]
        while True:
            progress = self._wait_event("Browser.downloadProgress")["params"]
            if progress["guid"] == guid and progress["state"] in ("completed", "canceled"):
                break
        assert progress["state"] == "completed", progress
        return folder / begun["params"]["suggestedFilename"]

    def resize(self, width: int, height: int) -> None:
        """Show the page in a ``width`` x ``height`` window."""
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self._call("Emulation.setDeviceMetricsOverride", metrics, session=True)

    def screenshot(self, path: Path) -> None:
        """Save a PNG of the window's view of the page."""
        shot = self._call("Page.captureScreenshot", {"format": "png"}, session=True)
        path.write_bytes(base64.b64decode(shot["data"]))

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
            if "method" in message:
                self._events.append(message)

    def _wait_event(self, method: str) -> dict[str, Any]:
        """The first event ``method`` not waited for yet, read earlier or now."""
        for i, event in enumerate(self._events):
            if event["method"] == method:
                return self._events.pop(i)
        while True:
            message = self._read()
            if message.get("method") == method:
                return message
            if "method" in message:
                self._events.append(message)

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
