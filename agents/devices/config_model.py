"""A driver's own copy of its configuration, kept up to date from change lists.

A transaction's `changes` (libyang data paths with list keys, see `bindings.diff.Change`) are
applied to a JSON-IETF-like tree whose lists are indexed by their keys, so one change costs one
dict lookup per path step whatever the size of the configuration. Drivers name the lists they
keep typed records of (`watch`); `apply` reports which entries of those lists a change list
touched (and which other nodes), so a driver re-reads only those.

Lists become indexed the first time a path with their keys goes through them (the key names
come from the path's predicates, or from the driver for the lists it watches), so no schema is
needed. `revert` undoes an `apply` (a refused `prepare`) from an undo log; re-inserted list
entries go to the end of their list.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from qstrata.bindings.diff import Change
from qstrata.bindings.paths import split_data_path

from .base import JsonTree

log = logging.getLogger("qstrata.devices")

Names = tuple[str, ...]
"""A schema path as node names, module-qualified where RFC 7951 qualifies them:
``("etsi-qkd-sdn-node:qkd_node", "qkd_links", "qkd_link")``."""
Key = tuple[str, ...]
"""A list entry's key values in predicate order, as strings (``("1",)``)."""

_MISSING: Any = object()


class ModelOutOfSync(Exception):
    """A change does not fit the model (creates what exists, deletes or modifies what does not):
    the driver's copy no longer matches the datastore's."""


class Keyed(dict):
    """A YANG list: entries by key values, in document order. `names` are the key leaves."""

    __slots__ = ("names",)

    def __init__(self, names: tuple[str, ...], entries: Iterable[tuple[Key, Any]] = ()) -> None:
        super().__init__(entries)
        self.names = names


