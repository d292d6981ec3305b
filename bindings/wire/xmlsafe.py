"""The one XML parser for untrusted NETCONF input.

Anything a client sends goes through `parse_message` before any other code looks at it.
NETCONF never needs a DTD, so a document type declaration is refused outright: that closes
entity expansion (billion laughs), external entities (XXE: ``file:///etc/passwd``) and
network fetches in one rule, before libxml2 sees the bytes. The parser itself is also
configured not to resolve entities, load DTDs or touch the network, as a second wall.
Depth and element count are bounded while parsing, and before libxml2 sees a byte the message's
tree is costed (elements, text nodes, attributes, counted by C-speed scans): a message whose tree
would take more than `DEFAULT_MAX_COST_FACTOR` times its own size is refused, so any message inside
the size cap costs a bounded multiple of its size (a million attributes in 11 MiB once cost 330 MB).
Text costs what it weighs: libxml2 keeps one text node to 10 MB, entities are refused and character
references are never longer than what they stand for. `release_memory` hands what a big parse
freed back to the system.

Every refusal is a `MalformedMessage`, whose text is safe to put in an rpc-error (the agent's
session turns it into malformed-message, RFC 6241 s4.3; a client reports it as an unreadable reply).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import re
import threading
from typing import Any

from lxml import etree

__all__ = ["DEFAULT_MAX_COST_FACTOR", "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_ELEMENTS", "MalformedMessage", "content_xml",
           "parse_message", "parse_message_apart", "release_memory", "tree_cost"]

DEFAULT_MAX_DEPTH = 128
"""Deepest element nesting accepted; YANG data trees are a few dozen levels at most.
(libxml2 itself stops at 256 without its huge-tree option, so larger values act as 256.)"""

DEFAULT_MAX_ELEMENTS = 1_000_000
"""Most elements accepted in one message (about what a 16 MiB message can hold)."""

DEFAULT_MAX_COST_FACTOR = 12
"""Most a parsed tree may cost, as a multiple of the message's size. Measured (libxml2 through lxml):
128 bytes per element or text node, about 240 per attribute or namespace declaration. A bulk
edit-config of 200,000 list entries costs 5 times its 14.5 MiB; pretty-printed data about 10;
an attribute bomb 25 to 35 (refused)."""

COST_FLOOR = 16 << 20
"""A tree up to this many bytes is always allowed, whatever the message's density (every message
under about 1.3 MiB)."""

NODE_COST = 128
"""Bytes a libxml2 element or text node takes."""

ATTRIBUTE_COST = 256
"""Bytes a libxml2 attribute (with its value's text node) or namespace declaration takes."""

_UTF8_BOM = b"\xef\xbb\xbf"
_PROLOG_WHITESPACE = b" \t\r\n"
_SPACES = re.compile(rb"[ \t\r\n]*")
_ATTRIBUTE = re.compile(rb"""=[ \t\r\n]*(?:"[^"<]*"|'[^'<]*')""")
"""An attribute's ``= "value"`` (values hold no ``<``); in text only where text mimics one."""
_TEXT = re.compile(rb">[^<]")
"""Where a text node starts: after a tag, before the next ``<``."""


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
    max_cost_factor: float = DEFAULT_MAX_COST_FACTOR,
) -> etree._Element:
    """Parse one framed NETCONF message into its root element.

    Raises `MalformedMessage` -- and nothing else -- when the bytes are not well-formed
    UTF-8 XML, carry a DOCTYPE, nest deeper than ``max_depth``, hold more than
    ``max_elements`` elements, or would make a tree costing more than ``max_cost_factor`` times
    their size (and more than `COST_FLOOR`). Comments and processing instructions are dropped.
    """
    data = bytes(data)
    if not data.strip(_PROLOG_WHITESPACE):
        raise MalformedMessage("empty message")
    _refuse_doctype(data)
    _refuse_costly(data, max_cost_factor)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessage(f"message is not valid UTF-8 (byte offset {exc.start})") from None

    refusal = None
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        refusal = _describe(exc, max_depth)
    except (etree.LxmlError, ValueError, MemoryError) as exc:
        refusal = f"unparsable XML: {type(exc).__name__}"
    else:
        refusal = _shape_refusal(root, len(data), max_depth, max_elements)
        if refusal is not None:
            del root
    if refusal is not None:
        # Raised here, out of the except blocks (an exception raised in one would hold this frame,
        # and a half-built tree, in a reference cycle until the garbage collector ran): the tree
        # is freed by now, and after a big message its memory goes back to the system.
        if len(data) > _SMALL_MESSAGE:
            release_memory()
        raise MalformedMessage(refusal)
    return root


def content_xml(envelope: etree._Element) -> bytes:
    """The element children of `envelope` (a <config>, RESTCONF's <data>, a YANG Patch <value>) as
    XML text for the schema layer, each with every namespace declaration in scope.

    Values of type instance-identifier and identityref use prefixes that a client may declare on
    any ancestor (<rpc>, <config>, <data>): serializing an element where it stands writes its
    ancestors' declarations on it, whereas moving or copying it into another tree drops those
    whose URI is already bound there under another prefix (lxml), and the value's prefix with them."""
    return b"".join(etree.tostring(child) for child in envelope if isinstance(child.tag, str))


