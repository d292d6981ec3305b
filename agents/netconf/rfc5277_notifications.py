"""RFC 5277 create-subscription and notification delivery; RFC 6470 netconf-config-change."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from lxml import etree
from qstrata.agents.datastore.store import CommitEvent

from .dispatch import rpc
from .errors import ErrorTag, RpcError

if TYPE_CHECKING:
    from .server import NetconfServer
    from .session import NetconfSession

NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NCN_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"


@rpc(NOTIF_NS, "create-subscription")
async def create_subscription(session: NetconfSession, op: etree._Element) -> None:
    stream = op.findtext(f"{{{NOTIF_NS}}}stream") or "NETCONF"
    if stream != "NETCONF":
        raise RpcError(ErrorTag.INVALID_VALUE, f"unknown stream {stream!r}; this agent offers NETCONF",
                       info=[("bad-element", "stream")])
    if op.find(f"{{{NOTIF_NS}}}startTime") is not None:
        raise RpcError(ErrorTag.OPERATION_NOT_SUPPORTED, "replay is not supported")
    if session.subscribed:
        raise RpcError(ErrorTag.IN_USE, "this session already has a subscription")
    session.subscribed = True


def now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def notification(content: etree._Element | bytes, event_time: str | None = None) -> bytes:
    root = etree.Element(f"{{{NOTIF_NS}}}notification", nsmap={None: NOTIF_NS})
    etree.SubElement(root, f"{{{NOTIF_NS}}}eventTime").text = event_time or now_text()
    root.append(etree.fromstring(content) if isinstance(content, bytes) else content)
    return etree.tostring(root)


def config_change(server: NetconfServer, event: CommitEvent) -> bytes:
    """RFC 6470 netconf-config-change for a committed transaction."""
    change = etree.Element(f"{{{NCN_NS}}}netconf-config-change", nsmap={None: NCN_NS})
    by = etree.SubElement(change, f"{{{NCN_NS}}}changed-by")
    if event.session_id is None:
        etree.SubElement(by, f"{{{NCN_NS}}}server")
    else:
        etree.SubElement(by, f"{{{NCN_NS}}}username").text = event.username or ""
        etree.SubElement(by, f"{{{NCN_NS}}}session-id").text = str(event.session_id)
    etree.SubElement(change, f"{{{NCN_NS}}}datastore").text = event.datastore
    ops = {"create": "create", "delete": "delete", "modify": "replace"}
    for ch in event.changes:
        edit = etree.SubElement(change, f"{{{NCN_NS}}}edit")
        nsmap = {p: ns for p, ns in server.path_namespaces(ch.path).items()}
        target = etree.SubElement(edit, f"{{{NCN_NS}}}target", nsmap=nsmap)
        target.text = ch.path
        etree.SubElement(edit, f"{{{NCN_NS}}}operation").text = ops[ch.op]
    return notification(change)
