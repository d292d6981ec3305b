"""A small asyncio NETCONF client (asyncssh + our sans-IO RFC 6242 framer) for alarm actions.

One session per call of `edit_config`: actions are rare and rate-limited, so a session kept open
would mostly hold a slot on the agent. Base 1.1 (chunked framing) when the agent offers it.
Replies are parsed with the agents' hardened XML parser (no DTD, no entities, bounded depth).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncssh
from qstrata.bindings.wire.framing import Framer
from qstrata.bindings.wire.xmlsafe import MalformedMessage, parse_message

BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
BASE_11 = "urn:ietf:params:netconf:base:1.1"
HELLO = (f'<?xml version="1.0" encoding="UTF-8"?><hello xmlns="{BASE}"><capabilities>'
         f"<capability>urn:ietf:params:netconf:base:1.0</capability><capability>{BASE_11}</capability>"
         "</capabilities></hello>").encode()


class NetconfError(Exception):
    """The session failed or the agent answered with an rpc-error (its message included)."""


@dataclass(frozen=True)
class NetconfEndpoint:
    host: str
    port: int
    username: str
    password: str | None = None


class NetconfSession:
    def __init__(self, conn: asyncssh.SSHClientConnection, writer, reader) -> None:
        self.conn = conn
        self.writer = writer
        self.reader = reader
        self.framer = Framer()
        self.message_id = 0
        self.capabilities: set[str] = set()

    @classmethod
    async def open(cls, endpoint: NetconfEndpoint, timeout: float = 10.0) -> NetconfSession:
        try:
            conn = await asyncio.wait_for(asyncssh.connect(
                endpoint.host, endpoint.port, username=endpoint.username, password=endpoint.password,
                known_hosts=None, client_keys=None, agent_path=None), timeout)
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise NetconfError(f"cannot reach NETCONF at {endpoint.host}:{endpoint.port}: {exc or type(exc).__name__}") from None
        try:
            writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
            self = cls(conn, writer, reader)
            writer.write(self.framer.frame(HELLO))
            hello = await asyncio.wait_for(self._read(), timeout)
            root = parse_message(hello)
            self.capabilities = {(c.text or "").strip() for c in root.iter(f"{{{BASE}}}capability")}
            if BASE_11 in self.capabilities:
                self.framer.use_chunked()
            else:
                self.framer.use_end_of_message()
            return self
        except BaseException:
            conn.close()
            raise

    async def _read(self) -> bytes:
        while True:
            data = await self.reader.read(1 << 20)
            if not data:
                raise NetconfError("NETCONF session closed by the agent")
            messages = self.framer.feed(data)
            if messages:
                return messages[0]

    async def rpc(self, body: str, timeout: float = 30.0) -> None:
        """Send one rpc; return on <ok/>, raise `NetconfError` on rpc-error."""
        root = await self.request(body, timeout)
        if root.find(f"{{{BASE}}}ok") is None:
            raise NetconfError("rpc-reply without <ok/>")

    async def request(self, body: str, timeout: float = 30.0):
        """Send one rpc and return its rpc-reply element (a <get>'s <data> is inside); raise
        `NetconfError` on rpc-error."""
        self.message_id += 1
        self.writer.write(self.framer.frame(f'<rpc xmlns="{BASE}" message-id="{self.message_id}">{body}</rpc>'.encode()))
        reply = await asyncio.wait_for(self._read(), timeout)
        try:
            root = parse_message(reply)
        except MalformedMessage as exc:
            raise NetconfError(f"unreadable rpc-reply: {exc}") from None
        errors = root.findall(f"{{{BASE}}}rpc-error")
        if errors:
            messages = ["; ".join(filter(None, (e.findtext(f"{{{BASE}}}error-tag"), e.findtext(f"{{{BASE}}}error-path"),
                                                (e.findtext(f"{{{BASE}}}error-message") or "").strip())))
                        for e in errors]
            raise NetconfError("rpc-error: " + " | ".join(messages))
        return root

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.rpc("<close-session/>"), 5)
        except (NetconfError, OSError, asyncssh.Error, TimeoutError):
            pass
        self.conn.close()


async def edit_config(endpoint: NetconfEndpoint, config: str, *, datastore: str = "running",
                      default_operation: str = "merge", timeout: float = 30.0) -> None:
    """One edit-config (then commit when the datastore is the candidate), in its own session."""
    session = await NetconfSession.open(endpoint, timeout)
    try:
        await session.rpc(f"<edit-config><target><{datastore}/></target>"
                          f"<default-operation>{default_operation}</default-operation>"
                          f'<config xmlns="{BASE}">{config}</config></edit-config>', timeout)
        if datastore == "candidate":
            await session.rpc("<commit/>", timeout)
    except (OSError, asyncssh.Error) as exc:
        raise NetconfError(f"NETCONF session to {endpoint.host}:{endpoint.port} failed: {exc}") from None
    except TimeoutError:
        raise NetconfError(f"NETCONF agent {endpoint.host}:{endpoint.port} did not answer within {timeout:g} s") from None
    finally:
        await session.close()
