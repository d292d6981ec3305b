"""JSON-IETF data walked by request patterns: the read side of every gNMI RPC.

The data is the core's operational read (`agents/datastore/operational.py`: running with
defaults merged with the device's state, as JSON-IETF dicts); this module selects from it what a
request's patterns name, pruning every branch a pattern does not reach. Paths produced are
libyang-style data paths (``/m:a/b[k='v']/c``), the strings the core's changes carry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from qstrata.bindings.jsontree import (
    Json,
    Leaf,
    children,
    entry_path,
    key_text,
    leaves_of,
    split_member,
    step,
)
from qstrata.bindings.schema_index import SchemaIndex, SchemaNode

from .requests import DATA_KINDS, Elem

Match = tuple[str, SchemaNode, str, Json]
"""(data path, schema node, module of the node, JSON value) of a node a pattern selected."""


# -- selecting -----------------------------------------------------------------------------------


def select(index: SchemaIndex, tree: dict, elems: tuple[Elem, ...]) -> Iterator[Match]:
    """The nodes of `tree` a pattern names: list entries one by one, leaves with their value.
    A pattern ending in ``...`` selects everything below where it starts."""
    yield from _select(index, None, None, "", tree, elems, 0)


def _select(index: SchemaIndex, parent: SchemaNode | None, parent_module: str | None, path: str,
            content: dict, elems: tuple[Elem, ...], i: int) -> Iterator[Match]:
    elem = elems[i]
    if elem.name == "...":
        if i + 1 == len(elems):
            for member, value in content.items():
                yield from _expand_member(index, parent, parent_module, path, member, value)
            return
        # zero levels here, or one more level and try again
        yield from _select(index, parent, parent_module, path, content, elems, i + 1)
        for member, value in content.items():
            module, name = split_member(member, parent_module)
            node = children(index, parent)(module, name)
            if node is None or node.kind not in ("container", "list"):
                continue
            here = step(path, module, name, parent_module)
            for where, entry in _entries(node, module, here, value):
                yield from _select(index, node, module, where, entry, elems, i)
        return
    lookup = children(index, parent)
    last = i + 1 == len(elems)
    for member, value in content.items():
        module, name = split_member(member, parent_module)
        if elem.name != "*" and (name != elem.name or elem.module not in (None, module)):
            continue
        node = lookup(module, name)
        if node is None or node.kind not in DATA_KINDS:
            continue
        here = step(path, module, name, parent_module)
        if node.kind in ("leaf", "leaf-list"):
            if last:
                yield here, node, module, value
            continue
        for where, entry in _entries(node, module, here, value, elem.keys):
            if last:
                yield where, node, module, entry
            else:
                yield from _select(index, node, module, where, entry, elems, i + 1)


def _entries(node: SchemaNode, module: str, base: str, value: Json,
             keys: tuple[tuple[str, str], ...] = ()) -> Iterator[tuple[str, dict]]:
    """A container's content, or a list's entries (those matching `keys`) with their paths."""
    if node.kind == "container":
        if isinstance(value, dict):
            yield base, value
        return
    if not isinstance(value, list):
        return
    for entry in value:
        if not isinstance(entry, dict):
            continue
        if keys and any(key_text(entry.get(k, entry.get(f"{module}:{k}"))) != v for k, v in keys):
            continue
        yield entry_path(base, node, entry, module), entry


def _expand_member(index: SchemaIndex, parent: SchemaNode | None, parent_module: str | None, path: str,
                   member: str, value: Json) -> Iterator[Match]:
    module, name = split_member(member, parent_module)
    node = children(index, parent)(module, name)
    if node is None or node.kind not in DATA_KINDS:
        return
    here = step(path, module, name, parent_module)
    if node.kind in ("leaf", "leaf-list"):
        yield here, node, module, value
    else:
        for where, entry in _entries(node, module, here, value):
            yield where, node, module, entry


# -- leaves -----------------------------------------------------------------------------------------


def leaves(match: Match, keep: Callable[[SchemaNode], bool] | None = None) -> Iterator[Leaf]:
    """Every leaf and leaf-list under a selected node (itself when it is one), keys included."""
    path, node, module, value = match
    if node.kind in ("leaf", "leaf-list"):
        if keep is None or keep(node):
            yield path, node, value
        return
    yield from leaves_of(node, module, path, value, keep)


def prune(match: Match, keep: Callable[[SchemaNode], bool]) -> Json:
    """The JSON of a selected node with only the leaves `keep` accepts (list keys stay while an
    entry has anything else); None when nothing is left."""
    _, node, module, value = match
    if node.kind in ("leaf", "leaf-list"):
        return value if keep(node) else None
    return _prune(node, module, value, keep)


def _prune(parent: SchemaNode, parent_module: str, content: Json, keep: Callable[[SchemaNode], bool]) -> Json:
    if not isinstance(content, dict):
        return None
    out: dict = {}
    for member, value in content.items():
        module, name = split_member(member, parent_module)
        node = parent.children.get((module, name))
        if node is None:
            continue
        if node.kind in ("leaf", "leaf-list"):
            if keep(node) or node.is_key:
                out[member] = value
        elif node.kind == "container":
            sub = _prune(node, module, value, keep)
            if sub:
                out[member] = sub
        elif node.kind == "list" and isinstance(value, list):
            entries = [e for e in (_prune(node, module, entry, keep) for entry in value) if e]
            if entries:
                out[member] = entries
    if out and all(_is_key(parent, parent_module, m) for m in out):
        return None
    return out or None


def _is_key(parent: SchemaNode, parent_module: str, member: str) -> bool:
    module, name = split_member(member, parent_module)
    node = parent.children.get((module, name))
    return node is not None and node.is_key
