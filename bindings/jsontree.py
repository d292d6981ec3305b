"""JSON-IETF (RFC 7951) instance trees walked with the schema index: merge, leaves, differences,
and the shapes the core's operational read hands out (`Operational`, `OperationalChange`; see
`agents/datastore/operational.py`), kept here so a gNMI server outside the agents (the
collector's northbound) speaks them too.

The core's operational read and every front end that reads it work on plain JSON-IETF dicts,
not on libyang trees: a sample of 10,000 leaves must cost milliseconds. Paths produced are
libyang-style data paths (``/m:a/b[k='v']/c``), the strings the datastore's change lists and
the devices' state events carry, so a change can be matched against what a reader selected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .paths import prefixes, split_data_path
from .schema_index import SchemaIndex, SchemaNode

Json = Any
Leaf = tuple[str, SchemaNode, Json]
"""(data path, schema node, JSON-IETF value) of one leaf or whole leaf-list."""


def split_member(name: str, parent_module: str | None) -> tuple[str, str]:
    """(module, local name) of a JSON-IETF member name below a node of `parent_module`."""
    module, _, local = name.rpartition(":")
    return (module or parent_module or ""), local


def key_text(value: Json) -> str:
    """A key's value as it appears in a data path predicate."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def quoted(value: str) -> str:
    return f"'{value}'" if "'" not in value else f'"{value}"'


def step(path: str, module: str, name: str, parent_module: str | None) -> str:
    return f"{path}/{module}:{name}" if module != parent_module else f"{path}/{name}"


def entry_path(base: str, node: SchemaNode, entry: dict, module: str) -> str:
    preds = []
    for key in node.keys:
        value = entry.get(key)
        if value is None:
            value = entry.get(f"{module}:{key}")
        preds.append(f"[{key}={quoted(key_text(value))}]")
    return base + "".join(preds)


def children(index: SchemaIndex, parent: SchemaNode | None) -> Callable[[str, str], SchemaNode | None]:
    if parent is None:
        return lambda module, name: index.top.get((module, name))
    return lambda module, name: parent.children.get((module, name))


# -- merging config and state ------------------------------------------------------------------


def merge(index: SchemaIndex, base: dict, over: dict) -> dict:
    """`over` merged into a copy of `base` (list entries matched by key); `base` is not
    modified (it is a cached print of running)."""
    return _merge_members(index, None, None, base, over)


def _merge_members(index: SchemaIndex, parent: SchemaNode | None, parent_module: str | None,
                   base: dict, over: dict) -> dict:
    out = dict(base)
    lookup = children(index, parent)
    for name_, value in over.items():
        if name_ not in out:
            out[name_] = value
            continue
        module, name = split_member(name_, parent_module)
        node = lookup(module, name)
        if node is None or node.kind in ("leaf", "leaf-list"):
            out[name_] = value
        elif node.kind == "list" and isinstance(value, list) and isinstance(out[name_], list):
            out[name_] = _merge_entries(index, node, module, out[name_], value)
        elif isinstance(value, dict) and isinstance(out[name_], dict):
            out[name_] = _merge_members(index, node, module, out[name_], value)
        else:
            out[name_] = value
    return out


def _merge_entries(index: SchemaIndex, node: SchemaNode, module: str, base: list, over: list) -> list:
    def key_of(entry: dict) -> tuple:
        return tuple(key_text(entry.get(k, entry.get(f"{module}:{k}"))) for k in node.keys)

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


# -- leaves ---------------------------------------------------------------------------------------


def leaves_of(parent: SchemaNode, parent_module: str, path: str, content: dict,
              keep: Callable[[SchemaNode], bool] | None = None) -> Iterator[Leaf]:
    """Every leaf and leaf-list in `content`, the members of the node `parent` at `path`."""
    if not isinstance(content, dict):
        return
    kids = parent.children
    for name_, value in content.items():
        module, name = split_member(name_, parent_module)
        node = kids.get((module, name))
        if node is None:
            continue
        kind = node.kind
        here = f"{path}/{module}:{name}" if module != parent_module else f"{path}/{name}"
        if kind == "leaf" or kind == "leaf-list":
            if keep is None or keep(node):
                yield here, node, value
        elif kind == "container":
            yield from leaves_of(node, module, here, value, keep)
        elif kind == "list" and isinstance(value, list):
            for entry in value:
                if isinstance(entry, dict):
                    yield from leaves_of(node, module, entry_path(here, node, entry, module), entry, keep)


def at(index: SchemaIndex, tree: dict, path: str, entries: dict | None = None) -> tuple[SchemaNode, str, Json] | None:
    """(schema node, its module, JSON value) of the node at data path `path` in `tree`, or None
    when the tree has no such node. A list step without keys is the whole list. `entries`: a
    dict the caller keeps while `tree` does not change, for many lookups in it (each list is
    indexed by its keys once instead of scanned per lookup)."""
    steps = split_data_path(path)
    parent: SchemaNode | None = None
    parent_module: str | None = None
    content: Json = tree
    node: SchemaNode | None = None
    for i, (qualified, keys) in enumerate(steps):
        if not isinstance(content, dict):
            return None
        module, name = split_member(qualified, parent_module)
        node = children(index, parent)(module, name)
        if node is None:
            return None
        value = content.get(qualified if module != parent_module else name)
        if value is None and module == parent_module:
            value = content.get(f"{module}:{name}")
        if value is None:
            return None
        if node.kind == "list" and keys:
            if not isinstance(value, list):
                return None
            if entries is not None:
                by_key = entries.get(id(value))
                if by_key is None:
                    by_key = entries[id(value)] = {
                        tuple(key_text(e.get(k, e.get(f"{module}:{k}"))) for k in node.keys): e
                        for e in value if isinstance(e, dict)}
                value = by_key.get(tuple(keys.get(k) for k in node.keys))
            else:
                value = next((e for e in value if isinstance(e, dict) and all(
                    key_text(e.get(k, e.get(f"{module}:{k}"))) == v for k, v in keys.items())), None)
            if value is None:
                return None
        elif node.kind == "list" and i + 1 < len(steps):
            return None
        parent, parent_module, content = node, module, value
    if node is None:
        return None
    return node, parent_module or "", content


