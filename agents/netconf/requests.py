"""Parsed read-only requests, reused when a client sends the same bytes again.

Controllers and pollers repeat the same <get>/<get-config> with only the message-id changed.
A message that is byte-identical to one already parsed and checked, apart from a message-id made
of plain characters, parses to the same tree, so the parse can be skipped. Only read-only
operations are kept (their handlers never modify the request), and only small messages.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from lxml import etree

from .errors import BASE_NS

MON_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
READ_ONLY = frozenset({(BASE_NS, "get"), (BASE_NS, "get-config"), (MON_NS, "get-schema")})
MAX_MESSAGE = 4096
MAX_ENTRIES = 128

# the message-id attribute of the <rpc> start tag, with a value that needs no XML unescaping or
# attribute-value normalization
_MESSAGE_ID = re.compile(rb'\smessage-id="([A-Za-z0-9._:+-]{1,128})"')


def _key(message: bytes) -> tuple[bytes, str] | None:
    if len(message) > MAX_MESSAGE:
        return None
    start = message.find(b"<rpc")
    end = message.find(b">", start)
    if start < 0 or end < 0:
        return None
    m = _MESSAGE_ID.search(message, start, end)
    if m is None:
        return None
    return message[: m.start(1)] + message[m.end(1):], m.group(1).decode("ascii")


class RequestCache:
    def __init__(self) -> None:
        self._entries: OrderedDict[bytes, etree._Element] = OrderedDict()

    def lookup(self, message: bytes) -> tuple[etree._Element, dict[str, str]] | None:
        key = _key(message)
        if key is None:
            return None
        root = self._entries.get(key[0])
        if root is None:
            return None
        self._entries.move_to_end(key[0])
        return root, {"message-id": key[1]}

    def remember(self, message: bytes, root: etree._Element) -> None:
        """Keep a freshly parsed <rpc> if it is a plain read-only request."""
        if len(root.attrib) != 1 or "message-id" not in root.attrib:
            return
        ops = [c for c in root if isinstance(c.tag, str)]
        if len(ops) != 1:
            return
        qname = etree.QName(ops[0])
        if (qname.namespace or "", qname.localname) not in READ_ONLY:
            return
        key = _key(message)
        if key is None or key[1] != root.get("message-id"):
            return
        self._entries[key[0]] = root
        if len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)
