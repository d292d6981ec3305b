"""Plain ``application/json``: the JSON TeraFlowSDN's QKD driver reads and writes. Pure.

TeraFlowSDN (src/device/service/drivers/qkd/) reads member names without module prefix
(``qkd_interfaces``, ``qkd_links``), compares identities bare (``PHYS``), and writes
``null`` for absent leaves (``"virt_prev_hop": null``). RFC 7951 has none of that, so it is a
dialect of its own, served only under its own media type (see `media`):

- out: every member name loses its module prefix (unless two siblings would then clash) and
  every identity value its module (`to_plain`); and three shapes TeraFlowSDN's registered driver
  and service handler need (`_teraflow`, `answer`): ``qkd_links`` is the list of links itself,
  each link also carries TeraFlowSDN's own keys for its id and ends (`LINK_KEYS`), an attachment
  point its ``uuid`` (``device:port``), and a GET of ``qkd_node`` answers the node's members at
  the top. These shapes are output only: bodies sent in are the YANG nesting (what TeraFlowSDN
  sends);
- in: names without prefix are looked up in the schema below their parent, bare identities of
  identityref leaves get the one module that defines them, ``null`` members are dropped
  (`from_plain`). RFC 7951 input is accepted too (qualified names and values pass unchanged).
"""

from __future__ import annotations

import re
from typing import Any

from qstrata.bindings.leafinfo import leaf_info
from qstrata.bindings.schema import Schema
from qstrata.bindings.schema_index import SchemaIndex, SchemaNode

_QUALIFIED = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*):([A-Za-z_][A-Za-z0-9_.-]*)$")


NODE = "etsi-qkd-sdn-node:qkd_node"
LINKS = f"/{NODE}/qkd_links"
LINK = f"{LINKS}/qkd_link"
ATT_POINT = f"/{NODE}/qkd_interfaces/qkd_interface/qkdi_att_point"
LINK_KEYS = ("uuid", "src_qkdn_id", "src_interface_id", "dst_qkdn_id", "dst_interface_id")
"""Members added to each link: TeraFlowSDN's own names for the link's id and ends, which its QKD
service handler reads from every link a device reports (``value['src_qkdn_id']``...)."""


def to_plain(doc: Any, modules: frozenset[str], parent: str = "") -> Any:
    """RFC 7951 JSON (parsed) -> the dialect: prefixes off member names and identity values, and
    TeraFlowSDN's shapes (`_teraflow`). `parent`: the schema path of the members' parent
    (``/etsi-qkd-sdn-node:qkd_node``, as `codec.schema_path` writes it), "" at the top."""
    return _plain(doc, modules, parent, top=True)


def answer(doc: dict, modules: frozenset[str], parent: str) -> Any:
    """The dialect's body for a GET of the one resource `doc` holds: as `to_plain`, and the node
    itself (``qkd_node``) unwrapped, its members at the top (TeraFlowSDN's ``__node__`` read pops
    the node's children there and its service handler reads ``qkdn_id`` from what is left)."""
    plain = _plain(doc, modules, parent, top=True)
    if parent == "" and len(doc) == 1 and next(iter(doc)) == NODE and isinstance(plain, dict):
        inner = next(iter(plain.values()))
        return inner if isinstance(inner, dict) else plain
    return plain


def _plain(doc: Any, modules: frozenset[str], path: str, *, top: bool = False) -> Any:
    if isinstance(doc, dict):
        locals_ = [name.rpartition(":")[2] for name in doc]
        clash = {n for n in locals_ if locals_.count(n) > 1}
        out = {}
        here = _module_of(path) if top else None
        for (name, value), local in zip(doc.items(), locals_, strict=True):
            # RFC 7951 names the module where it changes, as schema_path does (a body's top names it always)
            child = f"{path}/{local if here and name.startswith(here + ':') else name}"
            out[local if local not in clash else name] = _teraflow(child, _plain(value, modules, child))
        return out
    if isinstance(doc, list):
        return [_plain(item, modules, path) for item in doc]
    if isinstance(doc, str):
        m = _QUALIFIED.match(doc)
        if m and m.group(1) in modules:
            return m.group(2)
    return doc


