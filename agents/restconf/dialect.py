"""Plain ``application/json``: the JSON TeraFlowSDN's QKD driver reads and writes. Pure.

TeraFlowSDN (src/device/service/drivers/qkd/) reads member names without module prefix
(``qkd_interfaces``, ``qkd_links``), compares identities bare (``PHYS``), and writes
``null`` for absent leaves (``"virt_prev_hop": null``). RFC 7951 has none of that, so it is a
dialect of its own, served only under its own media type (see `media`):

- out: every member name loses its module prefix (unless two siblings would then clash) and
  every identity value its module (`to_plain`);
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


def to_plain(doc: Any, modules: frozenset[str]) -> Any:
    """RFC 7951 JSON (parsed) -> the dialect: prefixes off member names and identity values."""
    if isinstance(doc, dict):
        locals_ = [name.rpartition(":")[2] for name in doc]
        clash = {n for n in locals_ if locals_.count(n) > 1}
        return {(local if local not in clash else name): to_plain(value, modules)
                for (name, value), local in zip(doc.items(), locals_, strict=True)}
    if isinstance(doc, list):
        return [to_plain(item, modules) for item in doc]
    if isinstance(doc, str):
        m = _QUALIFIED.match(doc)
        if m and m.group(1) in modules:
            return m.group(2)
    return doc


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
