"""A lean asyncio NETCONF client for tests that need many requests, huge ones or precise timing.

ncclient polls its socket and parses every reply with lxml; this client (asyncssh + our sans-IO
framer) sends and receives raw messages, so a test can time one session while another sends a
16 MiB request, or send 5,000 requests in seconds. It is a real SSH client against a real agent.
"""

from __future__ import annotations

import asyncio
import time

import asyncssh
from qstrata.bindings.wire.framing import Framer

BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
HELLO = (f'<?xml version="1.0" encoding="UTF-8"?><hello xmlns="{BASE}"><capabilities>'
         "<capability>urn:ietf:params:netconf:base:1.0</capability>"
         "<capability>urn:ietf:params:netconf:base:1.1</capability></capabilities></hello>").encode()


class LeanClient:
    def __init__(self, conn: asyncssh.SSHClientConnection, writer, reader) -> None:
        self.conn = conn
        self.writer = writer
        self.reader = reader
        self.framer = Framer(max_message_size=1 << 30)
        self.msg_id = 0
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()
        self.hello = b""
        self._pump: asyncio.Task | None = None

    @classmethod
    async def connect(cls, agent, user: str | None = None, password: str | None = None) -> LeanClient:
        creds = agent.credentials
        conn = await asyncssh.connect(agent.host, agent.port, known_hosts=None, username=user or creds["username"],
                                      password=password or creds["password"])
        writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
        self = cls(conn, writer, reader)
        writer.write(self.framer.frame(HELLO))
        while True:
            data = await reader.read(1 << 20)
            if not data:
                raise ConnectionError("closed before hello")
            msgs = self.framer.feed(data)
            if msgs:
                self.hello = msgs[0]
                break
        self.framer.use_chunked() if b"base:1.1" in self.hello else self.framer.use_end_of_message()
        self._pump = asyncio.create_task(self._read_loop())
        return self

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self.reader.read(1 << 20)
                if not data:
                    return
                for message in self.framer.feed(data):
                    await self.replies.put(message)
        except (asyncio.CancelledError, ConnectionError, asyncssh.Error):
            return

    def send(self, body: str | bytes) -> None:
        self.msg_id += 1
        if isinstance(body, str):
            body = body.encode()
        self.writer.write(self.framer.frame(
            b'<rpc xmlns="%s" message-id="%d">%s</rpc>' % (BASE.encode(), self.msg_id, body)))

    async def call(self, body: str | bytes, timeout: float = 120.0) -> bytes:
        self.send(body)
        return await asyncio.wait_for(self.replies.get(), timeout)

    async def timed(self, body: str | bytes) -> float:
        start = time.perf_counter()
        await self.call(body)
        return time.perf_counter() - start

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        self.conn.close()
        await self.conn.wait_closed()


def is_ok(reply: bytes) -> bool:
    return b"<ok/>" in reply and b"<rpc-error>" not in reply
