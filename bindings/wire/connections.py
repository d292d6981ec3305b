"""Bounds on an HTTP front end's connections (the KME's key delivery API, RESTCONF, the
collector's dashboard and Prometheus endpoint), so slow or silent clients cannot hold the
process. Each server has a guard of its own; `start_http` serves an aiohttp application behind one.

The front ends share their process (and file descriptors) with NETCONF and gNMI (in `qstrata up`,
with every agent, KME and the collector), so
what one client may hold is bounded in number and in time:

- the TLS handshake must end within `HANDSHAKE_TIMEOUT_S` (a connection that sends nothing, or
  a ClientHello a byte at a time, is cut then);
- a connection must then send a whole request head within `HEAD_TIMEOUT_S` (slowloris: headers a
  byte at a time); connections still sending their first head are "pending", bounded like
  OpenSSH's MaxStartups by the agent's `PendingConnections` (`MAX_PENDING`): when the table is
  full a newcomer evicts the oldest pending connection of the busiest source once it has had
  `EVICTION_AGE_S` (a client that means well sends its head at once), else it is dropped;
- a request body must arrive within `BODY_TIMEOUT_S` (the front end's `_body`), and a
  keep-alive connection may wait `IDLE_TIMEOUT_S` for its next request head (aiohttp's
  keep-alive timeout, which also bounds a slow second head);
- at most `MAX_CONNECTIONS` connections in all, and never more than half the process's file
  descriptors (the agent's other front ends need theirs); beyond, new ones are closed at once.

So a flood of slow connections costs the KME at most `MAX_PENDING` of them at a time, each for
at most the head timeout, and SAEs that send their requests are served meanwhile. The pending
table is large because a client that means well can be slow too: 1,000 requests fired at once
from one process reach the KME's TLS handshakes faster than that process writes their heads.
"""

from __future__ import annotations

import asyncio
import resource
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .pending import PendingConnections

HANDSHAKE_TIMEOUT_S = 10.0
HEAD_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 15.0
MAX_PENDING = 1024
EVICTION_AGE_S = 1.0
MAX_CONNECTIONS = 2048


def connection_limit(wanted: int = MAX_CONNECTIONS) -> int:
    """`wanted`, or half the process's file descriptors if that is less."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return wanted if soft == resource.RLIM_INFINITY else max(1, min(wanted, soft // 2))


class ConnectionGuard:
    """Counts the server's connections and cuts those that break the bounds above."""

    def __init__(self, max_connections: int | None = None, max_pending: int = MAX_PENDING,
                 head_timeout: float = HEAD_TIMEOUT_S, eviction_age: float = EVICTION_AGE_S,
                 idle_timeout: float = IDLE_TIMEOUT_S, handshake_timeout: float = HANDSHAKE_TIMEOUT_S) -> None:
        self.max_connections = connection_limit() if max_connections is None else max_connections
        self.head_timeout = head_timeout
        self.idle_timeout = idle_timeout
        self.handshake_timeout = handshake_timeout
        self.pending: PendingConnections[_Guarded] = PendingConnections(min(max_pending, self.max_connections),
                                                                        eviction_age=eviction_age)
        self.open: dict[Any, _Guarded] = {}
        """transport -> its connection, for every connection let in."""
        self.refused = 0
        """Connections closed at once (the table was full) or evicted."""

    def factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """The server's protocol factory: `make`'s protocols (aiohttp's request handlers) inside
        connections this guard watches."""
        return lambda: _Guarded(self, make())

    def peercert(self, transport: Any) -> Any:
        """The client certificate of the connection on `transport`, as `getpeercert()` gives it,
        decoded once per connection (the key delivery API asks for it on every request: 4 µs
        each)."""
        conn = self.open.get(transport)
        if conn is None:
            return transport.get_extra_info("peercert") if transport is not None else None
        if not conn.identified:
            conn.cert, conn.identified = transport.get_extra_info("peercert"), True
        return conn.cert

    def on_close(self, transport: Any, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` when the connection on `transport` closes (at once if it is not open):
        a response that only writes (an event stream) learns that its peer went away without
        waiting for a write to fail. Returns what forgets the callback (the response ended first,
        and its keep-alive connection serves on)."""
        conn = self.open.get(transport)
        if conn is None or not conn.live:
            callback()
            return lambda: None
        conn.closing.append(callback)
        return lambda: conn.closing.remove(callback) if callback in conn.closing else None

    def _head_received(self, conn: _Guarded) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        self.pending.done(conn)

    def _admit(self, conn: _Guarded, transport: Any) -> bool:
        if len(self.open) >= self.max_connections:
            self.refused += 1
            return False
        peer = transport.get_extra_info("peername")
        admitted, evicted = self.pending.admit(conn, str(peer[0]) if peer else "?")
        if evicted is not None:
            self.refused += 1
            evicted.cut()
        if not admitted:
            self.refused += 1
            return False
        self.open[transport] = conn
        conn.timer = asyncio.get_running_loop().call_later(self.head_timeout, conn.cut)
        return True

    def _closed(self, conn: _Guarded) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        self.pending.done(conn)
        if conn.transport is not None:
            self.open.pop(conn.transport, None)


async def start_http(app: web.Application, host: str | None, port: int, guard: ConnectionGuard, *,
                     tls: ssl.SSLContext | None = None, **runner_options: Any) -> tuple[web.AppRunner, asyncio.Server]:
    """Serve `app` on host:port (0: a free port) in the running event loop behind `guard`: the
    listening socket is asyncio's own (aiohttp's sites can bound neither the TLS handshake nor a
    silent connection), aiohttp's request handlers serve each connection the guard lets in, and a
    keep-alive connection waits at most the guard's idle timeout for its next request. Close the
    server, then clean the runner up."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=guard.idle_timeout,
                           **runner_options)
    await runner.setup()
    assert runner.server is not None
    try:
        server = await asyncio.get_running_loop().create_server(
            guard.factory(runner.server), host, port, ssl=tls, backlog=1024, reuse_address=True,
            ssl_handshake_timeout=guard.handshake_timeout if tls is not None else None)
    except BaseException:
        await runner.cleanup()
        raise
    return runner, server


class _Guarded(asyncio.Protocol):
    """One connection: hands everything to the inner protocol, unless the guard refused it. It
    watches the bytes for the end of the first request head (an empty line): a client that sends
    its request with its TLS Finished is pending for no time at all."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: Any = None
        self.timer: asyncio.TimerHandle | None = None
        self.live = False
        self._tail = b""
        self.identified = False
        self.cert: Any = None
        """The client certificate (`ConnectionGuard.peercert`)."""
        self.closing: list[Callable[[], None]] = []
        """Called when the connection closes (`ConnectionGuard.on_close`)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        if not self.guard._admit(self, transport):
            transport.abort()  # type: ignore[attr-defined]
            return
        self.live = True
        self.inner.connection_made(transport)

    def cut(self) -> None:
        """Close at once (evicted, or no request head in time)."""
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if not self.live:
            return
        if self.timer is not None:
            seen = self._tail + data
            if b"\r\n\r\n" in seen:
                self.guard._head_received(self)
            self._tail = seen[-3:]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.live else None

    def pause_writing(self) -> None:
        if self.live:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.live:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.live:
            self.live = False
            self.guard._closed(self)
            self.inner.connection_lost(exc)
            for callback in self.closing:
                callback()
            self.closing.clear()
