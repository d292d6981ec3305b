"""Webhook action: POST the alarm as JSON to a URL (http or https), with a timeout.

Body: ``{"alarm": <qstrata-telemetry alarm entry, JSON-IETF>, "rule": ..., "labels": {...}}``.
aiohttp's client: the one HTTP library of the project (the dashboard, the Prometheus endpoint,
the KME's ETSI GS QKD 014 API), one request per session.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp

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
        except (OSError, ValueError, aiohttp.ClientError) as exc:
            raise ActionError(f"POST {self.url}: {exc or type(exc).__name__}") from None
        if not 200 <= status < 300:
            raise ActionError(f"POST {self.url}: HTTP {status}")
        return f"POST {self.url}: HTTP {status}"


async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST `body` as application/json; returns the HTTP status code."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    async with aiohttp.ClientSession() as session, session.post(
            url, data=body, headers={"Content-Type": "application/json", "User-Agent": "qstrata-collector", **headers},
            allow_redirects=False) as response:
        return response.status
