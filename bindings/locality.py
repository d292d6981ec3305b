"""Which edits can be validated on a slice of the datastore.

A transaction validates a slice (the list entries it touches plus their ancestors' leaves)
instead of the whole tree, so commit cost does not grow with the configuration. That is sound
only when no constraint looks outside an entry. Per outermost list (or top-level leaf/container)
we check, once, from the compiled schema:

- the subtree has no leafref/instance-identifier, `unique`, `min/max-elements`, `must`, or
  `when` with an absolute path, and its ancestors have no `must`/non-local `when`;
- for deletes: no leafref anywhere points into it (creating or changing an entry cannot break a
  reference to its key, deleting it can).

Anything else is validated whole, which is always correct.
"""

from __future__ import annotations

import functools
import re

import libyang
from _libyang import ffi

from .schema import Schema

_PREDICATE = re.compile(r"\[[^\]]*\]")
_PREFIX = re.compile(r"(^|/)[A-Za-z_][\w.-]*:")


def _expression_is_local(expr: str) -> bool:
    text = expr.strip()
    return not text.startswith("/") and "deref(" not in text and "current()" not in text


def _is_reference(node: libyang.SNode) -> bool:
    if not isinstance(node, libyang.SLeaf | libyang.SLeafList):
        return False
    types = [node.type()]
    if types[0].base() == libyang.Type.UNION:
        types = list(types[0].union_types())
    return any(t.base() in (libyang.Type.LEAFREF, libyang.Type.INST) for t in types)


def _node_is_local(node: libyang.SNode) -> bool:
    if _is_reference(node):
        return False
    if isinstance(node, libyang.SList | libyang.SLeafList):
        ctype = "struct lysc_node_list *" if isinstance(node, libyang.SList) else "struct lysc_node_leaflist *"
        compiled = ffi.cast(ctype, node.cdata)
        if compiled.min or compiled.max != 0xFFFFFFFF:
            return False
    if isinstance(node, libyang.SList) and ffi.cast("struct lysc_node_list *", node.cdata).uniques != ffi.NULL:
        return False
    if list(node.must_conditions()):
        return False
    return all(_expression_is_local(w) for w in node.when_conditions())


def subtree_is_local(top: libyang.SNode) -> bool:
    """True when every node under `top` (augments included) is entry-local."""
    if not _node_is_local(top):
        return False
    if isinstance(top, libyang.SContainer | libyang.SList):
        return all(subtree_is_local(child) for child in top.children())
    return True


def _plain(path: str) -> str:
    return _PREFIX.sub(r"\1", _PREDICATE.sub("", path))


def _leafref_targets(schema: Schema) -> list[str]:
    """Prefix-free schema paths that leafrefs point at."""
    targets: list[str] = []
    for module in schema.implemented_modules():
        for top in module.children():
            if top.nodetype() not in _DATA_NODETYPES:
                continue  # rpcs, actions and notifications hold no datastore references
            for node in top.iter_tree():
                if node.config_false() or not _is_reference(node):  # state is not validated on commit
                    continue
                types = [node.type()]
                if types[0].base() == libyang.Type.UNION:
                    types = list(types[0].union_types())
                for t in types:
                    if t.base() != libyang.Type.LEAFREF:
                        targets.append("/")  # instance-identifier: may point anywhere
                        continue
                    path = _plain(t.leafref_path() or "")
                    if not path.startswith("/"):
                        base = _plain(node.schema_path()).split("/")
                        for step in path.split("/"):
                            if step == "..":
                                base.pop()
                            elif step not in ("", "."):
                                base.append(step)
                        path = "/".join(base)
                    targets.append(path)
    return targets


_DATA_NODETYPES = (libyang.SNode.CONTAINER, libyang.SNode.LIST, libyang.SNode.LEAF, libyang.SNode.LEAFLIST)


class Locality:
    """Answers, per schema path of an edit unit, whether a slice is enough."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._targets = _leafref_targets(schema)

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - one Locality per schema, lives as long
    def slice_ok(self, unit_schema_path: str, deleting: bool) -> bool:
        try:
            nodes = list(self.schema.ctx.find_path(unit_schema_path))
        except libyang.LibyangError:
            return False
        if len(nodes) != 1:
            return False
        node = nodes[0]
        if not subtree_is_local(node):
            return False
        parent = node.parent()
        while parent is not None:
            if list(parent.must_conditions()) or not all(_expression_is_local(w) for w in parent.when_conditions()):
                return False
            parent = parent.parent()
        if deleting:
            plain = _plain(unit_schema_path)
            for target in self._targets:
                if target == "/" or target == plain or target.startswith(plain + "/") or plain.startswith(target + "/"):
                    return False
        return True


def schema_path_of(data_path: str) -> str:
    """Drop list predicates from a data path."""
    return _PREDICATE.sub("", data_path)
