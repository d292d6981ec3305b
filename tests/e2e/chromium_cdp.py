"""Drive Debian's headless chromium over the DevTools protocol on a pipe (--remote-debugging-pipe:
JSON messages separated by NUL on file descriptors 3 and 4), with no client library: evaluate
JavaScript in the page until a condition holds, then take a screenshot. Waiting on the page's
own state is what makes a browser test of a live page reliable (a fixed --virtual-time-budget
never ends while an event stream is open)."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio"]


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless chromium with a fresh profile, showing `url` in a `width` x `height` window."""

    def __init__(self, url: str, width: int = 1400, height: int = 1000, binary: str | None = None) -> None:
        self.profile = tempfile.mkdtemp(prefix="qstrata-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # the child needs them as fds 3 and 4 exactly; move ours out of the way first
        high = [os.dup2(fd, 100 + i) for i, fd in enumerate((to_browser_r, from_browser_w))]
        os.close(to_browser_r)
        os.close(from_browser_w)

        def child() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        cmd = [binary or find_chromium() or "chromium", *FLAGS, f"--user-data-dir={self.profile}",
               f"--window-size={width},{height}", "--remote-debugging-pipe", url]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, pass_fds=(3, 4), preexec_fn=child)
        for fd in high:
            os.close(fd)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        """Protocol events received so far (``{"method": ..., "params": ...}``), oldest first."""
        self.session = self._attach()

    def _send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        return self._id

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 20.0) -> dict[str, Any]:
        want = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "method" in msg and "id" not in msg:
                    self.events.append(msg)
                    continue
                if msg.get("id") == want:
                    if "error" in msg:
                        raise RuntimeError(f"{method}: {msg['error']}")
                    return msg.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"chromium did not answer {method} within {timeout} s")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buf += chunk

    def _attach(self) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pages = [t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page"]
            if pages:
                return self.call("Target.attachToTarget", {"targetId": pages[0]["targetId"], "flatten": True})["sessionId"]
            time.sleep(0.1)
        raise TimeoutError("chromium opened no page")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        """Load `url` in the page (start the browser on about:blank to set things up first)."""
        self.call("Page.navigate", {"url": url}, self.session)

    def hold_requests(self, url_pattern: str) -> None:
        """Keep every request matching `url_pattern` (``*/api/events*``) waiting unanswered until
        `release_requests`: how a test sees the page as it is before that response arrives."""
        self.call("Fetch.enable", {"patterns": [{"urlPattern": url_pattern, "requestStage": "Request"}]}, self.session)

    def release_requests(self) -> int:
        """Let the held requests go on, stop holding new ones; returns how many were held."""
        self.call("Runtime.evaluate", {"expression": "1"}, self.session)  # flush pending events
        paused = [e for e in self.events if e["method"] == "Fetch.requestPaused"]
        self.events = [e for e in self.events if e["method"] != "Fetch.requestPaused"]
        for event in paused:
            self.call("Fetch.continueRequest", {"requestId": event["params"]["requestId"]}, self.session)
        self.call("Fetch.disable", {}, self.session)
        return len(paused)

    def resize(self, width: int, height: int, mobile: bool = False) -> None:
        """Show the page in a `width` x `height` CSS-pixel viewport (`mobile`: as a phone does,
        honouring the page's viewport meta tag)."""
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": mobile}, self.session)

    def wait_for(self, expression: str, timeout: float) -> Any:
        """Evaluate until the value is truthy; returns it (or the last falsy value at the deadline)."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        return value

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png"}, self.session)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
