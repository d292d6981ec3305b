"""The asyncio glue of the world service's protocol: frames over a Unix socket, both ends.

A `Connection` reads frames in one task and writes them from an `Outbox` in another: replies
resolve the `request` that waits for them, anything else (a request on the service's side, a
push on the agent's) goes to the handler, one at a time and in order, so a commit is handled
after its prepare and an event after the state it follows. The writer hands the socket one
frame at a time and waits while the socket's buffer is full; meanwhile newer snapshots replace
older ones in the outbox instead of piling up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .framing import FrameDecoder, FramingError, Outbox, encode

log = logging.getLogger("qstrata.devices.remote")

SCHEME = "unix:"
READ_SIZE = 256 * 1024

Handler = Callable[[dict[str, Any]], Awaitable[None]]
"""Called with every message that is not a reply, one at a time, in order (it must not wait for
a reply on the same connection: replies are read by the task that runs it)."""


class ConnectionLost(ConnectionError):
    """The peer went away (or the connection was closed) before the reply came."""


class RemoteError(Exception):
    """The peer answered a request with an error (`kind`: refusal, need, failed, ...)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(str(error.get("message") or error.get("kind") or "error"))
        self.kind = str(error.get("kind") or "failed")
        self.error = error


def parse_address(text: str) -> Path:
    """``unix:PATH`` (relative paths from the working folder) -> the socket's absolute path."""
    if not text.startswith(SCHEME) or not text[len(SCHEME):]:
        raise ValueError(f"a world service address is unix:PATH, not {text!r}")
    return Path(os.path.abspath(text[len(SCHEME):]))


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler,
                 name: str = "") -> None:
        self.name = name
        self._reader, self._writer, self._handler = reader, writer, handler
        self._outbox = Outbox()
        self._wake = asyncio.Event()
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.closed = asyncio.Event()
        self.reason = ""
        """Why the connection ended (peer closed it, a framing error, ...)."""
        self._tasks = [asyncio.create_task(self._read(), name=f"world-read {name}"),
                       asyncio.create_task(self._write(), name=f"world-write {name}")]

    # -- sending -----------------------------------------------------------------------------

    def send(self, message: dict[str, Any], key: str | None = None) -> None:
        """Queue a message (a keyed one replaces a waiting message of the same key)."""
        if self.closed.is_set():
            return
        self._outbox.put(encode(message), key)
        self._wake.set()

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send a request and wait for its reply's ``ok`` object; raises `RemoteError` or
        `ConnectionLost`."""
        if self.closed.is_set():
            raise ConnectionLost(self.reason or "closed")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        self.send({"id": request_id, "op": op, **fields})
        try:
            return await future
        finally:
            self._waiting.pop(request_id, None)

    def reply(self, request: dict[str, Any], ok: dict[str, Any] | None = None,
              error: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"id": request.get("id")}
        if error is not None:
            message["error"] = error
        else:
            message["ok"] = ok or {}
        self.send(message)

    async def _write(self) -> None:
        try:
            while not self.closed.is_set():
                await self._wake.wait()
                self._wake.clear()
                while not self.closed.is_set() and (frame := self._outbox.take()) is not None:
                    self._writer.write(frame)
                    await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self._lost(f"write failed: {exc}")

    # -- receiving ---------------------------------------------------------------------------

    async def _read(self) -> None:
        decoder = FrameDecoder()
        reason = "the peer closed the connection"
        try:
            while True:
                data = await self._reader.read(READ_SIZE)
                if not data:
                    break
                for message in decoder.feed(data):
                    if "id" in message and ("ok" in message or "error" in message):
                        self._resolve(message)
                    else:
                        await self._handler(message)
        except FramingError as exc:
            reason = f"framing error: {exc}"
            log.error("%s: %s", self.name or "world connection", reason)
        except (ConnectionError, OSError) as exc:
            reason = f"connection error: {exc}"
        except asyncio.CancelledError:
            reason = "closed"
            raise
        finally:
            self._lost(reason)

    def _resolve(self, message: dict[str, Any]) -> None:
        future = self._waiting.get(message["id"]) if isinstance(message["id"], int) else None
        if future is None or future.done():
            return
        if "error" in message:
            future.set_exception(RemoteError(message["error"] if isinstance(message["error"], dict) else {}))
        else:
            future.set_result(message["ok"] if isinstance(message["ok"], dict) else {})

    def _lost(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.reason = reason
        self.closed.set()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionLost(reason))
        self._wake.set()
        with contextlib.suppress(Exception):
            self._writer.close()

    async def close(self) -> None:
        """Write what is queued (briefly), then close."""
        if not self.closed.is_set():
            with contextlib.suppress(TimeoutError, ConnectionError, OSError):
                await asyncio.wait_for(self._flush(), 2.0)
        self._lost("closed")
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        await asyncio.gather(*(t for t in self._tasks if t is not asyncio.current_task()), return_exceptions=True)

    async def _flush(self) -> None:
        while len(self._outbox) and not self.closed.is_set():
            await asyncio.sleep(0.005)
        await self._writer.drain()


async def connect(path: Path, handler: Handler, name: str = "") -> Connection:
    reader, writer = await asyncio.open_unix_connection(str(path), limit=READ_SIZE)
    return Connection(reader, writer, handler, name)


async def serve(path: Path, on_connect: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
                ) -> asyncio.AbstractServer:
    """Listen on a Unix socket only its owner may use (mode 0600, bound under umask 077). A
    socket file left by a dead service is replaced; one that still answers is not."""
    if path.exists() or path.is_symlink():
        if _answers(path):
            raise OSError(f"a world service already listens on {path}")
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(on_connect, str(path), limit=READ_SIZE)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return server


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True
