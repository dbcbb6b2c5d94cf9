"""Headless Chromium driven over the DevTools protocol, on a pipe (no port, no network).

    with Browser() as b:
        load = b.open(Path("report.html"))        # seconds from navigation to the load event
        b.evaluate("document.title"), b.screenshot(), b.requests

Chromium reads protocol messages from fd 3 and writes to fd 4
(--remote-debugging-pipe), each a JSON object ended by a NUL byte. Used by the
tests of --report-html, by `make docs-screenshot` and by the benchmark.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

BINARY = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars"]


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(self, width: int = 1200, height: int = 900, scale: float = 1,
                 timeout: float = 60):
        self.width, self.height, self.scale, self.timeout = width, height, scale, timeout
        self.requests: list[str] = []         # every URL the page asked for
        self._next = 0
        self._buffer = b""
        self._events: list[dict] = []

    # -- the process and the pipe ------------------------------------------------
    def __enter__(self) -> "Browser":
        if not os.path.exists(BINARY):
            raise BrowserError(f"{BINARY} is missing: run scripts/report-deps.sh")
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The pipe ends become fds 3 and 4 of Chromium through the shell's redirections
        # (copied above 10 first, so that they cannot collide with 3 and 4 themselves).
        r, w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w))
        os.close(to_browser_r)
        os.close(from_browser_w)
        args = [*FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-pipe",
                f"--window-size={self.width},{self.height}", "about:blank"]
        self._proc = subprocess.Popen(
            ["/bin/bash", "-c", f'exec "$0" "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-', BINARY, *args],
            pass_fds=(r, w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(r)
        os.close(w)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.call("Target.attachToTarget",
                                  {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Network.enable"):
            self.call(method, session=True)
        # the page's own Content-Security-Policy would hide requests it tries: see them all
        self.call("Page.setBypassCSP", {"enabled": True}, session=True)
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": self.width, "height": self.height, "deviceScaleFactor": self.scale,
            "mobile": False},
            session=True)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._send({"id": -1, "method": "Browser.close"})
            self._proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _send(self, message: dict) -> None:
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise BrowserError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed the pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if message.get("method") == "Network.requestWillBeSent":
            self.requests.append(message["params"]["request"]["url"])
        return message

    def call(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def _wait_event(self, name: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self._events):
                if event.get("method") == name:
                    return self._events.pop(i)
            self._events.append(self._receive(deadline))

    # -- what the tests use ------------------------------------------------------
    def open(self, path: Path) -> float:
        """Load a file; seconds from the navigation to the page's load event."""
        self._events.clear()
        start = time.monotonic()
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session=True)
        self._wait_event("Page.loadEventFired")
        return time.monotonic() - start

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                           session=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, clip: dict | None = None, scale: float = 1) -> bytes:
        """A PNG of the viewport, or of `clip` (x, y, width, height in page pixels)."""
        params: dict = {"format": "png"}
        if clip:
            params.update(clip={**clip, "scale": scale}, captureBeyondViewport=True)
        return base64.b64decode(self.call("Page.captureScreenshot", params, session=True)["data"])
