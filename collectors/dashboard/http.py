"""What the dashboard's answers are made of, free of any server: its errors (`HttpError`, a status
and a one-line reason, answered as JSON), the query parameters of a request, the loopback check
on ``Host``, JSON bodies and server-sent events. The server (`server.py`) is aiohttp's, as for
the KME's ETSI GS QKD 014 API: one HTTP library for every surface.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_HEAD = 16 * 1024
"""Bytes of a request line or header accepted (browsers send ~1 KiB)."""

REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           413: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Request:
    """The part of a request the API reads: its path and query parameters."""

    method: str
    path: str
    """Percent-decoded path without the query."""
    query: Mapping[str, list[str]]

    def param(self, name: str, default: str | None = None) -> str | None:
        """A query parameter given at most once (twice is a 400: which one would be meant?)."""
        values = self.query.get(name)
        if not values:
            return default
        if len(values) > 1:
            raise HttpError(400, f"query parameter {name!r} given {len(values)} times")
        return values[0]


def is_loopback_host(header: str) -> bool:
    """Whether a Host header names this machine by a loopback name or address (``localhost:8765``,
    ``127.0.0.1``, ``[::1]:80``). A dashboard bound to loopback answers only those: a web page
    elsewhere that rebinds its own DNS name to 127.0.0.1 cannot read the telemetry through the
    operator's browser."""
    host = header.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761 6.3: never leaves the machine
        return True
    try:  # an address, read as one: a name such as 127.0.0.1.evil.example is somebody's DNS
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def json_body(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def error_doc(status: int, message: str) -> dict[str, Any]:
    return {"error": REASONS.get(status, "Error"), "status": status, "message": message}


def sse_event(event: str, data: Any) -> bytes:
    """One event; `data` as compact JSON on one line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), allow_nan=False)}\n\n".encode()
