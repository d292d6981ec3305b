"""Helpers shared by the black-box NETCONF test modules: raw rpc calls and rpc-error parsing."""

from __future__ import annotations

from lxml import etree
from ncclient.operations import RaiseMode
from ncclient.xml_ import to_ele

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
_NS = {"nc": NC_NS}


def call(m, xml: str) -> etree._Element:
    """Send one operation (an element in the base namespace unless it says otherwise); the reply root,
    whether it holds data, <ok/> or rpc-errors."""
    saved, m.raise_mode = m.raise_mode, RaiseMode.NONE
    try:
        reply = m.dispatch(to_ele(xml))
    finally:
        m.raise_mode = saved
    return etree.fromstring(reply.xml.encode())


def errors(reply: etree._Element) -> list[dict]:
    """Every rpc-error of a reply as a dict (type, tag, severity, app_tag, path, path_nsmap, message,
    info by name, info_names in order)."""
    out = []
    for err in reply.iterfind("nc:rpc-error", _NS):
        info = err.find("nc:error-info", _NS)
        path_el = err.find("nc:error-path", _NS)
        out.append({
            "type": err.findtext("nc:error-type", namespaces=_NS),
            "tag": err.findtext("nc:error-tag", namespaces=_NS),
            "severity": err.findtext("nc:error-severity", namespaces=_NS),
            "app_tag": err.findtext("nc:error-app-tag", namespaces=_NS),
            "path": path_el.text.strip() if path_el is not None and path_el.text and path_el.text.strip() else None,
            "path_nsmap": dict(path_el.nsmap) if path_el is not None else {},
            "message": err.findtext("nc:error-message", namespaces=_NS),
            "info": {etree.QName(c).localname: (c.text or "").strip() for c in info} if info is not None else {},
            "info_names": [etree.QName(c).localname for c in info] if info is not None else [],
        })
    return out


def error_tags(reply: etree._Element) -> list[str]:
    return [e["tag"] for e in errors(reply)]


async def open_session(agent, user: str | None = None, password: str | None = None):
    """The project's own NETCONF client (`qstrata.bindings.wire.netconf_client`) logged into `agent`,
    for tests that pipeline thousands of requests, send 16 MiB ones or time one session while
    another works (ncclient polls its socket and parses every reply)."""
    from qstrata.bindings.wire.netconf_client import NetconfEndpoint, NetconfSession

    creds = agent.credentials
    endpoint = NetconfEndpoint(agent.host, agent.port, user or creds["username"], password or creds["password"])
    return await NetconfSession.open(endpoint, max_message_size=1 << 30)
