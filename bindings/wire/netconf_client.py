"""The one NETCONF client: asyncssh for SSH, the sans-IO RFC 6242 framer, the safe XML parser.

Every client of an agent uses it: the collectors' alarm actions, the built-in controller of
`qstrata up`, the conformance kit (which keeps a transcript as evidence, writes raw bytes for its
hostile cases and reads rpc-errors rather than raising them) and the tests (which pipeline
thousands of requests or send 16 MiB ones). Replies are parsed with the hardened parser (no DTD,
no entities, bounded cost), so a hostile or broken server cannot hurt its client either.

- `NetconfSession.rpc` sends one <rpc> and returns the `Reply`, rpc-errors included;
- `NetconfSession.request` returns the rpc-reply element and raises `RpcFailed` on rpc-error;
- `NetconfSession.send` / `read_raw` pipeline raw messages; `write` sends bytes as they are;
- `edit_config` is one edit (then a commit on the candidate) in its own session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
from lxml import etree

from .framing import DEFAULT_MAX_MESSAGE_SIZE, Framer, FramingError
from .xmlsafe import MalformedMessage, parse_message

__all__ = [
    "BASE",
    "BASE_10",
    "BASE_11",
    "NOTIFICATION_NS",
    "NetconfEndpoint",
    "NetconfError",
    "NetconfSession",
    "NetconfUnavailable",
    "Reply",
    "RpcFailed",
    "SessionClosed",
    "edit_config",
    "hello",
]

BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
BASE_10 = "urn:ietf:params:netconf:base:1.0"
BASE_11 = "urn:ietf:params:netconf:base:1.1"
NOTIFICATION_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"

_READ_SIZE = 1 << 20
_REPLY_DEPTH = 256
"""Replies carry data trees a few dozen levels deep inside <rpc-reply><data>; libxml2 stops at 256."""


def hello(capabilities: tuple[str, ...] = (BASE_10, BASE_11), extra: str = "") -> bytes:
    """A client <hello> (RFC 6241 s8.1) offering `capabilities`; `extra` goes inside it as is."""
    caps = "".join(f"<capability>{c}</capability>" for c in capabilities)
    return (f'<?xml version="1.0" encoding="UTF-8"?><hello xmlns="{BASE}"><capabilities>{caps}</capabilities>'
            f"{extra}</hello>").encode()


class NetconfError(Exception):
    """The session failed or the agent refused: the message says which and why, in one line."""


class NetconfUnavailable(NetconfError):
    """The server could not be reached, logged into, or sent no hello."""


class SessionClosed(NetconfError):
    """The server closed the session (or broke framing) while a reply was awaited."""


class RpcFailed(NetconfError):
    """The agent answered with rpc-error (`request`); the `reply` is kept."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"rpc-error: {reply.error_summary()}" if reply.root is not None
                         else f"unreadable rpc-reply: {reply.parse_error}")
        self.reply = reply


@dataclass(frozen=True)
class NetconfEndpoint:
    host: str
    port: int
    username: str
    password: str | None = None
    key_file: str | None = None
    timeout: float = 10.0
    """Seconds to connect, log in and get the server's hello."""


