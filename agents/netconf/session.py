"""One NETCONF session: hello exchange, framing switch, rpc dispatch (RFC 6241 s8.1, RFC 6242).

Transport-agnostic: `ssh.py` feeds it bytes and gives it a `SessionContext` to write to. Every
failure becomes an rpc-error; nothing raised here reaches the client as a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from lxml import etree
from qstrata.bindings.wire.framing import Framer, FramingError, MessageTooLarge
from qstrata.bindings.wire.xmlsafe import MalformedMessage, parse_message, parse_message_apart, release_memory

from .capabilities import BASE_11
from .errors import BASE_NS, ErrorTag, ErrorType, RpcError, rpc_reply_with_errors
from .ssh import SessionContext

if TYPE_CHECKING:
    from .rfc5277_notifications import NotificationFilter
    from .server import NetconfServer

log = logging.getLogger("qstrata.netconf")

BIG_MESSAGE = 256 * 1024
"""Messages larger than this are parsed, and their operation's CPU work done, off the event loop."""
_B = "{" + BASE_NS + "}"


class NetconfSession:
    def __init__(self, ctx: SessionContext, server: NetconfServer) -> None:
        self.ctx = ctx
        self._server = server
        self.framer = Framer(max_message_size=server.max_message_size)
        self.hello_done = False
        self.base11 = False
        self.closed = False
        self.closing = False
        """<close-session> was answered: later requests are ignored (RFC 6241 s7.8)."""
        self.subscribed = False
        self.notification_filter: NotificationFilter | None = None
        """What this session's subscription receives (RFC 5277 s2.1.1); None: every event."""
        self.stats = {"in-rpcs": 0, "in-bad-rpcs": 0, "out-rpc-errors": 0, "out-notifications": 0}
        self.login_time = server.now()
        self.big_request = False
        """The message being handled is large: its handler offloads CPU work from the loop."""
        self.termination: tuple[str, int | None] = ("dropped", None)
        """RFC 6470 termination-reason (and killer) reported when the session ends."""
        self._send_lock = asyncio.Lock()
        self._batch: list[bytes] | None = None

    @property
    def session_id(self) -> int:
        return self.ctx.session_id

    # --------------------------------------------------------------- transport callbacks
    async def session_started(self) -> None:
        self._server.session_started(self)
        hello = etree.Element(_B + "hello", nsmap={None: BASE_NS})
        caps = etree.SubElement(hello, _B + "capabilities")
        for cap in self._server.capabilities():
            etree.SubElement(caps, _B + "capability").text = cap
        etree.SubElement(hello, _B + "session-id").text = str(self.session_id)
        await self.send(etree.tostring(hello, xml_declaration=True, encoding="UTF-8"))

    async def data_received(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except MessageTooLarge as exc:
            await self._fatal(RpcError(ErrorTag.TOO_BIG, f"message too large: {exc}", error_type=ErrorType.TRANSPORT))
            return
        except FramingError as exc:
            await self._fatal(self.malformed(f"framing error: {exc}"))
            return
        # Replies to the messages of one read (a pipelining client) leave in one write: one SSH
        # packet and one system call instead of one per reply.
        self._batch = []
        big = any(len(message) > BIG_MESSAGE for message in messages)
        try:
            while messages:
                if self.closed:
                    return
                await self.handle_message(messages.pop(0))  # popped: freed once handled
        finally:
            await self._flush()
            if big:  # the request, its tree and what its operation built are gone: give them back
                release_memory()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self._server.session_ended(self)

    # --------------------------------------------------------------- messages
    async def handle_message(self, message: bytes) -> None:
        if self.closing:
            return
        self.big_request = len(message) > BIG_MESSAGE
        if self.hello_done:
            cached = self._server.requests.lookup(message)
            if cached is not None:
                root, attrs = cached
                self.stats["in-rpcs"] += 1
                await self.send(await self._server.dispatch(self, root, attrs))
                return
        try:
            root = await parse_message_apart(message) if self.big_request else parse_message(message)
        except MalformedMessage as exc:
            self.stats["in-bad-rpcs"] += 1
            if not self.hello_done:
                await self.close()
                return
            await self.send_errors([self.malformed(exc.message)], {})
            return
        if not self.hello_done:
            await self._handle_hello(root)
            return
        if root.tag != _B + "rpc":
            self.stats["in-bad-rpcs"] += 1
            qname = etree.QName(root)
            if qname.localname == "rpc":
                got = f"namespace {qname.namespace}" if qname.namespace else "no namespace"
                err = self.malformed(f"<rpc> must be in namespace {BASE_NS} (got {got})")
                await self.send_errors([err], _echoable(root))
            else:
                await self.send_errors([self.malformed(f"expected <rpc>, got <{qname.localname}>")], {})
            return
        attrs = dict(root.attrib)
        if "message-id" not in attrs:
            self.stats["in-bad-rpcs"] += 1
            err = RpcError(ErrorTag.MISSING_ATTRIBUTE, "the <rpc> element has no message-id attribute",
                           error_type=ErrorType.RPC,
                           info=[("bad-attribute", "message-id"), ("bad-element", "rpc")])
            await self.send_errors([err], attrs)
            return
        self.stats["in-rpcs"] += 1
        self._server.requests.remember(message, root)
        reply = await self._server.dispatch(self, root)
        await self.send(reply)

    async def _handle_hello(self, root: etree._Element) -> None:
        if root.tag != _B + "hello":
            log.info("session %d: first message is not <hello>; closing", self.session_id)
            await self.close()
            return
        caps = [c.text.strip() for c in root.iter(_B + "capability") if c.text]
        if root.find(_B + "session-id") is not None or not any(c.startswith("urn:ietf:params:netconf:base:1.") for c in caps):
            log.info("session %d: client hello without a base capability or with a session-id; closing",
                     self.session_id)
            await self.close()
            return
        self.hello_done = True
        self.base11 = BASE_11 in caps
        self.ctx.established()
        try:
            pending = self.framer.use_chunked() if self.base11 else self.framer.use_end_of_message()
        except MessageTooLarge as exc:  # what followed the hello in the same read was broken
            await self._fatal(RpcError(ErrorTag.TOO_BIG, f"message too large: {exc}", error_type=ErrorType.TRANSPORT))
            return
        except FramingError as exc:
            await self._fatal(self.malformed(f"framing error: {exc}"))
            return
        for message in pending:
            if self.closed:
                return
            await self.handle_message(message)

    def malformed(self, message: str) -> RpcError:
        """malformed-message is new in base:1.1 and must not go to a 1.0-only peer (RFC 6241
        s4.3); such a peer gets operation-failed with the same text."""
        if self.base11 or not self.hello_done:
            return RpcError(ErrorTag.MALFORMED_MESSAGE, message)
        return RpcError(ErrorTag.OPERATION_FAILED, message, error_type=ErrorType.RPC)

    # --------------------------------------------------------------- output
    async def send(self, message: bytes) -> None:
        if self.closed:
            return
        if self._batch is not None:
            self._batch.append(self.framer.frame(message))
            return
        async with self._send_lock:
            await self.ctx.send(self.framer.frame(message))

    async def _flush(self) -> None:
        batch, self._batch = self._batch, None
        if batch and not self.closed:
            async with self._send_lock:
                await self.ctx.send(b"".join(batch))

    async def send_errors(self, errors: list[RpcError], attrs: dict[str, str]) -> None:
        self.stats["out-rpc-errors"] += 1
        await self.send(rpc_reply_with_errors(errors, attrs))

    async def _fatal(self, error: RpcError) -> None:
        """Answer a broken stream once, then close the session (RFC 6242 s3)."""
        self.termination = ("other", None)
        await self._flush()
        try:
            await self.ctx.send(self.framer.frame(rpc_reply_with_errors([error], {})))
        except Exception:  # framing may be unusable; closing is what matters
            pass
        await self.close()

    async def close(self) -> None:
        await self._flush()
        if self.termination[0] == "dropped":
            self.termination = ("closed", None)
        if not self.closed:
            self.closed = True
            await self.ctx.close()


def _echoable(root: etree._Element) -> dict[str, str]:
    """The attributes of a misplaced <rpc> worth echoing: its message-id when it has one, so
    the client can match the error to its request."""
    message_id = root.get("message-id")
    return {"message-id": message_id} if message_id is not None else {}