async def parse_message_apart(data: bytes, **limits: Any) -> etree._Element:
    """`parse_message` in a thread of its own that ends with the parse, for big messages.

    lxml interns every element and attribute name in a dictionary kept for the life of the thread
    that parsed: a pooled worker would keep every name it was ever sent (400,000 unique names
    held 10 to 20 MB more per message, for good). The tree keeps its dictionary while it lives;
    both go when it is dropped."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[etree._Element | None, str]] = loop.create_future()

    def settle(result: tuple[etree._Element | None, str]) -> None:
        if not done.cancelled():
            done.set_result(result)

    def work() -> None:
        # A refusal crosses threads as its text: an exception object would carry this frame, and
        # with it the message, in its traceback, kept in a cycle with the future until a GC ran.
        try:
            result: tuple[etree._Element | None, str] = (parse_message(data, **limits), "")
        except MalformedMessage as exc:
            result = (None, exc.message)
        loop.call_soon_threadsafe(settle, result)

    threading.Thread(target=work, name="qstrata-parse", daemon=True).start()
    root, refusal = await done
    if root is None:
        raise MalformedMessage(refusal)
    return root


def tree_cost(data: bytes, limit: int | None = None) -> tuple[int, int, int]:
    """(elements, text nodes, attributes) the tree of `data` would hold, counted without parsing
    and in constant memory: at most a few too many where comments, CDATA or text mimic markup.
    Counting text nodes and attributes stops past `limit` of each."""
    elements = data.count(b"<") - data.count(b"</") - data.count(b"<!") - data.count(b"<?")
    return elements, _count(_TEXT, data, limit), _count(_ATTRIBUTE, data, limit)


def _count(pattern: re.Pattern[bytes], data: bytes, limit: int | None) -> int:
    count = 0
    for count, _ in enumerate(pattern.finditer(data), 1):  # noqa: B007 - counting
        if limit is not None and count > limit:
            break
    return count


def _refuse_costly(data: bytes, factor: float) -> None:
    budget = max(factor * len(data), COST_FLOOR)
    # An upper bound first, from counts at memchr speed (a few milliseconds for 16 MiB): each '<'
    # opens at most one element and closes at most one text node, each attribute has an '='.
    tags = data.count(b"<")
    if 2 * tags * NODE_COST + data.count(b"=") * ATTRIBUTE_COST <= budget:
        return
    limit = int(budget // NODE_COST)  # no count past this can pass
    elements, texts, attributes = tree_cost(data, limit)
    if (elements + texts) * NODE_COST + attributes * ATTRIBUTE_COST > budget:
        def amount(count: int) -> str:
            return f"over {limit}" if count > limit else str(count)

        raise MalformedMessage(
            f"message too dense to parse: {amount(elements)} elements, {amount(texts)} text nodes and "
            f"{amount(attributes)} attributes in {len(data)} bytes would take more than {factor:g} times its size")


def release_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    A parsed tree is thousands of small allocations; freed, they stay in the allocator's arenas
    (one per thread that parsed), so a process that once parsed a big message would keep its
    peak for ever. Cheap next to the parse it follows: call it after a big message is done with."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _malloc_trim():
    try:  # the process's own symbols: libc's on Linux; musl and macOS have no malloc_trim
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None


_MALLOC_TRIM = _malloc_trim()


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
"""No entities, no DTD, no network, libxml2's own size and depth limits kept."""

_SMALL_MESSAGE = 1 << 16
"""Up to this size (nearly every rpc) the parsed tree is measured by a walk in Python, cheaper
there than an XPath evaluation; above it, by libxml2's XPath (a walk of 400,000 elements takes 1.5 s)."""

_THREAD = threading.local()


@functools.lru_cache(maxsize=8)
def _deeper_than(depth: int) -> etree.XPath:
    """True for a tree with an element deeper than `depth` (libxml2 walks it, level by level)."""
    return etree.XPath("boolean(" + "/*" * (depth + 1) + ")")


def _parser() -> etree.XMLParser:
    """This thread's parser (big messages are parsed in worker threads; an lxml parser is not
    shared between threads)."""
    parser = getattr(_THREAD, "parser", None)
    if parser is None:
        parser = _THREAD.parser = etree.XMLParser(**_PARSER_OPTIONS)
    return parser


def _shape_refusal(root: etree._Element, size: int, max_depth: int, max_elements: int) -> str | None:
    """Why the tree is refused (too deep, too many elements), or None."""
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        return "DOCTYPE declarations are not allowed in NETCONF messages"
    if size <= _SMALL_MESSAGE:
        elements = 0
        stack = [(root, 1)]
        while stack:
            element, depth = stack.pop()
            elements += 1
            if depth > max_depth:
                return f"XML nesting deeper than {max_depth} levels"
            if len(element):
                stack.extend((child, depth + 1) for child in element)
    else:
        if _deeper_than(max_depth)(root):
            return f"XML nesting deeper than {max_depth} levels"
        elements = int(root.xpath("count(//*)"))
    if elements > max_elements:
        return f"message has more than {max_elements} elements"
    return None


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


def _describe(exc: etree.XMLSyntaxError, max_depth: int) -> str:
    """libxml2's first complaint, with its position."""
    text = (exc.msg or str(exc) or "syntax error").strip()
    if text.startswith("Excessive depth"):
        return f"XML nesting deeper than {min(max_depth, 256)} levels"
    return f"not well-formed XML: {text}"
