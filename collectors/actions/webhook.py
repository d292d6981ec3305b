"""Webhook action: POST the alarm as JSON to a URL (http or https), with a timeout.

Body: ``{"alarm": <qstrata-telemetry alarm entry, JSON-IETF>, "rule": ..., "labels": {...}}``.
A tiny HTTP/1.1 client on asyncio streams: one request per connection, no dependency.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

from ..model import Alarm
from . import ActionConfig, ActionError


class WebhookAction:
    def __init__(self, config: ActionConfig, resolve_target: Any = None) -> None:
        self.url = config.options["url"]
        self.timeout = float(config.options.get("timeout", 5.0))
        self.headers = dict(config.options.get("headers", {}))

    async def run(self, alarm: Alarm) -> str:
        body = json.dumps({"alarm": alarm.to_yang(), "rule": alarm.rule, "labels": dict(alarm.labels)}).encode()
        try:
            status = await asyncio.wait_for(post(self.url, body, self.headers), self.timeout)
        except TimeoutError:
            raise ActionError(f"POST {self.url}: no answer within {self.timeout:g} s") from None
        except (OSError, ValueError) as exc:
            raise ActionError(f"POST {self.url}: {exc}") from None
        if not 200 <= status < 300:
            raise ActionError(f"POST {self.url}: HTTP {status}")
        return f"POST {self.url}: HTTP {status}"


async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST `body` as application/json; returns the HTTP status code."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    context = ssl.create_default_context() if parts.scheme == "https" else None
    reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=context)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json",
                f"Content-Length: {len(body)}", "Connection: close", "User-Agent: qstrata-collector"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        status_line = await reader.readline()
        fields = status_line.split()
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
            raise ValueError(f"not an HTTP response: {status_line[:80]!r}")
        return int(fields[1])
    finally:
        writer.close()
