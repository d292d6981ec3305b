"""RFC 6022 (get-schema, netconf-state) and RFC 8525 (yang-library) for <get>."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from lxml import etree
from qstrata.bindings.tree import DataTree

from .dispatch import rpc
from .errors import ErrorTag, RpcError

if TYPE_CHECKING:
    from .server import NetconfServer
    from .session import NetconfSession

MON_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"


@rpc(MON_NS, "get-schema")
async def get_schema(session: NetconfSession, op: etree._Element) -> bytes:
    ident = op.findtext(f"{{{MON_NS}}}identifier")
    version = op.findtext(f"{{{MON_NS}}}version")
    fmt = op.findtext(f"{{{MON_NS}}}format") or "yang"
    if not ident:
        raise RpcError(ErrorTag.MISSING_ELEMENT, "get-schema needs an <identifier>", info=[("bad-element", "identifier")])
    if fmt.split(":")[-1] != "yang":
        raise RpcError(ErrorTag.INVALID_VALUE, "only the yang format is served", info=[("bad-element", "format")])
    schema = session.server.schema
    try:
        revision = schema.revision(ident)
        text = schema.schema_text(ident)
    except Exception:
        raise RpcError(ErrorTag.INVALID_VALUE, f"no schema {ident!r}", app_tag="data-not-unique"
                       if False else None, info=[("bad-element", "identifier")]) from None
    if version and revision and version != revision:
        raise RpcError(ErrorTag.INVALID_VALUE, f"{ident} has revision {revision}, not {version}",
                       info=[("bad-element", "version")])
    data = etree.Element(f"{{{MON_NS}}}data", nsmap={None: MON_NS})
    data.text = text
    return etree.tostring(data)


def monitoring_state(server: NetconfServer) -> DataTree:
    """netconf-state (capabilities, datastores, schemas, sessions, statistics) + yang-library."""
    schema = server.schema
    state: dict = {
        "capabilities": {"capability": server.capabilities()},
        "datastores": {"datastore": [
            {"name": name, **({"locks": {"global-lock": {"locked-by-session": sid, "locked-time": server.started}}}
                              if (sid := server.datastore.locks.get(name)) else {})}
            for name in ("running", "candidate", "startup")]},
        "schemas": {"schema": [
            {"identifier": m.name(), "version": schema.revision(m.name()) or "", "format": "yang",
             "namespace": schema.namespace(m.name()), "location": ["NETCONF"]}
            for m in schema.implemented_modules()]},
        "sessions": {"session": [
            {"session-id": s.session_id, "transport": "netconf-ssh", "username": s.ctx.username,
             "source-host": s.ctx.peer[0] if s.ctx.peer else "127.0.0.1", "login-time": s.login_time,
             "in-rpcs": s.stats["in-rpcs"], "in-bad-rpcs": s.stats["in-bad-rpcs"],
             "out-rpc-errors": s.stats["out-rpc-errors"], "out-notifications": s.stats["out-notifications"]}
            for s in server.sessions.values()]},
        "statistics": {"netconf-start-time": server.started, "in-sessions": server.total_sessions,
                       "in-bad-hellos": 0, "dropped-sessions": 0, "in-rpcs": 0, "in-bad-rpcs": 0,
                       "out-rpc-errors": 0, "out-notifications": 0},
    }
    tree = DataTree.from_python({"ietf-netconf-monitoring:netconf-state": state}, schema=schema, validate=False)
    yanglib = json.loads(schema.ctx.get_yanglib_data(server.content_id).print_mem("json", with_siblings=True))
    tree.merge(DataTree.from_python(_without_locations(yanglib), schema=schema, validate=False))
    return tree


def _without_locations(value):
    """yang-library `location` leaves would reveal the server's file paths; clients fetch modules
    with get-schema instead (RFC 8525 makes location optional)."""
    if isinstance(value, dict):
        return {k: _without_locations(v) for k, v in value.items() if k != "location"}
    if isinstance(value, list):
        return [_without_locations(v) for v in value]
    return value
