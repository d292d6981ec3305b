"""A plain-Python index of the compiled schema: what access control needs to know about nodes.

NACM (RFC 8341) must know, for any data node, RPC or notification, which module defines it,
which keys a list has, and whether the schema marks it ``nacm:default-deny-write`` or
``nacm:default-deny-all``. Those facts live in libyang's compiled schema; this module reads them
once per `Schema` into immutable Python objects, so the evaluator in ``agents/access`` stays pure
and never touches libyang.

Choice and case nodes are not data nodes: their children appear under the nearest data node.
NACM extensions are inherited downwards (RFC 8341 s3.4.5: "the data node and all its
descendants"), so `SchemaNode.nacm` is already the effective value.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from _libyang import ffi, lib

from .schema import Schema

__all__ = ["DENY_ALL", "DENY_WRITE", "NacmExtension", "SchemaIndex", "SchemaNode", "schema_index"]

NACM_MODULE = "ietf-netconf-acm"
DENY_WRITE = "default-deny-write"
DENY_ALL = "default-deny-all"
NacmExtension = Literal["default-deny-write", "default-deny-all"]
NodeKind = Literal["container", "list", "leaf", "leaf-list", "anydata", "anyxml", "rpc", "action", "notification"]

_STRENGTH = {None: 0, DENY_WRITE: 1, DENY_ALL: 2}
_KINDS = {
    lib.LYS_CONTAINER: "container",
    lib.LYS_LIST: "list",
    lib.LYS_LEAF: "leaf",
    lib.LYS_LEAFLIST: "leaf-list",
    lib.LYS_ANYDATA: "anydata",
    lib.LYS_ANYXML: "anyxml",
    lib.LYS_RPC: "rpc",
    lib.LYS_ACTION: "action",
    lib.LYS_NOTIF: "notification",
}


@dataclass(frozen=True, eq=False)
class SchemaNode:
    """One data node, RPC, action or notification of the compiled schema.

    ``nacm`` is the effective extension (own or inherited from an ancestor); ``modules_below``
    the modules of all descendants (augments bring in others); ``stricter_below`` the
    extensions that some descendant has on top of this node's own."""

    module: str
    name: str
    kind: NodeKind
    config: bool
    is_key: bool = False
    keys: tuple[str, ...] = ()
    nacm: NacmExtension | None = None
    children: Mapping[tuple[str, str], SchemaNode] = field(default_factory=dict, repr=False)
    modules_below: frozenset[str] = frozenset()
    stricter_below: frozenset[str] = frozenset()

    def child(self, module: str, name: str) -> SchemaNode | None:
        return self.children.get((module, name))


@dataclass(frozen=True, eq=False)
class SchemaIndex:
    """Top-level data nodes, RPCs and notifications by ``(module, name)``, and the modules'
    prefixes (to resolve paths written with YANG prefixes instead of module names)."""

    top: Mapping[tuple[str, str], SchemaNode]
    rpcs: Mapping[tuple[str, str], SchemaNode]
    notifications: Mapping[tuple[str, str], SchemaNode]
    modules: frozenset[str]
    prefixes: Mapping[str, str]

    def node(self, steps: Sequence[tuple[str, str]]) -> SchemaNode | None:
        """The data node at ``[(module, name), ...]`` from the top, or None."""
        if not steps:
            return None
        node = self.top.get((steps[0][0], steps[0][1]))
        for module, name in steps[1:]:
            if node is None:
                return None
            node = node.children.get((module, name))
        return node

    def module_name(self, prefix_or_name: str) -> str | None:
        """A module name for a name or a YANG prefix of an implemented module."""
        if prefix_or_name in self.modules:
            return prefix_or_name
        return self.prefixes.get(prefix_or_name)


@functools.cache
def schema_index(schema: Schema) -> SchemaIndex:
    """The index of ``schema`` (built once per schema: a few milliseconds)."""
    top: dict[tuple[str, str], SchemaNode] = {}
    rpcs: dict[tuple[str, str], SchemaNode] = {}
    notifications: dict[tuple[str, str], SchemaNode] = {}
    modules: set[str] = set()
    prefixes: dict[str, str] = {}
    for module in schema.ctx:
        if not module.implemented():
            continue
        modules.add(module.name())
        prefixes.setdefault(module.prefix(), module.name())
        for node in _build_children(_getnext_all(ffi.NULL, module.cdata.compiled), None):
            key = (node.module, node.name)
            if node.kind == "rpc":
                rpcs[key] = node
            elif node.kind == "notification":
                notifications[key] = node
            else:
                top[key] = node
    return SchemaIndex(
        top=MappingProxyType(top),
        rpcs=MappingProxyType(rpcs),
        notifications=MappingProxyType(notifications),
        modules=frozenset(modules),
        prefixes=MappingProxyType(prefixes),
    )


def _getnext_all(parent, compiled_module) -> Iterable:
    """Children of a node (or a module's top level) through choice/case, with actions and
    notifications (``lys_getnext`` returns those too)."""
    child = lib.lys_getnext(ffi.NULL, parent, compiled_module, 0)
    while child != ffi.NULL:
        yield child
        child = lib.lys_getnext(child, parent, compiled_module, 0)


def _own_extension(cnode) -> NacmExtension | None:
    found: NacmExtension | None = None
    exts = cnode.exts
    if exts == ffi.NULL:
        return None
    count = ffi.cast("uint64_t *", exts)[-1]  # LY_ARRAY size lives just before the items
    for i in range(count):
        definition = getattr(exts[i], "def")
        if definition == ffi.NULL or definition.module == ffi.NULL:
            continue
        if ffi.string(definition.module.name).decode() != NACM_MODULE:
            continue
        name = ffi.string(definition.name).decode()
        if name in (DENY_WRITE, DENY_ALL) and _STRENGTH[name] > _STRENGTH[found]:
            found = name  # type: ignore[assignment]
    return found


def _strongest(a: NacmExtension | None, b: NacmExtension | None) -> NacmExtension | None:
    return a if _STRENGTH[a] >= _STRENGTH[b] else b


def _build_children(cnodes: Iterable, inherited: NacmExtension | None) -> list[SchemaNode]:
    return [_build(cnode, inherited) for cnode in cnodes if cnode.nodetype in _KINDS]


def _build(cnode, inherited: NacmExtension | None) -> SchemaNode:
    kind = _KINDS[cnode.nodetype]
    nacm = _strongest(inherited, _own_extension(cnode))
    children: dict[tuple[str, str], SchemaNode] = {}
    modules_below: set[str] = set()
    stricter: set[str] = set()
    if cnode.nodetype in (lib.LYS_CONTAINER, lib.LYS_LIST):
        for child in _build_children(_getnext_all(cnode, ffi.NULL), nacm):
            children[(child.module, child.name)] = child
            modules_below.add(child.module)
            modules_below |= child.modules_below
            if child.nacm is not None and child.nacm != nacm:
                stricter.add(child.nacm)
            stricter |= child.stricter_below
    return SchemaNode(
        module=ffi.string(cnode.module.name).decode(),
        name=ffi.string(cnode.name).decode(),
        kind=kind,  # type: ignore[arg-type]
        config=bool(cnode.flags & lib.LYS_CONFIG_W),
        is_key=cnode.nodetype == lib.LYS_LEAF and bool(cnode.flags & lib.LYS_KEY),
        keys=tuple(c.name for c in children.values() if c.is_key),
        nacm=nacm,
        children=MappingProxyType(children),
        modules_below=frozenset(modules_below),
        stricter_below=frozenset(stricter),
    )
