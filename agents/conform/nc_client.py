"""The conformance kit's NETCONF client: asyncssh for SSH, our sans-IO framer for RFC 6242.

Unlike a controller's client it never hides what the server did: every message sent and received
is kept (for evidence), rpc-errors are returned rather than raised, and raw bytes can be written
(hostile cases). Replies are parsed with the agents' hardened parser (no DTD, no entities), so a
hostile or broken server cannot hurt the tester either.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
from lxml import etree
from qstrata.bindings.wire.framing import Framer, FramingError
from qstrata.bindings.wire.xmlsafe import MalformedMessage, parse_message

BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
BASE_10 = "urn:ietf:params:netconf:base:1.0"
BASE_11 = "urn:ietf:params:netconf:base:1.1"
NOTIFICATION_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"


def hello(capabilities: tuple[str, ...] = (BASE_10, BASE_11), extra: str = "") -> bytes:
    caps = "".join(f"<capability>{c}</capability>" for c in capabilities)
    return (f'<?xml version="1.0" encoding="UTF-8"?><hello xmlns="{BASE}"><capabilities>{caps}</capabilities>'
            f"{extra}</hello>").encode()


class NetconfUnavailable(Exception):
    """The server could not be reached or logged into; the message says which and why."""


class SessionClosed(Exception):
    """The server closed the session (or broke framing) while a reply was awaited."""


@dataclass(frozen=True)
class NetconfEndpoint:
    host: str
    port: int
    username: str
    password: str | None = None
    key_file: str | None = None
    timeout: float = 10.0


@dataclass
class Reply:
    """One message from the server: its bytes and, when it parses, its root element."""

    raw: bytes
    root: etree._Element | None = None
    parse_error: str = ""

    def text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        return self.root is not None and self.root.find(f"{{{BASE}}}ok") is not None

    @property
    def errors(self) -> list[etree._Element]:
        return [] if self.root is None else self.root.findall(f"{{{BASE}}}rpc-error")

    @property
    def data(self) -> etree._Element | None:
        return None if self.root is None else self.root.find(f"{{{BASE}}}data")


@dataclass
class NetconfSession:
    conn: asyncssh.SSHClientConnection
    writer: asyncssh.SSHWriter
    reader: asyncssh.SSHReader
    framer: Framer
    server_hello: Reply
    capabilities: set[str] = field(default_factory=set)
    session_id: str | None = None
    message_id: int = 0
    transcript: list[tuple[str, str]] = field(default_factory=list)
    notifications: list[Reply] = field(default_factory=list)
    _pending: list[bytes] = field(default_factory=list)

    @classmethod
    async def open(cls, ep: NetconfEndpoint, *, client_hello: bytes | None = None,
                   send_hello: bool = True) -> NetconfSession:
        """Connect, open the `netconf` subsystem, read the server's hello and send ours."""
        try:
            conn = await asyncio.wait_for(connect(ep), ep.timeout)
        except asyncssh.PermissionDenied:
            raise NetconfUnavailable(f"NETCONF {ep.host}:{ep.port}: login as {ep.username!r} refused "
                                     f"(wrong user, password or key)") from None
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise NetconfUnavailable(f"NETCONF {ep.host}:{ep.port} unreachable: "
                                     f"{exc or type(exc).__name__}") from None
        try:
            writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
            framer = Framer(max_message_size=256 << 20)
            session = cls(conn, writer, reader, framer, Reply(b""))
            raw = await asyncio.wait_for(session._read_raw(), ep.timeout)
            session.server_hello = _parse(raw)
            root = session.server_hello.root
            if root is not None:
                session.capabilities = {(c.text or "").strip() for c in root.iter(f"{{{BASE}}}capability")}
                session.session_id = (root.findtext(f"{{{BASE}}}session-id") or "").strip() or None
            if send_hello:
                session.send_hello(client_hello or hello())
                # yuma123 netconfd stalls when the first rpc arrives in the same read as the hello
                await asyncio.sleep(0.05)
            return session
        except (OSError, asyncssh.Error, TimeoutError, SessionClosed, FramingError) as exc:
            conn.close()
            raise NetconfUnavailable(f"NETCONF {ep.host}:{ep.port}: no hello from the server "
                                     f"({exc or type(exc).__name__})") from None

    def send_hello(self, data: bytes) -> None:
        self.writer.write(self.framer.frame(data))
        self.transcript.append((data.decode(errors="replace"), ""))
        ours = data.decode(errors="replace")
        if BASE_11 in self.capabilities and BASE_11 in ours:
            self._pending.extend(self.framer.use_chunked())
        else:
            self._pending.extend(self.framer.use_end_of_message())

    async def _read_raw(self) -> bytes:
        while True:
            if self._pending:
                return self._pending.pop(0)
            data = await self.reader.read(1 << 20)
            if not data:
                raise SessionClosed("the server closed the session")
            self._pending.extend(self.framer.feed(data))

    async def read(self, timeout: float) -> Reply:
        """The next message that is not a notification (notifications are kept aside)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            raw = await asyncio.wait_for(self._read_raw(), max(0.01, deadline - loop.time()))
            reply = _parse(raw)
            if reply.root is not None and etree.QName(reply.root).localname == "notification":
                self.notifications.append(reply)
                continue
            return reply

    async def notification(self, timeout: float) -> Reply:
        if self.notifications:
            return self.notifications.pop(0)
        raw = await asyncio.wait_for(self._read_raw(), timeout)
        return _parse(raw)

    def wrap(self, body: str, attributes: str | None = None) -> str:
        self.message_id += 1
        attrs = f' message-id="{self.message_id}"' if attributes is None else attributes
        return f'<rpc xmlns="{BASE}"{attrs}>{body}</rpc>'

    async def rpc(self, body: str, timeout: float = 30.0, attributes: str | None = None) -> Reply:
        """Send one <rpc> (body inside it) and return the next reply; raises `SessionClosed`."""
        message = self.wrap(body, attributes)
        try:
            self.write(message.encode())
            reply = await self.read(timeout)
        except TimeoutError:
            self.transcript.append((message, f"(no reply within {timeout:g} s)"))
            raise
        except (SessionClosed, OSError, asyncssh.Error) as exc:
            self.transcript.append((message, f"(session ended: {exc or type(exc).__name__})"))
            raise SessionClosed(str(exc) or type(exc).__name__) from None
        self.transcript.append((message, reply.text()))
        return reply

    def write(self, data: bytes, framed: bool = True) -> None:
        if self.writer.channel.is_closing():
            raise SessionClosed("the server closed the channel")
        self.writer.write(self.framer.frame(data) if framed else data)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.rpc("<close-session/>"), 3)
        except Exception:  # noqa: BLE001 - a session that is already gone is closed
            pass
        self.abort()

    def abort(self) -> None:
        self.conn.close()


async def connect(ep: NetconfEndpoint) -> asyncssh.SSHClientConnection:
    keys = [asyncssh.read_private_key(str(Path(ep.key_file)))] if ep.key_file else None
    return await asyncssh.connect(ep.host, ep.port, username=ep.username, password=ep.password,
                                  client_keys=keys, known_hosts=None, agent_path=None,
                                  preferred_auth=("publickey", "keyboard-interactive", "password")
                                  if keys else ("keyboard-interactive", "password"))


def _parse(raw: bytes) -> Reply:
    try:
        return Reply(raw, parse_message(raw, max_depth=256))
    except MalformedMessage as exc:
        return Reply(raw, None, exc.message)
