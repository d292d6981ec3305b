"""Just enough HTTP/1.1 for the dashboard, sans-IO: request head bytes in, `Request` out;
`Response` -> bytes. GET and HEAD only, no request bodies, one request per connection
(`Connection: close`), so there is no keep-alive or chunked state to get wrong.

Bad input is an `HttpError` carrying the status and a one-line reason, answered as JSON by the
server: a malformed request is never a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

MAX_HEAD = 16 * 1024
"""Bytes of request line + headers accepted (browsers send ~1 KiB)."""

REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           413: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    """Percent-decoded path without the query."""
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Lower-cased names."""

    def param(self, name: str, default: str | None = None) -> str | None:
        """A query parameter given at most once (twice is a 400: which one would be meant?)."""
        values = self.query.get(name)
        if not values:
            return default
        if len(values) > 1:
            raise HttpError(400, f"query parameter {name!r} given {len(values)} times")
        return values[0]


def parse_request(head: bytes) -> Request:
    """The request line and headers (everything up to the blank line)."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise HttpError(400, "undecodable request") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, "malformed request line")
    method, target, _version = parts
    if method not in ("GET", "HEAD"):
        raise HttpError(405, f"method {method} not allowed (GET only)")
    if not target.startswith("/"):
        raise HttpError(400, "request target must be a path")
    split = urlsplit(target)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise HttpError(400, "malformed header line")
        headers[name.strip().lower()] = value.strip()
    try:
        query = parse_qs(split.query, keep_blank_values=True, strict_parsing=False, max_num_fields=50)
    except ValueError as exc:
        raise HttpError(400, f"bad query string: {exc}") from None
    return Request(method, unquote(split.path), query, headers)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def head(self, length: int | None = None) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Error')}",
                 f"Content-Type: {self.content_type}",
                 f"Content-Length: {len(self.body) if length is None else length}",
                 "Connection: close", "X-Content-Type-Options: nosniff"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def to_bytes(self, include_body: bool = True) -> bytes:
        return self.head() + (self.body if include_body else b"")


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
    return host in ("localhost", "::1") or host.endswith(".localhost") or host.startswith("127.")


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(doc, separators=(",", ":"), allow_nan=False).encode(),
                    headers={"Cache-Control": "no-store"})


def error_response(status: int, message: str) -> Response:
    return json_response({"error": REASONS.get(status, "Error"), "status": status, "message": message}, status)


SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
            b"Connection: close\r\nX-Accel-Buffering: no\r\n\r\n")
"""A server-sent events stream: no length, ends when either side closes."""


def sse_event(event: str, data: Any) -> bytes:
    """One event; `data` as compact JSON on one line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), allow_nan=False)}\n\n".encode()
