"""RFC 5277 create-subscription and notification delivery; the RFC 6470 base notifications
(netconf-config-change, -capability-change, -session-start, -session-end, -confirmed-commit)
built from the agent's bus events."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from lxml import etree
from qstrata.agents.events import CapabilityEvent, CommitEvent, ConfirmedCommitEvent, SessionEvent

from .errors import ErrorTag, RpcError

if TYPE_CHECKING:
    from .dispatch import RpcRegistry
    from .server import NetconfServer
    from .session import NetconfSession

NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NCN_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
_N = "{" + NCN_NS + "}"


async def create_subscription(session: NetconfSession, op: etree._Element) -> None:
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
    session.subscribed = True


def register(registry: RpcRegistry) -> None:
    registry.add(NOTIF_NS, "create-subscription", create_subscription)


def now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


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