@dataclass
class Reply:
    """One message from the server: its bytes and, when it parses, its root element."""

    raw: bytes
    root: etree._Element | None = None
    parse_error: str = ""

    @classmethod
    def parse(cls, raw: bytes) -> Reply:
        try:
            return cls(raw, parse_message(raw, max_depth=_REPLY_DEPTH))
        except MalformedMessage as exc:
            return cls(raw, None, exc.message)

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

    def error_summary(self) -> str:
        """Each rpc-error as ``tag; path; message``, joined by `` | ``."""
        return " | ".join(
            "; ".join(filter(None, (e.findtext(f"{{{BASE}}}error-tag"), e.findtext(f"{{{BASE}}}error-path"),
                                    (e.findtext(f"{{{BASE}}}error-message") or "").strip())))
            for e in self.errors)


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
    record: bool = False
    """Keep every exchange of `rpc` in `transcript` (the conformance kit's evidence)."""
    transcript: list[tuple[str, str]] = field(default_factory=list)
    notifications: list[Reply] = field(default_factory=list)
    _pending: list[bytes] = field(default_factory=list)

    @classmethod
    async def open(cls, ep: NetconfEndpoint, *, client_hello: bytes | None = None, send_hello: bool = True,
                   max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, record: bool = False,
                   hello_pause: float = 0.0) -> NetconfSession:
        """Connect, open the `netconf` subsystem, read the server's hello and send ours (unless not
        `send_hello`: then `send_hello` is the caller's). `hello_pause`: seconds to wait after our
        hello (yuma123's netconfd stalls on an rpc in the same read as the hello)."""
        try:
            conn = await asyncio.wait_for(_connect(ep), ep.timeout)
        except asyncssh.PermissionDenied:
            raise NetconfUnavailable(f"NETCONF {ep.host}:{ep.port}: login as {ep.username!r} refused "
                                     f"(wrong user, password or key)") from None
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise NetconfUnavailable(f"NETCONF {ep.host}:{ep.port} unreachable: "
                                     f"{exc or type(exc).__name__}") from None
        try:
            writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
            framer = Framer(max_message_size=max_message_size)
            session = cls(conn, writer, reader, framer, Reply(b""), record=record)
            session.server_hello = Reply.parse(await asyncio.wait_for(session.read_raw(), ep.timeout))
            root = session.server_hello.root
            if root is not None:
                session.capabilities = {(c.text or "").strip() for c in root.iter(f"{{{BASE}}}capability")}
                session.session_id = (root.findtext(f"{{{BASE}}}session-id") or "").strip() or None
            if send_hello:
                session.send_hello(client_hello or hello())
                if hello_pause:
                    await asyncio.sleep(hello_pause)
            return session
        except (OSError, asyncssh.Error, TimeoutError, SessionClosed, FramingError) as exc:
            conn.close()
            raise NetconfUnavailable(f"NETCONF {ep.host}:{ep.port}: no hello from the server "
                                     f"({exc or type(exc).__name__})") from None
        except BaseException:
            conn.close()
            raise

    def send_hello(self, data: bytes) -> None:
        """Send our hello and choose the framing: chunked when both hellos offer base:1.1."""
        self.writer.write(self.framer.frame(data))
        ours = data.decode(errors="replace")
        if self.record:
            self.transcript.append((ours, ""))
        if BASE_11 in self.capabilities and BASE_11 in ours:
            self._pending.extend(self.framer.use_chunked())
        else:
            self._pending.extend(self.framer.use_end_of_message())

    async def read_raw(self) -> bytes:
        """The next message from the server, as bytes; raises `SessionClosed`."""
        while not self._pending:
            try:
                data = await self.reader.read(_READ_SIZE)
            except (OSError, asyncssh.Error) as exc:
                raise SessionClosed(str(exc) or type(exc).__name__) from None
            if not data:
                raise SessionClosed("the server closed the session")
            try:
                self._pending.extend(self.framer.feed(data))
            except FramingError as exc:
                raise SessionClosed(f"framing error from the server: {exc}") from None
        return self._pending.pop(0)

    async def read(self, timeout: float) -> Reply:
        """The next message that is not a notification (notifications are kept aside)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            reply = Reply.parse(await asyncio.wait_for(self.read_raw(), max(0.01, deadline - loop.time())))
            if reply.root is not None and etree.QName(reply.root).localname == "notification":
                self.notifications.append(reply)
                continue
            return reply

    async def notification(self, timeout: float) -> Reply:
        if self.notifications:
            return self.notifications.pop(0)
        return Reply.parse(await asyncio.wait_for(self.read_raw(), timeout))

    def wrap(self, body: str | bytes, attributes: str | None = None) -> str:
        """`body` inside an <rpc> with the next message-id (or the given `attributes`)."""
        self.message_id += 1
        attrs = f' message-id="{self.message_id}"' if attributes is None else attributes
        if isinstance(body, bytes):
            body = body.decode()
        return f'<rpc xmlns="{BASE}"{attrs}>{body}</rpc>'

    def write(self, data: bytes, framed: bool = True) -> None:
        """Write one message (framed in the session's framing) or, not `framed`, raw bytes."""
        if self.writer.channel.is_closing():
            raise SessionClosed("the server closed the channel")
        self.writer.write(self.framer.frame(data) if framed else data)

    def send(self, body: str | bytes) -> None:
        """Send one <rpc> without waiting: its reply is read later (`read_raw`, `read`), in order."""
        if isinstance(body, bytes):
            self.message_id += 1
            self.write(b'<rpc xmlns="%s" message-id="%d">%s</rpc>' % (BASE.encode(), self.message_id, body))
        else:
            self.write(self.wrap(body).encode())

    async def rpc(self, body: str | bytes, timeout: float = 30.0, attributes: str | None = None) -> Reply:
        """Send one <rpc> (body inside it) and return the next reply; raises `SessionClosed`."""
        message = self.wrap(body, attributes)
        try:
            self.write(message.encode())
            reply = await self.read(timeout)
        except TimeoutError:
            if self.record:
                self.transcript.append((message, f"(no reply within {timeout:g} s)"))
            raise
        except (SessionClosed, OSError, asyncssh.Error) as exc:
            if self.record:
                self.transcript.append((message, f"(session ended: {exc or type(exc).__name__})"))
            raise SessionClosed(str(exc) or type(exc).__name__) from None
        if self.record:
            self.transcript.append((message, reply.text()))
        return reply

    async def request(self, body: str | bytes, timeout: float = 30.0) -> etree._Element:
        """Send one <rpc>; return its rpc-reply element (a <get>'s <data> is inside). Raises
        `RpcFailed` on rpc-error or an unreadable reply, `TimeoutError`, `SessionClosed`."""
        reply = await self.rpc(body, timeout)
        if reply.root is None or reply.errors:
            raise RpcFailed(reply)
        return reply.root

    async def close(self) -> None:
        """<close-session>, then the connection closes whatever the answer."""
        try:
            await asyncio.wait_for(self.rpc("<close-session/>"), 3)
        except Exception:  # noqa: BLE001 - a session that is already gone is closed
            pass
        self.abort()

    def abort(self) -> None:
        self.conn.close()


async def _connect(ep: NetconfEndpoint) -> asyncssh.SSHClientConnection:
    keys = [asyncssh.read_private_key(str(Path(ep.key_file)))] if ep.key_file else None
    return await asyncssh.connect(ep.host, ep.port, username=ep.username, password=ep.password,
                                  client_keys=keys, known_hosts=None, agent_path=None,
                                  preferred_auth=("publickey", "keyboard-interactive", "password")
                                  if keys else ("keyboard-interactive", "password"))


async def edit_config(endpoint: NetconfEndpoint, config: str, *, datastore: str = "running",
                      default_operation: str = "merge", timeout: float = 30.0) -> None:
    """One edit-config (then commit when the datastore is the candidate), in its own session;
    raises `NetconfError` with one line saying what failed."""
    session = await NetconfSession.open(endpoint)
    try:
        await session.request(f"<edit-config><target><{datastore}/></target>"
                              f"<default-operation>{default_operation}</default-operation>"
                              f'<config xmlns="{BASE}">{config}</config></edit-config>', timeout)
        if datastore == "candidate":
            await session.request("<commit/>", timeout)
    except TimeoutError:
        raise NetconfError(f"NETCONF agent {endpoint.host}:{endpoint.port} did not answer within {timeout:g} s") from None
    except SessionClosed as exc:
        raise NetconfError(f"NETCONF session to {endpoint.host}:{endpoint.port} failed: {exc}") from None
    finally:
        await session.close()
