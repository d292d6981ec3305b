"""RFC 6022 (get-schema, netconf-state) and RFC 8525 (yang-library) for <get>."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree
from qstrata.bindings.tree import DataTree

from .capabilities import UNSUPPORTED_FEATURES
from .errors import ErrorTag, RpcError

if TYPE_CHECKING:
    from .context import HandlerContext
    from .dispatch import RpcRegistry
    from .server import NetconfServer
    from .session import NetconfSession

MON_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
DATASTORES = ("running", "candidate", "startup", "operational")
"""RFC 8525 s4: one yang-library datastore entry per datastore the server implements."""


def register(registry: RpcRegistry) -> None:
    registry.add(MON_NS, "get-schema", get_schema)


async def get_schema(ctx: HandlerContext, session: NetconfSession, op: etree._Element) -> bytes:
    ident = op.findtext(f"{{{MON_NS}}}identifier")
    version = op.findtext(f"{{{MON_NS}}}version")
    fmt = op.findtext(f"{{{MON_NS}}}format") or "yang"
    if not ident:
        raise RpcError(ErrorTag.MISSING_ELEMENT, "get-schema needs an <identifier>", info=[("bad-element", "identifier")])
    if fmt.split(":")[-1] != "yang":
        raise RpcError(ErrorTag.INVALID_VALUE, "only the yang format is served", info=[("bad-element", "format")])
    schema = ctx.schema
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
    """netconf-state (capabilities, datastores, schemas, sessions, statistics) + yang-library.
    What changes only with the capabilities is built once; locks, sessions and counters per read."""
    static = getattr(server, "_monitoring_static", None)
    if static is None or static[0] is not server.capabilities():
        static = (server.capabilities(), _static_state(server))
        server._monitoring_static = static
    tree = static[1].copy()
    totals = dict(server.ended_stats)
    for session in server.sessions.values():
        for key, value in session.stats.items():
            totals[key] = totals.get(key, 0) + value
    state: dict = {
        "datastores": {"datastore": [
            {"name": name, **({"locks": {"global-lock": {"locked-by-session": sid, "locked-time": server.started}}}
                              if (sid := server.datastore.locks.get(name)) else {})}
            for name in ("running", "candidate", "startup")]},
        "sessions": {"session": [
            {"session-id": s.session_id, "transport": "netconf-ssh", "username": s.ctx.username,
             "source-host": s.ctx.peer[0] if s.ctx.peer else "127.0.0.1", "login-time": s.login_time,
             "in-rpcs": s.stats["in-rpcs"], "in-bad-rpcs": s.stats["in-bad-rpcs"],
             "out-rpc-errors": s.stats["out-rpc-errors"], "out-notifications": s.stats["out-notifications"]}
            for s in server.sessions.values()]},
        "statistics": {"netconf-start-time": server.started, "in-sessions": server.total_sessions,
                       "in-bad-hellos": server.counters["in-bad-hellos"],
                       "dropped-sessions": server.counters["dropped-sessions"],
                       "in-rpcs": totals.get("in-rpcs", 0), "in-bad-rpcs": totals.get("in-bad-rpcs", 0),
                       "out-rpc-errors": totals.get("out-rpc-errors", 0),
                       "out-notifications": totals.get("out-notifications", 0)},
    }
    tree.merge(DataTree.from_python({"ietf-netconf-monitoring:netconf-state": state}, schema=server.schema,
                                    validate=False))
    return tree


def _static_state(server: NetconfServer) -> DataTree:
    schema = server.schema
    state = {
        "capabilities": {"capability": server.capabilities()},
        "schemas": {"schema": [
            {"identifier": m.name(), "version": schema.revision(m.name()) or "", "format": "yang",
             "namespace": schema.namespace(m.name()), "location": ["NETCONF"]}
            for m in schema.implemented_modules()]},
    }
    tree = DataTree.from_python({"ietf-netconf-monitoring:netconf-state": state}, schema=schema, validate=False)
    tree.merge(DataTree.from_python(yang_library(server), schema=schema, validate=False))
    return tree


def yang_library(server: NetconfServer) -> dict:
    """RFC 8525 yang-library (and the deprecated RFC 7895 modules-state), built once per server:
    datastore entries for every datastore, no server file paths (`location`, `schema`: clients
    fetch modules with get-schema), and no feature the agent does not implement."""
    cached = getattr(server, "_yang_library", None)
    if cached is None:
        data = _without_locations(server.schema.yang_library(server.content_id))
        library = data.get("ietf-yang-library:yang-library", {})
        schema_name = (library.get("schema") or [{"name": "complete"}])[0]["name"]
        library["datastore"] = [{"name": f"ietf-datastores:{name}", "schema": schema_name} for name in DATASTORES]
        cached = server._yang_library = data
    return cached


def _without_locations(value):
    """Drop `location` (RFC 8525) and `schema` (RFC 7895) leaves, which are local file URLs."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "location" or (key == "schema" and isinstance(item, str)):
                continue
            if key == "feature" and isinstance(item, list):
                item = [f for f in item if f not in UNSUPPORTED_FEATURES]
                if not item:
                    continue
            out[key] = _without_locations(item)
        return out
    if isinstance(value, list):
        return [_without_locations(v) for v in value]
    return value
