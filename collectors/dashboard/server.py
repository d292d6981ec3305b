"""The dashboard's HTTP server: aiohttp in the collector's event loop (the library the KME's ETSI
GS QKD 014 API uses), around the pure `http` and `api` modules.

Routes: ``/`` (the page, with the current state and topology embedded so its first paint shows the
network without another request) and ``/static/FILE`` (from the package), ``/api/topology``, ``/api/state``,
``/api/series``, ``/api/delivery``, ``/api/alarms``, ``/api/health`` (JSON) and ``/api/events`` (server-sent events:
a ``snapshot`` of the state, then a ``delta`` at most once a second with the rows that changed).
Anything else is a JSON 404, another method a JSON 405; bad parameters a JSON 400; an unexpected
failure a JSON 500 and one log line, never a traceback on the wire. A request aiohttp cannot parse
(a garbled request line, a header over 16 KiB) gets aiohttp's own 400 before any route sees it.

Slow clients cannot hold the collector up: the connections are bounded in number and time by
the KME's and RESTCONF's `ConnectionGuard` (a connection that sends no request head is closed
after `HEAD_TIMEOUT_S`, an idle keep-alive one after `IDLE_TIMEOUT_S`; an event stream is a
request in progress, so it is not idle); each event stream has a queue of a few events, and a
client that lets it fill is disconnected (its browser reconnects and gets a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web
from qstrata.bindings.wire.connections import ConnectionGuard, start_http

from .api import DashboardData, delta
from .http import MAX_HEAD, HttpError, Request, error_doc, is_loopback_host, json_body, sse_event

log = logging.getLogger("qstrata.collectors.dashboard")

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
INITIAL_MARK = b"<!--initial-state-->"
"""Where index.html takes the embedded ``{"state", "topology"}`` document."""
CLIENT_QUEUE = 4
MAX_STREAMS = 32
KEEPALIVE_S = 15.0
ENDPOINTS = ("/api/state, /api/topology, /api/series, /api/delivery, /api/alarms, /api/health, /api/events")


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


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json_body(doc), headers={"Content-Type": "application/json",
                                                                     "Cache-Control": "no-store"})


def _error(status: int, message: str) -> web.Response:
    return _json(error_doc(status, message), status)


class DashboardServer:
    def __init__(self, data: DashboardData, host: str = "127.0.0.1", port: int = 0, interval: float = 1.0,
                 guard: ConnectionGuard | None = None) -> None:
        self.data = data
        self.guard = guard or ConnectionGuard()
        self.host = host
        self.port = port
        self.interval = interval
        self.static = _static_files()
        self.loopback_only = host == "localhost" or host == "::1" or host.startswith("127.")
        self.requests = 0
        self.errors = 0
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._streams: dict[asyncio.Queue[bytes | None], asyncio.Task] = {}
        self._state: dict[str, Any] | None = None
        self._ticker: asyncio.Task | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        page = self._page
        for path, handler in (("/", page), ("/index.html", page), ("/static/{name}", self._static),
                              ("/api/state", self._api(lambda r: self.data.state())),
                              ("/api/topology", self._api(lambda r: self.data.topology())),
                              ("/api/series", self._api(self.data.series)),
                              ("/api/delivery", self._api(self.data.delivery)),
                              ("/api/alarms", self._api(self.data.alarms)),
                              ("/api/health", self._api(lambda r: self.data.health())),
                              ("/api/events", self._events)):
            app.router.add_get(path, handler)
        app.on_response_prepare.append(_nosniff)
        return app

    async def start(self) -> None:
        self._runner, self._server = await start_http(self._app(), self.host, self.port, self.guard,
                                                      max_line_size=MAX_HEAD, max_field_size=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ticker = asyncio.create_task(self._tick(), name="dashboard-events")
        log.info("dashboard on %s", self.url)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._server is not None:
            self._server.close()
        for q in list(self._streams):
            self._end(q)
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._runner.cleanup(), 2)
        self.data.close()

    def health(self) -> dict[str, Any]:
        return {"endpoint": self.url, "requests": self.requests, "errors": self.errors, "streams": len(self._streams)}

    # ---------------------------------------------------------------- events
    def _end(self, q: asyncio.Queue[bytes | None]) -> None:
        task = self._streams.pop(q, None)
        try:
            q.put_nowait(None)
        except asyncio.QueueFull:
            if task is not None:  # stuck writing to a client that does not read
                task.cancel()

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
                    self._end(q)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if len(self._streams) >= MAX_STREAMS:
            raise HttpError(503, f"too many event streams (at most {MAX_STREAMS})")
        q: asyncio.Queue[bytes | None] = asyncio.Queue(CLIENT_QUEUE)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        current = asyncio.current_task()
        assert current is not None
        self._streams[q] = current
        try:
            await response.write(b"retry: 2000\n\n" + sse_event("snapshot", self.data.state()))
            while True:
                try:
                    event = await asyncio.wait_for(q.get(), KEEPALIVE_S)
                except TimeoutError:
                    event = b": keep-alive\n\n"  # lets both ends notice a dead connection
                if event is None:
                    break
                await response.write(event)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._streams.pop(q, None)
        return response

    # ---------------------------------------------------------------- requests
    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Loopback Host check, and every error as JSON."""
        self.requests += 1
        try:
            if self.loopback_only and not is_loopback_host(request.headers.get("Host", "localhost")):
                raise HttpError(403, f"Host {request.headers.get('Host')!r} is not this machine's loopback "
                                     "name (the dashboard listens on loopback)")
            return await handler(request)
        except HttpError as exc:
            return _error(exc.status, exc.message)
        except web.HTTPNotFound:
            return _error(404, f"no such endpoint: {request.path} (see {ENDPOINTS})")
        except web.HTTPMethodNotAllowed:
            return _error(405, f"method {request.method} not allowed (GET only)")
        except web.HTTPException as exc:
            return _error(exc.status, exc.reason)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.exception("dashboard: request failed")
            self.errors += 1
            return _error(500, f"{type(exc).__name__}: {exc}")

    def _api(self, read: Callable[[Request], Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            params = Request(request.method, request.path, {k: request.query.getall(k) for k in request.query})
            doc = read(params)
            if asyncio.iscoroutine(doc):
                doc = await doc
            return _json(doc)
        return handler

    async def _page(self, request: web.Request) -> web.Response:
        body, ctype = self.static["index.html"]
        page = embed_json(body, {"state": self.data.state(), "topology": self.data.topology()})
        return web.Response(body=page, headers={"Content-Type": ctype, "Cache-Control": "no-store"})

    async def _static(self, request: web.Request) -> web.Response:
        found = self.static.get(request.match_info["name"])
        if found is None:
            raise HttpError(404, f"no such file: {request.path}")
        return web.Response(body=found[0], headers={"Content-Type": found[1], "Cache-Control": "no-cache"})


async def _nosniff(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Content-Type-Options"] = "nosniff"