def _module_of(path: str) -> str | None:
    """The module of the last node of a schema path (the last one named)."""
    for segment in reversed(path.split("/")):
        if ":" in segment:
            return segment.partition(":")[0]
    return None


def _teraflow(path: str, value: Any) -> Any:
    """TeraFlowSDN's registered QKD driver (Tools2) reads ``qkd_links`` as the list of links
    itself, keeps those whose ``qkdl_type`` is bare PHYS/VIRT, and its service handler reads each
    one's `LINK_KEYS`; it names an endpoint ``device:port`` and matches interfaces to endpoints
    by their attachment point's ``uuid``. Everything else is the YANG shape."""
    if path == LINK and isinstance(value, list):
        return [_link(entry) for entry in value]
    if path == LINKS and isinstance(value, dict) and set(value) <= {"qkd_link"}:
        return value.get("qkd_link", [])
    if path == ATT_POINT and isinstance(value, dict) and "device" in value and "port" in value:
        return {**value, "uuid": f"{value['device']}:{value['port']}"}
    return value


def _link(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return entry
    local, remote = entry.get("qkdl_local") or {}, entry.get("qkdl_remote") or {}
    derived = (entry.get("qkdl_id"), local.get("qkdn_id"), local.get("qkdi_id"), remote.get("qkdn_id"),
               remote.get("qkdi_id"))
    return {**entry, **dict(zip(LINK_KEYS, derived, strict=True))}


def from_plain(doc: Any, parent: SchemaNode | None, parent_schema_path: str, index: SchemaIndex,
               schema: Schema, *, qualify: bool = True) -> Any:
    """The dialect (parsed) -> RFC 7951 JSON, member names resolved below `parent` (None: the
    top of the datastore); `qualify`: the members are a body's top (RFC 7951 names them with
    their module). Names the schema does not know are left for the parser to refuse."""
    if not isinstance(doc, dict):
        return doc
    out: dict[str, Any] = {}
    for name, value in doc.items():
        if value is None:
            continue
        node = _resolve(name, parent, index)
        if node is None:
            out[name] = value
            continue
        qualified = f"{node.module}:{node.name}"
        shown = qualified if qualify or parent is None or node.module != parent.module else node.name
        path = f"{parent_schema_path}/{node.name if parent is not None and node.module == parent.module else qualified}"
        out[shown] = _value(value, node, path, index, schema)
    return out


def _value(value: Any, node: SchemaNode, path: str, index: SchemaIndex, schema: Schema) -> Any:
    if node.kind == "list" and isinstance(value, list):
        return [from_plain(entry, node, path, index, schema, qualify=False) for entry in value]
    if node.kind == "container":
        return from_plain(value, node, path, index, schema, qualify=False)
    if node.kind in ("leaf", "leaf-list"):
        info = leaf_info(path, schema)
        if info is not None and info.base == "identityref":
            if isinstance(value, list):
                return [_identity(v, schema) for v in value]
            return _identity(value, schema)
    return value


def _identity(value: Any, schema: Schema) -> Any:
    if isinstance(value, str) and ":" not in value:
        found = schema.identities_named(value)
        if len(found) == 1:
            return found[0]
    return value


def _resolve(name: str, parent: SchemaNode | None, index: SchemaIndex) -> SchemaNode | None:
    module, colon, local = name.rpartition(":")
    children = index.top if parent is None else parent.children
    if colon:
        return children.get((module, local))
    found = [node for (_, child_name), node in children.items() if child_name == local]
    if len(found) == 1:
        return found[0]
    if parent is not None:
        return children.get((parent.module, local))
    return None
