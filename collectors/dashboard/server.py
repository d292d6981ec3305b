"""The dashboard's HTTP server: asyncio streams around the sans-IO `http` module.

Routes: ``/`` (the page, with the current state and topology embedded so its first paint shows the
network without another request) and ``/static/FILE`` (from the package), ``/api/topology``, ``/api/state``,
``/api/series``, ``/api/delivery``, ``/api/alarms``, ``/api/health`` (JSON) and ``/api/events`` (server-sent events:
a ``snapshot`` of the state, then a ``delta`` at most once a second with the rows that changed).
Anything else is a JSON 404; bad parameters a JSON 400; an unexpected failure a JSON 500 and one
log line, never a traceback on the wire.

Slow clients cannot hold the collector up: each event stream has a queue of a few events, and a
client that lets it fill is disconnected (its browser reconnects and gets a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from importlib import resources
from typing import Any

from .api import DashboardData, delta
from .http import (
    MAX_HEAD,
    SSE_HEAD,
    HttpError,
    Request,
    Response,
    error_response,
    is_loopback_host,
    json_response,
    parse_request,
    sse_event,
)

log = logging.getLogger("qstrata.collectors.dashboard")

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
INITIAL_MARK = b"<!--initial-state-->"
"""Where index.html takes the embedded ``{"state", "topology"}`` document."""
READ_TIMEOUT = 10.0
CLIENT_QUEUE = 4
MAX_STREAMS = 32


def embed_json(page: bytes, doc: Any) -> bytes:
    """`page` with `doc` in a ``<script id="initial-state" type="application/json">`` at
    `INITIAL_MARK`; every ``<`` is escaped, so no string in it can end the script element."""
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return page.replace(INITIAL_MARK, b'<script id="initial-state" type="application/json">' + text.encode()
                        + b"</script>", 1)


def _static_files() -> dict[str, tuple[bytes, str]]:
    """Every file of static/ by name, read once: the set of servable names is fixed, so no path
    from a request ever reaches the file system."""
    files = {}
    root = resources.files("qstrata.collectors.dashboard") / "static"
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in CONTENT_TYPES:
            files[entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    return files


class DashboardServer:
    def __init__(self, data: DashboardData, host: str = "127.0.0.1", port: int = 0, interval: float = 1.0) -> None:
        self.data = data
        self.host = host
        self.port = port
        self.interval = interval
        self.static = _static_files()
        self.loopback_only = host == "localhost" or host == "::1" or host.startswith("127.")
        self.requests = 0
        self.errors = 0
        self._server: asyncio.AbstractServer | None = None
        self._streams: set[asyncio.Queue[bytes | None]] = set()
        self._state: dict[str, Any] | None = None
        self._ticker: asyncio.Task | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ticker = asyncio.create_task(self._tick(), name="dashboard-events")
        log.info("dashboard on %s", self.url)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for q in list(self._streams):
            self._end(q)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        self.data.close()

    def health(self) -> dict[str, Any]:
        return {"endpoint": self.url, "requests": self.requests, "errors": self.errors, "streams": len(self._streams)}

    # ---------------------------------------------------------------- events
    def _end(self, q: asyncio.Queue[bytes | None]) -> None:
        self._streams.discard(q)
        with contextlib.suppress(asyncio.QueueFull):
            q.put_nowait(None)

    async def _tick(self) -> None:
        """Once per interval while anyone listens: the state, diffed against the last one sent."""
        while True:
            await asyncio.sleep(self.interval)
            if not self._streams:
                self._state = None
                continue
            try:
                state = self.data.state()
            except Exception:  # a bug in a view must not end the stream task
                log.exception("dashboard: state failed")
                continue
            change = delta(self._state, state)
            self._state = state
            if change is None:
                continue
            event = sse_event("delta", change)
            for q in list(self._streams):
                try:
                    q.put_nowait(event)
                except asyncio.QueueFull:
                    log.info("dashboard: an event stream fell behind; closed (the browser reconnects)")
                    self._streams.discard(q)

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        if len(self._streams) >= MAX_STREAMS:
            writer.write(error_response(503, f"too many event streams (at most {MAX_STREAMS})").to_bytes())
            return
        q: asyncio.Queue[bytes | None] = asyncio.Queue(CLIENT_QUEUE)
        writer.write(SSE_HEAD + b"retry: 2000\n\n" + sse_event("snapshot", self.data.state()))
        await writer.drain()
        self._streams.add(q)
        try:
            while True:
                try:
                    event = await asyncio.wait_for(q.get(), 15)
                except TimeoutError:
                    event = b": keep-alive\n\n"  # lets both ends notice a dead connection
                if event is None:
                    return
                writer.write(event)
                await writer.drain()
        finally:
            self._streams.discard(q)

    # ---------------------------------------------------------------- requests
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests += 1
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
                request = parse_request(head[:-4])
                if self.loopback_only and not is_loopback_host(request.headers.get("host", "localhost")):
                    raise HttpError(403, f"Host {request.headers.get('host')!r} is not this machine's loopback "
                                         "name (the dashboard listens on loopback)")
                if request.path == "/api/events":
                    await self._stream(writer)
                    return
                response = await self._route(request)
            except HttpError as exc:
                request = None
                response = error_response(exc.status, exc.message)
            except asyncio.LimitOverrunError:
                request = None
                response = error_response(413, f"request head larger than {MAX_HEAD} bytes")
            except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                return
            except Exception as exc:
                log.exception("dashboard: request failed")
                self.errors += 1
                request = None
                response = error_response(500, f"{type(exc).__name__}: {exc}")
            writer.write(response.to_bytes(include_body=request is None or request.method != "HEAD"))
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _route(self, request: Request) -> Response:
        path = request.path
        if path in ("/", "/index.html"):
            body, ctype = self.static["index.html"]
            page = embed_json(body, {"state": self.data.state(), "topology": self.data.topology()})
            return Response(200, page, ctype, {"Cache-Control": "no-store"})
        if path.startswith("/static/"):
            found = self.static.get(path[len("/static/"):])
            if found is None:
                raise HttpError(404, f"no such file: {path}")
            return Response(200, found[0], found[1], {"Cache-Control": "no-cache"})
        if path == "/api/state":
            return json_response(self.data.state())
        if path == "/api/topology":
            return json_response(self.data.topology())
        if path == "/api/series":
            return json_response(await self.data.series(request))
        if path == "/api/delivery":
            return json_response(await self.data.delivery(request))
        if path == "/api/alarms":
            return json_response(await self.data.alarms(request))
        if path == "/api/health":
            return json_response(self.data.health())
        raise HttpError(404, f"no such endpoint: {path} (see /api/state, /api/topology, /api/series, "
                             "/api/delivery, /api/alarms, /api/health, /api/events)")
