"""(namespace, rpc name) -> handler, and the shared pipeline around every handler.

Handlers live in modules named after their RFC (`rfc6241_ops`, `rfc6022_monitoring`,
`rfc5277_notifications`), each with a `register(registry)` that the server calls explicitly: a
server has exactly the operations it was built with, whatever else was imported. The pipeline
checks access (NACM), runs the handler, and turns every exception into a complete rpc-error
reply echoing the <rpc> attributes; the core's neutral errors are mapped here, at the edge.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

from lxml import etree
from qstrata.agents.datastore.errors import DatastoreError, from_invalid
from qstrata.bindings.validate import InvalidData

from .errors import (
    BASE_NS,
    ErrorTag,
    ErrorType,
    RpcError,
    rpc_errors_from_core,
    rpc_reply_data,
    rpc_reply_ok,
    rpc_reply_with_errors,
)

if TYPE_CHECKING:
    from .context import HandlerContext
    from .session import NetconfSession

log = logging.getLogger("qstrata.netconf")

Handler = Callable[["HandlerContext", "NetconfSession", etree._Element], Awaitable[bytes | etree._Element | None]]
"""Gets the core services it may use (`HandlerContext`), the session, and the operation element;
returns None for <ok/>, an element to put in <data>, or a complete reply body (bytes)."""



class RpcRegistry:
    """The operations one server answers: (namespace, name) -> handler."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}

    def add(self, namespace: str, name: str, handler: Handler) -> None:
        if (namespace, name) in self._handlers:
            raise ValueError(f"operation {name!r} in {namespace!r} is registered twice")
        self._handlers[(namespace, name)] = handler

    def get(self, namespace: str, name: str) -> Handler | None:
        return self._handlers.get((namespace, name))

    def names(self) -> list[tuple[str, str]]:
        return sorted(self._handlers)


def path_namespaces(path: str | None, namespace_of: Callable[[str], str | None]) -> dict[str, str]:
    """Declare every module-name prefix used in a libyang path (RFC 6241: prefixes in error-path
    must be declared)."""
    if not path:
        return {}
    out: dict[str, str] = {}
    for token in path.replace("[", "/").split("/"):
        if ":" in token:
            prefix = token.split(":", 1)[0].strip("'\" ")
            ns = namespace_of(prefix)
            if ns:
                out[prefix] = ns
    return out


def to_rpc_errors(exc: Exception, namespace_of: Callable[[str], str | None]) -> list[RpcError]:
    if isinstance(exc, RpcError):
        return [exc]
    if isinstance(exc, InvalidData):
        exc = from_invalid(exc)
    if isinstance(exc, DatastoreError):
        return rpc_errors_from_core(exc, lambda path: path_namespaces(path, namespace_of))
    log.exception("internal error while handling an rpc")
    return [RpcError(ErrorTag.OPERATION_FAILED, "internal error; the operation was not performed")]


async def run(ctx: HandlerContext, session: NetconfSession, rpc_element: etree._Element, registry: RpcRegistry,
              check_access: Callable[[NetconfSession, str, str], None],
              attrs: dict[str, str] | None = None) -> bytes:
    """`attrs` overrides the <rpc> attributes (a cached request answered under a new message-id)."""
    attrs = dict(rpc_element.attrib) if attrs is None else attrs
    ops = [c for c in rpc_element if isinstance(c.tag, str)]
    if len(ops) != 1:
        err = RpcError(ErrorTag.MALFORMED_MESSAGE if not ops else ErrorTag.OPERATION_NOT_SUPPORTED,
                       "an <rpc> must hold exactly one operation", error_type=ErrorType.RPC if not ops else None)
        session.stats["out-rpc-errors"] += 1
        return rpc_reply_with_errors([err], attrs)
    op = ops[0]
    qname = etree.QName(op)
    handler = registry.get(qname.namespace or "", qname.localname)
    try:
        if handler is None:
            raise RpcError(ErrorTag.OPERATION_NOT_SUPPORTED,
                           f"operation {qname.localname!r} in namespace {qname.namespace!r} is not supported",
                           info=[("bad-element", qname.localname)])
        check_access(session, qname.namespace or "", qname.localname)
        result = await handler(ctx, session, op)
    except Exception as exc:  # every failure becomes an rpc-error
        session.stats["out-rpc-errors"] += 1
        return rpc_reply_with_errors(to_rpc_errors(exc, ctx.namespace_of), attrs)
    if result is None:
        return reply_with_body(attrs, b"<ok/>")
    if isinstance(result, bytes):
        return reply_with_body(attrs, result)
    return rpc_reply_data(attrs, result)


def reply_with_body(attrs: dict[str, str], body: bytes) -> bytes:
    """<rpc-reply> around an already serialized body element (e.g. <data>), not re-parsed."""
    if len(attrs) == 1 and "message-id" in attrs:  # the common case, without building a tree
        return b'<?xml version="1.0" encoding="UTF-8"?>\n<rpc-reply xmlns="%s" message-id=%s>%s</rpc-reply>' % (
            BASE_NS.encode(), quoteattr(attrs["message-id"]).encode(), body)
    head = rpc_reply_ok(attrs)
    cut = head.rindex(b"<ok/>")
    return head[:cut] + body + head[cut + len(b"<ok/>"):]
