"""RFC 5277 create-subscription and notification delivery; the RFC 6470 base notifications
(netconf-config-change, -capability-change, -session-start, -session-end, -confirmed-commit)
built from the agent's bus events.

A subscription's ``<filter>`` (RFC 5277 s2.1.1: the same forms as get's, subtree or XPath)
decides which events the session receives; an event it selects anything in is sent whole, as
netconfd and netopeer2 do. The filter sees the event's content (``<netconf-session-end>``...),
not ``<eventTime>``: XPath is evaluated with that element as the document's root element
(``/ncn:netconf-session-end``, or ``/ietf-netconf-notifications:netconf-session-end`` with module
names as prefixes, as in get's XPath filters).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree
from qstrata.agents.events import CapabilityEvent, CommitEvent, ConfirmedCommitEvent, SessionEvent

from .errors import BASE_NS, ErrorTag, RpcError
from .subtree import selects

if TYPE_CHECKING:
    from .context import HandlerContext
    from .dispatch import RpcRegistry
    from .server import NetconfServer
    from .session import NetconfSession

NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NCN_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
_N = "{" + NCN_NS + "}"


async def create_subscription(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> None:
    stream = op.findtext(f"{{{NOTIF_NS}}}stream") or "NETCONF"
    if stream != "NETCONF":
        raise RpcError(ErrorTag.INVALID_VALUE, f"unknown stream {stream!r}; this agent offers NETCONF",
                       info=[("bad-element", "stream")])
    if op.find(f"{{{NOTIF_NS}}}stopTime") is not None and op.find(f"{{{NOTIF_NS}}}startTime") is None:
        # RFC 5277 s2.1.1: a stopTime without a startTime is missing-element, bad-element stopTime
        raise RpcError(ErrorTag.MISSING_ELEMENT, "stopTime needs a startTime", info=[("bad-element", "startTime")])
    if op.find(f"{{{NOTIF_NS}}}startTime") is not None:
        raise RpcError(ErrorTag.OPERATION_NOT_SUPPORTED, "replay is not supported")
    if session.subscribed:
        raise RpcError(ErrorTag.IN_USE, "this session already has a subscription")
    flt = _child(op, "filter")
    session.notification_filter = None if flt is None else parse_filter(flt, ctx.namespace_of)
    session.subscribed = True


def register(registry: RpcRegistry) -> None:
    registry.add(NOTIF_NS, "create-subscription", create_subscription)


@dataclass(frozen=True)
class NotificationFilter:
    """One subscription's RFC 5277 filter: `matches` an event's content element."""

    subtree: tuple[etree._Element, ...] = ()
    xpath: etree.XPath | None = None

    def matches(self, content: etree._Element) -> bool:
        if self.xpath is None:
            holder = etree.Element("event")
            holder.append(copy.deepcopy(content))
            return selects(holder, self.subtree)
        result = self.xpath(copy.deepcopy(content))  # a document of its own: `/` is above the event
        return bool(result) if not isinstance(result, float) else result != 0.0


def parse_filter(flt: etree._Element, namespace_of: Callable[[str], str | None]) -> NotificationFilter:
    """A create-subscription ``<filter>``: refused here, with the reason, if it could never be
    evaluated (unknown type, missing select, bad XPath or an undeclared prefix)."""
    kind = _attribute(flt, "type") or "subtree"
    if kind == "subtree":
        return NotificationFilter(subtree=tuple(copy.deepcopy(c) for c in flt if isinstance(c.tag, str)))
    if kind != "xpath":
        raise RpcError(ErrorTag.BAD_ATTRIBUTE, f"filter type {kind!r} is not subtree or xpath",
                       info=[("bad-attribute", "type"), ("bad-element", "filter")])
    select = _attribute(flt, "select")
    if not select:
        raise RpcError(ErrorTag.MISSING_ATTRIBUTE, "an xpath filter needs a select attribute",
                       info=[("bad-attribute", "select"), ("bad-element", "filter")])
    namespaces = {prefix: ns for prefix, ns in (flt.nsmap or {}).items() if prefix}
    for prefix in _prefixes(select):
        if prefix not in namespaces and (ns := namespace_of(prefix)):
            namespaces[prefix] = ns  # a module name used as prefix
    try:
        xpath = etree.XPath(select, namespaces=namespaces)
        xpath(etree.Element("probe"))  # undeclared prefixes and unknown functions show here
    except etree.XPathError as exc:
        raise RpcError(ErrorTag.INVALID_VALUE, f"invalid XPath filter {select!r}: {exc}",
                       info=[("bad-element", "filter")]) from None
    return NotificationFilter(xpath=xpath)


def _child(op: etree._Element, name: str) -> etree._Element | None:
    """A create-subscription parameter: in RFC 5277's namespace (yangcli), or for <filter> the
    base namespace or none (ncclient builds it like get's)."""
    for tag in (f"{{{NOTIF_NS}}}{name}", f"{{{BASE_NS}}}{name}", name):
        found = op.find(tag)
        if found is not None:
            return found
    return None


def _attribute(flt: etree._Element, name: str) -> str | None:
    """RFC 5277's examples qualify the filter's attributes (``netconf:type``); most clients don't."""
    return flt.get(name) if flt.get(name) is not None else flt.get(f"{{{BASE_NS}}}{name}")


def _prefixes(select: str) -> Sequence[str]:
    return re.findall(r"(?<![\w.:@$-])([A-Za-z_][\w.-]*):(?!:)", select)


def now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_content(message: bytes) -> etree._Element:
    """The event inside a `notification` message (what a subscription's filter sees)."""
    root = etree.fromstring(message)
    return next(c for c in root if isinstance(c.tag, str) and c.tag != f"{{{NOTIF_NS}}}eventTime")


def time_text(unix_ns: int) -> str:
    """yang:date-and-time of a Unix time in nanoseconds (UTC, microseconds)."""
    when = dt.datetime.fromtimestamp(unix_ns / 1e9, dt.UTC)
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


def notification(content: etree._Element | bytes, event_time: str | None = None) -> bytes:
    root = etree.Element(f"{{{NOTIF_NS}}}notification", nsmap={None: NOTIF_NS})
    etree.SubElement(root, f"{{{NOTIF_NS}}}eventTime").text = event_time or now_text()
    root.append(etree.fromstring(content) if isinstance(content, bytes) else content)
    return etree.tostring(root)


def _changed_by(parent: etree._Element, session_id: int | None, username: str | None,
                source_host: str | None = None) -> None:
    """RFC 6470 common-session-parms (or `server` when the server itself acted)."""
    by = etree.SubElement(parent, _N + "changed-by")
    if session_id is None:
        etree.SubElement(by, _N + "server")
        return
    etree.SubElement(by, _N + "username").text = username or ""
    etree.SubElement(by, _N + "session-id").text = str(session_id)
    if source_host:
        etree.SubElement(by, _N + "source-host").text = source_host


def _session_parms(parent: etree._Element, session_id: int, username: str, source_host: str | None) -> None:
    etree.SubElement(parent, _N + "username").text = username
    etree.SubElement(parent, _N + "session-id").text = str(session_id)
    if source_host:
        etree.SubElement(parent, _N + "source-host").text = source_host


def config_change(server: NetconfServer, event: CommitEvent) -> bytes:
    """netconf-config-change for a committed transaction."""
    change = etree.Element(_N + "netconf-config-change", nsmap={None: NCN_NS})
    _changed_by(change, event.session_id, event.username)
    etree.SubElement(change, _N + "datastore").text = event.datastore
    ops = {"create": "create", "delete": "delete", "modify": "replace"}
    for ch in event.changes:
        edit = etree.SubElement(change, _N + "edit")
        target = etree.SubElement(edit, _N + "target", nsmap=server.path_namespaces(ch.path))
        target.text = ch.path
        etree.SubElement(edit, _N + "operation").text = ops[ch.op]
    return notification(change)


_TERMINATION = {"closed", "killed", "dropped", "timeout", "bad-hello", "other"}


def session_event(event: SessionEvent) -> bytes:
    """netconf-session-start / netconf-session-end."""
    name = "netconf-session-start" if event.kind == "start" else "netconf-session-end"
    body = etree.Element(_N + name, nsmap={None: NCN_NS})
    _session_parms(body, event.session_id, event.username, event.source_host)
    if event.kind == "end":
        if event.killed_by is not None:
            etree.SubElement(body, _N + "killed-by").text = str(event.killed_by)
        reason = event.termination_reason if event.termination_reason in _TERMINATION else "other"
        etree.SubElement(body, _N + "termination-reason").text = reason
    return notification(body)


def confirmed_commit(event: ConfirmedCommitEvent) -> bytes:
    """netconf-confirmed-commit: start, cancel, timeout, extend, complete."""
    body = etree.Element(_N + "netconf-confirmed-commit", nsmap={None: NCN_NS})
    if event.session_id is not None and event.kind != "timeout":
        _session_parms(body, event.session_id, event.username or "", None)
    etree.SubElement(body, _N + "confirm-event").text = event.kind
    if event.timeout is not None and event.kind in ("start", "extend"):
        etree.SubElement(body, _N + "timeout").text = str(event.timeout)
    return notification(body)


def capability_change(event: CapabilityEvent) -> bytes:
    """netconf-capability-change (the server itself changed them)."""
    body = etree.Element(_N + "netconf-capability-change", nsmap={None: NCN_NS})
    _changed_by(body, None, None)
    for tag, values in (("added-capability", event.added), ("deleted-capability", event.deleted),
                        ("modified-capability", event.modified)):
        for value in values:
            etree.SubElement(body, _N + tag).text = value
    return notification(body)