def leaves_at(index: SchemaIndex, tree: dict, path: str,
              entries: dict | None = None) -> dict[str, tuple[SchemaNode, Json]]:
    """The leaves of `tree` at or under data path `path`, by their paths (`entries`: see `at`)."""
    found = at(index, tree, path, entries)
    if found is None:
        return {}
    node, module, value = found
    if node.kind in ("leaf", "leaf-list"):
        return {path: (node, value)}
    if node.kind == "list" and isinstance(value, list):
        out: dict[str, tuple[SchemaNode, Json]] = {}
        for entry in value:
            if isinstance(entry, dict):
                out.update((p, (n, v)) for p, n, v in leaves_of(node, module, entry_path(path, node, entry, module),
                                                                entry))
        return out
    return {p: (n, v) for p, n, v in leaves_of(node, module, path, value)}


def vanished(gone: list[str], remaining: set[str], depth: int) -> list[str]:
    """The deletes that say `gone` (leaf paths no longer there): for each, the highest ancestor at
    `depth` elements or deeper that holds none of the `remaining` leaves (a list entry, a
    container), else the leaf itself; each delete once, in order."""
    if not gone:
        return []
    held: set[str] = set()
    for path in remaining:
        held.update(prefixes(path)[depth - 1:-1] if depth > 0 else prefixes(path)[:-1])
    out: dict[str, None] = {}
    for path in gone:
        anchor = path
        for prefix in prefixes(path)[max(depth, 1) - 1:-1]:
            if prefix not in held:
                anchor = prefix
                break
        out.setdefault(anchor)
    return list(out)


# -- what changed ----------------------------------------------------------------------------


class Operational(NamedTuple):
    """One operational read: `data` (JSON-IETF, shared: never modify it) produced at `time_ns`
    (Unix ns). A tuple: a sample at interval 0 makes one per response."""

    data: dict
    time_ns: int


@dataclass(slots=True)
class OperationalChange:
    """What changed since the last change handed out.

    `updates`: leaf (or leaf-list) data path -> (schema node, new JSON-IETF value).
    `deletes`: data paths of nodes no longer there (read its keys: an ordered set), the highest
    that went (a list entry rather than each of its leaves). `counts`: how many announcements
    named each announced path (gNMI's duplicates). Call `settle` before reading a change built
    with `update`/`delete`/`fold` (the core's are settled)."""

    time_ns: int = 0
    updates: dict[str, tuple[SchemaNode, Json]] = field(default_factory=dict)
    deletes: dict[str, None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def update(self, path: str, node: SchemaNode, value: Json) -> None:
        if self.deletes:
            for prefix in prefixes(path):
                self.deletes.pop(prefix, None)  # it is back
        self.updates[path] = (node, value)

    def delete(self, path: str) -> None:
        """What went takes its leaves' pending updates with it (dropped by `settle`)."""
        self.deletes[path] = None

    def settle(self) -> None:
        """Drop the updates below a delete: an update written after a delete above it removed
        that delete (`update`), so those left are older than it. A few lookups per update,
        whatever the number of deletes."""
        if not self.deletes or not self.updates:
            return
        for path in [p for p in self.updates if any(q in self.deletes for q in prefixes(p))]:
            del self.updates[path]

    def fold(self, later: OperationalChange) -> None:
        """Take `later` in after this one: the latest value of each leaf, deletes in between."""
        later.settle()
        self.time_ns = later.time_ns
        for path in later.deletes:
            self.delete(path)
        for path, (node, value) in later.updates.items():
            self.update(path, node, value)
        for path, count in later.counts.items():
            self.counts[path] = self.counts.get(path, 0) + count

    def __len__(self) -> int:
        return len(self.updates) + len(self.deletes)


def compare_under(index: SchemaIndex, paths: list[str], before: dict, after: dict, change: OperationalChange, *,
                  kept: Callable[[str], bool] | None = None) -> None:
    """Into `change`: the leaves under each of `paths` that differ between `before` and `after`
    (JSON-IETF trees), and what went as deletes at the highest node gone (one delete per list
    entry), unless `kept(node)` says the node stays by other means (running holds it: its state
    leaves went, its configuration stays; then each leaf that went is deleted)."""
    old_entries: dict = {}
    new_entries: dict = {}
    for path in _outermost(paths):
        old = leaves_at(index, before, path, old_entries)
        new = leaves_at(index, after, path, new_entries)
        for leaf, (node, value) in new.items():
            was = old.get(leaf)
            if was is None or was[1] != value:
                change.update(leaf, node, value)
        gone = [leaf for leaf in old if leaf not in new]
        for anchor in vanished(gone, set(new), len(split_data_path(path))):
            if anchor in old or kept is None or not kept(anchor):
                change.delete(anchor)
            else:
                for leaf in gone:
                    if leaf.startswith(anchor + "/"):
                        change.delete(leaf)


def _outermost(paths: list[str]) -> list[str]:
    """The paths that are not below another of them (each subtree is read once)."""
    kept: set[str] = set()
    out: list[str] = []
    for path in sorted(set(paths), key=len):
        if not any(p in kept for p in prefixes(path)[:-1]):
            kept.add(path)
            out.append(path)
    return out
