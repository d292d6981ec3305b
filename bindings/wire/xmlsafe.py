"""The one XML parser for untrusted NETCONF input.

Anything a client sends goes through `parse_message` before any other code looks at it.
NETCONF never needs a DTD, so a document type declaration is refused outright: that closes
entity expansion (billion laughs), external entities (XXE: ``file:///etc/passwd``) and
network fetches in one rule, before libxml2 sees the bytes. The parser itself is also
configured not to resolve entities, load DTDs or touch the network, as a second wall.
Depth and element count are bounded while parsing, so a hostile message costs at most
its own size in time and a bounded amount of memory.

Every refusal is a `MalformedMessage`, whose text is safe to put in an rpc-error (the agent's
session turns it into malformed-message, RFC 6241 s4.3; a client reports it as an unreadable reply).
"""

from __future__ import annotations

import re

from lxml import etree

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MAX_ELEMENTS", "MalformedMessage", "parse_message"]

DEFAULT_MAX_DEPTH = 128
"""Deepest element nesting accepted; YANG data trees are a few dozen levels at most.
(libxml2 itself stops at 256 without its huge-tree option, so larger values act as 256.)"""

DEFAULT_MAX_ELEMENTS = 1_000_000
"""Most elements accepted in one message (about what a 16 MiB message can hold)."""

_FEED_SIZE = 1 << 16
_UTF8_BOM = b"\xef\xbb\xbf"
_PROLOG_WHITESPACE = b" \t\r\n"
_SPACES = re.compile(rb"[ \t\r\n]*")


class MalformedMessage(Exception):
    """A message that is not acceptable XML. ``message`` is short, in English and free of
    internals, fit for an ``<error-message>``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_message(
    data: bytes,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> etree._Element:
    """Parse one framed NETCONF message into its root element.

    Raises `MalformedMessage` -- and nothing else -- when the bytes are not well-formed
    UTF-8 XML, carry a DOCTYPE, nest deeper than ``max_depth`` or hold more than
    ``max_elements`` elements. Comments and processing instructions are dropped.
    """
    data = bytes(data)
    if not data.strip(_PROLOG_WHITESPACE):
        raise MalformedMessage("empty message")
    _refuse_doctype(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessage(f"message is not valid UTF-8 (byte offset {exc.start})") from None

    if len(data) <= _FAST_PATH_BYTES:
        return _parse_small(data, max_depth, max_elements)

    parser = etree.XMLPullParser(events=("start", "end"), **_PARSER_OPTIONS)
    depth = 0
    elements = 0
    try:
        for start in range(0, len(data), _FEED_SIZE):
            parser.feed(data[start : start + _FEED_SIZE])
            for event, _element in parser.read_events():
                if event == "start":
                    depth += 1
                    elements += 1
                    if depth > max_depth:
                        raise MalformedMessage(f"XML nesting deeper than {max_depth} levels")
                    if elements > max_elements:
                        raise MalformedMessage(f"message has more than {max_elements} elements")
                else:
                    depth -= 1
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        raise MalformedMessage(_describe(exc, parser, max_depth)) from None
    except (etree.LxmlError, ValueError, MemoryError) as exc:
        raise MalformedMessage(f"unparsable XML: {type(exc).__name__}") from None

    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise MalformedMessage("DOCTYPE declarations are not allowed in NETCONF messages")
    return root


_PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
    "collect_ids": False,
    "encoding": "utf-8",
}
"""Both parsers: no entities, no DTD, no network, libxml2's own size and depth limits kept."""

_FAST_PATH_BYTES = 1 << 16
"""Messages up to this size (nearly every rpc) are parsed in one call and then measured: at most
a few thousand elements, so the walk is cheap, and the pull parser's per-event cost is avoided."""

_SMALL_PARSER = etree.XMLParser(**_PARSER_OPTIONS)


def _parse_small(data: bytes, max_depth: int, max_elements: int) -> etree._Element:
    try:
        root = etree.fromstring(data, _SMALL_PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedMessage(f"not well-formed XML: {exc.msg}") from None
    except (etree.LxmlError, ValueError, MemoryError) as exc:
        raise MalformedMessage(f"unparsable XML: {type(exc).__name__}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise MalformedMessage("DOCTYPE declarations are not allowed in NETCONF messages")
    elements = 0
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        elements += 1
        if depth > max_depth:
            raise MalformedMessage(f"XML nesting deeper than {max_depth} levels")
        if elements > max_elements:
            raise MalformedMessage(f"message has more than {max_elements} elements")
        if len(element):
            stack.extend((child, depth + 1) for child in element)
    return root


def _refuse_doctype(data: bytes) -> None:
    """Reject a DOCTYPE in the prolog without parsing it: only the XML declaration,
    processing instructions, comments and whitespace may come before the root element, and
    NETCONF has no use for a document type. One linear pass over the prolog."""
    pos = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    end = len(data)
    while True:
        pos = _SPACES.match(data, pos).end()  # type: ignore[union-attr]
        if pos >= end:
            return
        if data.startswith(b"<?", pos):
            close = data.find(b"?>", pos + 2)
            if close < 0:
                return  # unterminated: the parser reports it
            pos = close + 2
        elif data.startswith(b"<!--", pos):
            close = data.find(b"-->", pos + 4)
            if close < 0:
                return
            pos = close + 3
        elif data[pos : pos + 9].upper() == b"<!DOCTYPE":
            raise MalformedMessage("DOCTYPE declarations are not allowed in NETCONF messages")
        else:
            return  # the root element (or garbage, which the parser reports)


def _describe(exc: etree.XMLSyntaxError, parser: etree.XMLPullParser, max_depth: int) -> str:
    """libxml2's first complaint, with its position. The parser's own log is used because
    the push parser's exception sometimes only says "no element found"."""
    first = next((e for e in parser.feed_error_log if e.level >= etree.ErrorLevels.ERROR), None)
    if first is None:
        text = (exc.msg or str(exc) or "syntax error").strip()
    else:
        text = f"{first.message.strip()}, line {first.line}, column {first.column}"
    if text.startswith("Excessive depth"):
        return f"XML nesting deeper than {min(max_depth, 256)} levels"
    return f"not well-formed XML: {text}"