def key_text(value: Any) -> str:
    """A JSON-IETF scalar as the canonical string a path predicate carries."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _keyed(entries: list[Any], names: tuple[str, ...]) -> Keyed:
    return Keyed(names, ((tuple(key_text(e.get(n)) for n in names), e) for e in entries if isinstance(e, dict)))


def to_json(value: Any) -> Any:
    """Plain JSON-IETF (lists as lists) of a model node; a copy."""
    if isinstance(value, Keyed):
        return [to_json(v) for v in value.values()]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


@dataclass
class Applied:
    """What one `apply` did: an undo log (for `revert`), the watched list entries it touched (by
    list path), and the schema paths of the other nodes it changed."""

    undo: list[tuple[dict[Any, Any], Any, Any]] = field(default_factory=list)
    """(mapping, key, value before or _MISSING), in the order they were changed."""
    touched: dict[Names, set[Key]] = field(default_factory=dict)
    others: set[Names] = field(default_factory=set)

    def keys(self, names: Names) -> set[Key]:
        return self.touched.get(names, set())

    def touches(self, prefix: Names) -> bool:
        """Did a change reach `prefix` or anything below it (watched lists included)?"""
        n = len(prefix)
        return any(p[:n] == prefix for p in self.others) or any(
            p[:n] == prefix and keys for p, keys in self.touched.items())


class ConfigModel:
    """The configuration under some top-level nodes (`tops`, e.g. ``etsi-qkd-sdn-node:qkd_node``).

    `watch` maps the lists a driver keeps records of to their key leaves, e.g.
    ``{("etsi-qkd-sdn-node:qkd_node", "qkd_links", "qkd_link"): ("qkdl_id",)}`` (containers only
    above them)."""

    def __init__(self, tops: Iterable[str], watch: dict[Names, tuple[str, ...]] | None = None,
                 tree: JsonTree | None = None) -> None:
        self.tops = frozenset(tops)
        self.watch = dict(watch or {})
        self.root: dict[str, Any] = {}
        if tree is not None:
            self.reset(tree)

    def reset(self, tree: JsonTree) -> None:
        """Take a whole JSON-IETF tree (only the model's top-level nodes are kept)."""
        self.root = {k: copy.deepcopy(v) for k, v in tree.items() if k in self.tops}

    def to_json(self) -> JsonTree:
        return to_json(self.root)

    # -- reading -----------------------------------------------------------------------------

    def get(self, names: Names, default: Any = None) -> Any:
        """The node at a key-less schema path (containers and leaves), as plain JSON-IETF."""
        node: Any = self.root
        for name in names:
            if not isinstance(node, dict) or isinstance(node, Keyed) or name not in node:
                return default
            node = node[name]
        return to_json(node)

    def entry(self, names: Names, key: Key) -> dict[str, Any] | None:
        """One entry of a watched list, as plain JSON-IETF, or None."""
        entries = self._list(names)
        found = entries.get(key) if entries is not None else None
        return None if found is None else to_json(found)

    def keys(self, names: Names) -> list[Key]:
        """The keys of a watched list, in document order."""
        entries = self._list(names)
        return list(entries) if entries is not None else []

    def _list(self, names: Names) -> Keyed | None:
        node = _container(self.root, names[:-1])
        if node is None or names[-1] not in node:
            return None
        return self._indexed(node, names[-1], self.watch[names], create=False)

    # -- writing -----------------------------------------------------------------------------

    def apply(self, changes: Iterable[Change]) -> Applied:
        """Apply changes in order. Raises `ModelOutOfSync` (after undoing what it did) when a
        change does not fit."""
        applied = Applied()
        try:
            for change in changes:
                self._apply_one(change, applied)
        except ModelOutOfSync:
            self.revert(applied)
            raise
        return applied

    def revert(self, applied: Applied) -> None:
        """Undo an `apply`, last write first: the values before it come back as they were."""
        undo, applied.undo = applied.undo, []
        for mapping, key, before in reversed(undo):
            if before is _MISSING:
                mapping.pop(key, None)
            else:
                mapping[key] = before

    def _apply_one(self, change: Change, applied: Applied) -> None:
        steps = split_data_path(change.path)
        if not steps or steps[0][0] not in self.tops:
            return
        names = tuple(name for name, _ in steps)
        undo = applied.undo
        node: Any = self.root
        for depth, (name, keys) in enumerate(steps[:-1]):
            node = self._child(node, name, keys, undo, create=change.op != "delete")
            if node is None:
                raise ModelOutOfSync(f"{change.op} {change.path}: {'/'.join(names[:depth + 1])} is missing")
        name, keys = steps[-1]
        if keys and "." in keys:
            self._leaf_list(node, name, keys["."], change, undo)
        elif keys:
            self._entry(node, name, keys, change, undo)
        else:
            self._node(node, name, names, change, undo)
        for w in self.watch:
            n = len(w)
            if len(names) >= n and names[:n] == w and steps[n - 1][1]:
                applied.touched.setdefault(w, set()).add(tuple(steps[n - 1][1].values()))
                return
        value = change.new if change.op == "create" else change.old
        for w in self._watched_below(names):
            found = set(self._value_keys(value, w[len(names):], self.watch[w]))
            if found:
                applied.touched.setdefault(w, set()).update(found)
        applied.others.add(names)

    def _child(self, node: dict[str, Any], name: str, keys: dict[str, str], undo: list, *, create: bool) -> Any:
        if keys:
            if create and name not in node:
                undo.append((node, name, _MISSING))
            entries = self._indexed(node, name, tuple(keys), create=create)
            if entries is None:
                return None
            key = tuple(keys.values())
            entry = entries.get(key)
            if entry is None and create:
                undo.append((entries, key, _MISSING))
                entry = entries[key] = dict(keys)
            return entry
        child = node.get(name)
        if child is None and create:
            undo.append((node, name, _MISSING))
            child = node[name] = {}
        return child if isinstance(child, dict) and not isinstance(child, Keyed) else None

    @staticmethod
    def _indexed(node: dict[str, Any], name: str, key_names: tuple[str, ...], *, create: bool) -> Keyed | None:
        """The list `name` of `node`, indexed by its keys (indexed once, in place)."""
        entries = node.get(name)
        if isinstance(entries, Keyed):
            return entries
        if entries is None:
            if not create:
                return None
            entries = node[name] = Keyed(key_names)
            return entries
        if isinstance(entries, dict):  # one entry sent as an object (lenient JSON)
            entries = [entries]
        indexed = node[name] = Keyed(key_names, (
            (tuple(key_text(e.get(k)) for k in key_names), e) for e in entries if isinstance(e, dict)))
        return indexed

    def _entry(self, node: dict[str, Any], name: str, keys: dict[str, str], change: Change, undo: list) -> None:
        if change.op == "create" and name not in node:
            undo.append((node, name, _MISSING))
        entries = self._indexed(node, name, tuple(keys), create=change.op == "create")
        key = tuple(keys.values())
        present = entries is not None and key in entries
        if change.op == "create":
            if present:
                raise ModelOutOfSync(f"create {change.path}: it exists")
            undo.append((entries, key, _MISSING))
            entries[key] = _model_value(change.new)  # type: ignore[index]
        elif change.op == "delete":
            if not present:
                raise ModelOutOfSync(f"delete {change.path}: it is missing")
            undo.append((entries, key, entries.pop(key)))  # type: ignore[union-attr]
        elif not present:  # a user-ordered move: the order is not modelled
            raise ModelOutOfSync(f"modify {change.path}: it is missing")

    @staticmethod
    def _leaf_list(node: dict[str, Any], name: str, value: str, change: Change, undo: list) -> None:
        """Leaf-lists stay plain lists (they are short); each change replaces the list."""
        before = node.get(name, _MISSING)
        values = [] if before is _MISSING else list(before) if isinstance(before, list) else [before]
        texts = [key_text(v) for v in values]
        if change.op == "create":
            if value in texts:
                raise ModelOutOfSync(f"create {change.path}: it exists")
            values.append(value)
        elif change.op == "delete":
            if value not in texts:
                raise ModelOutOfSync(f"delete {change.path}: it is missing")
            del values[texts.index(value)]
        else:
            return
        undo.append((node, name, before))
        if values:
            node[name] = values
        else:
            node.pop(name, None)

    def _node(self, node: dict[str, Any], name: str, names: Names, change: Change, undo: list) -> None:
        """A leaf, or a container with its subtree. Containers merge: a transaction computed on a
        slice of the datastore reports the container of a new entry as created with that entry
        only, and as deleted with the entries it lost only; so a created container's content is
        added to what the copy has, and a deleted one's content is taken out of it."""
        before = node.get(name, _MISSING)
        if change.op == "delete":
            if before is _MISSING:
                raise ModelOutOfSync(f"delete {change.path}: it is missing")
            if isinstance(change.old, dict) and isinstance(before, dict) and not isinstance(before, Keyed):
                self._subtract(node, name, change.old, names, undo, change.path)
            else:
                undo.append((node, name, before))
                del node[name]
            return
        if change.op == "modify" and before is _MISSING:
            raise ModelOutOfSync(f"modify {change.path}: it is missing")
        if isinstance(change.new, dict) and isinstance(before, dict) and not isinstance(before, Keyed):
            if change.op == "create":
                self._merge(node, name, change.new, names, undo)
            return  # modify of a container: a user-ordered move, the order is not modelled
        undo.append((node, name, before))
        node[name] = _model_value(change.new)

    def _list_names(self, names: Names, entries: Any, sample: dict[str, Any]) -> tuple[str, ...]:
        """Key names of the list at `names`: the driver's, the index's, else the first member
        of an entry (RFC 7951 printers put keys first; good enough for unwatched lists)."""
        if names in self.watch:
            return self.watch[names]
        if isinstance(entries, Keyed):
            return entries.names
        return (next(iter(sample)),)

    def _merge(self, parent: dict[str, Any], name: str, value: Any, names: Names, undo: list) -> None:
        before = parent.get(name, _MISSING)
        if before is _MISSING or _empty(before) or not isinstance(value, (dict, list)):
            undo.append((parent, name, before))
            parent[name] = _model_value(value)
        elif isinstance(value, dict) and isinstance(before, dict) and not isinstance(before, Keyed):
            for child, sub in value.items():
                self._merge(before, child, sub, (*names, child), undo)
        elif isinstance(value, list) and value and isinstance(value[0], dict):  # list entries
            key_names = self._list_names(names, before, value[0])
            entries = self._indexed(parent, name, key_names, create=True)
            for entry in value:
                key = tuple(key_text(entry.get(k)) for k in key_names)
                undo.append((entries, key, entries.get(key, _MISSING)))  # type: ignore[union-attr]
                entries[key] = _model_value(entry)  # type: ignore[index]
        elif isinstance(value, list):  # leaf-list values
            old = before if isinstance(before, list) else [before]
            texts = {key_text(v) for v in old}
            undo.append((parent, name, before))
            parent[name] = [*old, *(v for v in value if key_text(v) not in texts)]
        else:
            undo.append((parent, name, before))
            parent[name] = _model_value(value)

    def _subtract(self, parent: dict[str, Any], name: str, value: Any, names: Names, undo: list, path: str) -> None:
        before = parent.get(name, _MISSING)
        if before is _MISSING:
            raise ModelOutOfSync(f"delete {path}: {'/'.join(names)} is missing")
        if isinstance(value, dict) and isinstance(before, dict) and not isinstance(before, Keyed):
            for child, sub in value.items():
                self._subtract(before, child, sub, (*names, child), undo, path)
            if not _empty(before):
                return
        elif isinstance(value, list) and value and isinstance(value[0], dict):  # list entries
            key_names = self._list_names(names, before, value[0])
            entries = self._indexed(parent, name, key_names, create=False)
            for entry in value:
                key = tuple(key_text(entry.get(k)) for k in key_names)
                if entries is None or key not in entries:
                    raise ModelOutOfSync(f"delete {path}: {'/'.join(names)} entry {key} is missing")
                undo.append((entries, key, entries.pop(key)))
            if entries:
                return
        elif isinstance(value, list) and isinstance(before, list):  # leaf-list values
            gone = {key_text(v) for v in value}
            kept = [v for v in before if key_text(v) not in gone]
            if kept:
                undo.append((parent, name, before))
                parent[name] = kept
                return
        undo.append((parent, name, parent[name]))
        del parent[name]

    # -- what a change touched ---------------------------------------------------------------

    def _watched_below(self, names: Names) -> list[Names]:
        """Watched lists strictly below the node at `names`."""
        n = len(names)
        return [w for w in self.watch if len(w) > n and w[:n] == names]

    @staticmethod
    def _value_keys(value: Any, rest: Names, key_names: tuple[str, ...]) -> list[Key]:
        """Keys of the list entries at relative path `rest` in a change's subtree value."""
        for name in rest[:-1]:
            if not isinstance(value, dict):
                return []
            value = value.get(name)
        if not isinstance(value, dict):
            return []
        entries = value.get(rest[-1])
        if isinstance(entries, dict):
            entries = [entries]
        if not isinstance(entries, list):
            return []
        return [tuple(key_text(e.get(k)) for k in key_names) for e in entries if isinstance(e, dict)]


def _container(node: Any, names: Names) -> dict[str, Any] | None:
    for name in names:
        if not isinstance(node, dict) or isinstance(node, Keyed):
            return None
        node = node.get(name)
    return node if isinstance(node, dict) and not isinstance(node, Keyed) else None


def _model_value(value: Any) -> Any:
    """A change's new value as stored: subtrees copied (they are the change's own objects)."""
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else value


def _empty(value: Any) -> bool:
    """No data below (containers that only hold empty containers or lists)."""
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    if isinstance(value, list):
        return not value
    return False


# -- the prepare / commit / abort bookkeeping every twin shares --------------------------------


@dataclass
class Staged:
    """One prepared transaction: what it did to the configuration copy (`applied`, for `revert`;
    None when the copy was re-read whole), whether the driver must re-read everything (`whole`:
    the copy was just seeded or re-read), and the driver's own reading of it (`result`)."""

    txn: Any
    model: ConfigModel
    applied: Applied | None
    whole: bool
    result: Any = None

    def touched(self, names: Names, running: Iterable[Any] = ()) -> list[str]:
        """Key values (single-key list `names`) the transaction touched; for a whole re-read,
        every entry the driver runs (`running`) or the configuration has."""
        if self.whole or self.applied is None:
            return list(dict.fromkeys([*(str(k) for k in running), *(k[0] for k in self.model.keys(names))]))
        return [k[0] for k in self.applied.keys(names)]

    def changed(self, names: Names) -> bool:
        """Did something at or below `names` change, watched list entries aside?"""
        if self.whole or self.applied is None:
            return True
        n = len(names)
        return any(p[:n] == names and not any(p[:len(w)] == w for w in self.model.watch)
                   for p in self.applied.others)


class ChangeTracker:
    """A driver's configuration copy through the transaction phases.

    `seed` starts the copy from the inventory; `stage` (in prepare) applies a change list; the
    copy is re-seeded from the transaction's old configuration when there is none (after an
    abort, or after a transaction that was prepared but never committed), and re-read from the new configuration when a change
    does not fit it (logged: the copy was out of step). `refused` undoes a stage whose prepare
    refused; `committed` ends it; `aborted` drops the copy (running may have changed without the
    driver, as when a refused restart replay is served anyway)."""

    def __init__(self, name: str, tops: Iterable[str], watch: dict[Names, tuple[str, ...]]) -> None:
        self.name = name
        self.tops = tuple(tops)
        self.watch = dict(watch)
        self.model: ConfigModel | None = None
        self.pending: Staged | None = None

    def seed(self, tree: JsonTree) -> None:
        """Start from what the device has (its inventory: what running starts as, and what a
        restart replays the restored configuration against)."""
        self.model, self.pending = ConfigModel(self.tops, self.watch, tree), None

    def stage(self, txn: Any) -> Staged:
        if self.pending is not None:  # prepared, then neither committed nor aborted
            self.pending, self.model = None, None
        fresh = self.model is None
        if self.model is None:
            self.model = ConfigModel(self.tops, self.watch, txn.old_config)
        applied: Applied | None
        try:
            applied = self.model.apply(txn.changes)
        except ModelOutOfSync as exc:
            log.warning("%s: configuration copy out of step with the datastore (%s); re-reading it", self.name, exc)
            self.model.reset(txn.new_config)
            applied = None
        self.pending = Staged(txn, self.model, applied, whole=fresh or applied is None)
        return self.pending

    def current(self) -> JsonTree | None:
        """The configuration the device runs, when the copy is sure of it (not while a
        transaction is prepared, not after an abort): what a management agent that reconnects
        to a running device is told the device has."""
        if self.model is None or self.pending is not None:
            return None
        return self.model.to_json()

    def staged(self, txn: Any) -> Staged | None:
        """The stage of `txn` if it is the pending one (commit after prepare)."""
        return self.pending if self.pending is not None and self.pending.txn is txn else None

    def committed(self) -> None:
        self.pending = None

    def refused(self) -> None:
        staged, self.pending = self.pending, None
        if staged is None or self.model is None:
            return
        if staged.applied is None:
            self.model = None  # re-read whole: seed it again next time
        else:
            self.model.revert(staged.applied)

    def aborted(self, txn: Any) -> None:
        if self.staged(txn) is not None:
            self.refused()
        self.model = None


def update_records(records: dict[Any, Any], delta: dict[Any, Any]) -> None:
    """Put a transaction's new records in place (None: delete); new keys go last."""
    for key, value in delta.items():
        if value is None:
            records.pop(key, None)
        else:
            records[key] = value
