"""JSON-IETF data walked by request patterns: the read side of every gNMI RPC.

Reads work on plain JSON-IETF dicts (running printed once per datastore version, the device's
state as the driver returns it) guided by the schema index, not on libyang trees: a sample of
10,000 leaves must cost milliseconds, and the walk prunes every branch a pattern does not
reach. Paths produced are libyang-style data paths (``/m:a/b[k='v']/c``), the same strings the
datastore's change lists and the device's state events carry, so on-change can match them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from qstrata.bindings.schema_index import SchemaIndex, SchemaNode

from .requests import DATA_KINDS, Elem

Json = Any
Leaf = tuple[str, SchemaNode, Json]
"""(data path, schema node, JSON-IETF value) of one leaf or whole leaf-list."""
Match = tuple[str, SchemaNode, str, Json]
"""(data path, schema node, module of the node, JSON value) of a node a pattern selected."""


def _member(name: str, parent_module: str | None) -> tuple[str, str]:
    module, _, local = name.rpartition(":")
    return (module or parent_module or ""), local


def _key_text(value: Json) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _quoted(value: str) -> str:
    return f"'{value}'" if "'" not in value else f'"{value}"'


def _step(path: str, module: str, name: str, parent_module: str | None) -> str:
    return f"{path}/{module}:{name}" if module != parent_module else f"{path}/{name}"


def _entry_path(base: str, node: SchemaNode, entry: dict, module: str) -> str:
    preds = []
    for key in node.keys:
        value = entry.get(key)
        if value is None:
            value = entry.get(f"{module}:{key}")
        preds.append(f"[{key}={_quoted(_key_text(value))}]")
    return base + "".join(preds)


def _children(index: SchemaIndex, parent: SchemaNode | None) -> Callable[[str, str], SchemaNode | None]:
    if parent is None:
        return lambda module, name: index.top.get((module, name))
    return lambda module, name: parent.children.get((module, name))


# -- merging config and state ------------------------------------------------------------------


def merge(index: SchemaIndex, base: dict, over: dict) -> dict:
    """`over` merged into a copy of `base` (list entries matched by key); `base` is not
    modified (it is the cached print of running)."""
    return _merge_members(index, None, None, base, over)


def _merge_members(index: SchemaIndex, parent: SchemaNode | None, parent_module: str | None,
                   base: dict, over: dict) -> dict:
    out = dict(base)
    lookup = _children(index, parent)
    for member, value in over.items():
        if member not in out:
            out[member] = value
            continue
        module, name = _member(member, parent_module)
        node = lookup(module, name)
        if node is None or node.kind in ("leaf", "leaf-list"):
            out[member] = value
        elif node.kind == "list" and isinstance(value, list) and isinstance(out[member], list):
            out[member] = _merge_entries(index, node, module, out[member], value)
        elif isinstance(value, dict) and isinstance(out[member], dict):
            out[member] = _merge_members(index, node, module, out[member], value)
        else:
            out[member] = value
    return out


def _merge_entries(index: SchemaIndex, node: SchemaNode, module: str, base: list, over: list) -> list:
    def key_of(entry: dict) -> tuple:
        return tuple(_key_text(entry.get(k, entry.get(f"{module}:{k}"))) for k in node.keys)

    merged = list(base)
    position = {key_of(e): i for i, e in enumerate(merged) if isinstance(e, dict)}
    for entry in over:
        if not isinstance(entry, dict):
            continue
        i = position.get(key_of(entry))
        if i is None:
            position[key_of(entry)] = len(merged)
            merged.append(entry)
        else:
            merged[i] = _merge_members(index, node, module, merged[i], entry)
    return merged


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
            module, name = _member(member, parent_module)
            node = _children(index, parent)(module, name)
            if node is None or node.kind not in ("container", "list"):
                continue
            step = _step(path, module, name, parent_module)
            for entry_path, entry in _entries(node, module, step, value):
                yield from _select(index, node, module, entry_path, entry, elems, i)
        return
    lookup = _children(index, parent)
    last = i + 1 == len(elems)
    for member, value in content.items():
        module, name = _member(member, parent_module)
        if elem.name != "*" and (name != elem.name or elem.module not in (None, module)):
            continue
        node = lookup(module, name)
        if node is None or node.kind not in DATA_KINDS:
            continue
        step = _step(path, module, name, parent_module)
        if node.kind in ("leaf", "leaf-list"):
            if last:
                yield step, node, module, value
            continue
        for entry_path, entry in _entries(node, module, step, value, elem.keys):
            if last:
                yield entry_path, node, module, entry
            else:
                yield from _select(index, node, module, entry_path, entry, elems, i + 1)


def _entries(node: SchemaNode, module: str, step: str, value: Json,
             keys: tuple[tuple[str, str], ...] = ()) -> Iterator[tuple[str, dict]]:
    """A container's content, or a list's entries (those matching `keys`) with their paths."""
    if node.kind == "container":
        if isinstance(value, dict):
            yield step, value
        return
    if not isinstance(value, list):
        return
    for entry in value:
        if not isinstance(entry, dict):
            continue
        if keys and any(_key_text(entry.get(k, entry.get(f"{module}:{k}"))) != v for k, v in keys):
            continue
        yield _entry_path(step, node, entry, module), entry


def _expand_member(index: SchemaIndex, parent: SchemaNode | None, parent_module: str | None, path: str,
                   member: str, value: Json) -> Iterator[Match]:
    module, name = _member(member, parent_module)
    node = _children(index, parent)(module, name)
    if node is None or node.kind not in DATA_KINDS:
        return
    step = _step(path, module, name, parent_module)
    if node.kind in ("leaf", "leaf-list"):
        yield step, node, module, value
    else:
        for entry_path, entry in _entries(node, module, step, value):
            yield entry_path, node, module, entry


# -- leaves -----------------------------------------------------------------------------------------


def leaves(match: Match, keep: Callable[[SchemaNode], bool] | None = None) -> Iterator[Leaf]:
    """Every leaf and leaf-list under a selected node (itself when it is one), keys included."""
    path, node, module, value = match
    if node.kind in ("leaf", "leaf-list"):
        if keep is None or keep(node):
            yield path, node, value
        return
    yield from _leaves_of(node, module, path, value, keep)


def _leaves_of(parent: SchemaNode, parent_module: str, path: str, content: dict,
               keep: Callable[[SchemaNode], bool] | None) -> Iterator[Leaf]:
    if not isinstance(content, dict):
        return
    children = parent.children
    for member, value in content.items():
        module, name = _member(member, parent_module)
        node = children.get((module, name))
        if node is None:
            continue
        kind = node.kind
        step = f"{path}/{module}:{name}" if module != parent_module else f"{path}/{name}"
        if kind == "leaf" or kind == "leaf-list":
            if keep is None or keep(node):
                yield step, node, value
        elif kind == "container":
            yield from _leaves_of(node, module, step, value, keep)
        elif kind == "list" and isinstance(value, list):
            for entry in value:
                if isinstance(entry, dict):
                    yield from _leaves_of(node, module, _entry_path(step, node, entry, module), entry, keep)


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
        module, name = _member(member, parent_module)
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
    module, name = _member(member, parent_module)
    node = parent.children.get((module, name))
    return node is not None and node.is_key
