"""Edits as protocol-neutral operations on data paths, and how they change a tree.

A NETCONF ``<config>`` with ``nc:operation`` attributes, a gNMI SetRequest (delete, replace,
update, union_replace) and a RESTCONF PATCH all reduce to a list of `EditOperation`s: an RFC 6241
operation name, the data path of the node it acts on, and for merge/replace/create the new
content. The datastore applies the list as one transaction; front ends only translate.

`operation_units` names the subtrees an operation can change, so a transaction can work on a
slice of the datastore instead of all of it. `annotated_operations` is the NETCONF reduction:
libyang parses ``nc:operation`` as ``ietf-netconf:operation`` metadata, and each node whose
operation differs from the one it inherits becomes an operation of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from _libyang import ffi, lib

from .tree import DataTree, _find, _free, _node_path, parent_path
from .validate import DataIssue, InvalidData, IssueKind

Operation = Literal["merge", "replace", "create", "delete", "remove", "require"]
Insert = Literal["first", "last", "before", "after"]
OPERATIONS: tuple[str, ...] = ("merge", "replace", "create", "delete", "remove")
"""The RFC 6241 operations a client may name."""
REQUIRE = "require"
"""Not a client operation: under NETCONF default-operation none, a list entry or presence
container named without an operation of its own must already exist (RFC 6241 s7.2: otherwise
data-missing). It changes nothing."""
"""RFC 6241 s7.2 operations (``none`` is only a default: it is never an operation of its own)."""


@dataclass(frozen=True, slots=True)
class EditOperation:
    """One change. `path` is the data path (with keys) of the node acted on. `value` (merge,
    replace, create) is a tree holding that node with its ancestors; merge ignores `path`
    beyond naming the change, and a merge at ``/`` merges a whole tree."""

    operation: Operation
    path: str = "/"
    value: DataTree | None = None
    insert: Insert | None = None
    """Where the entry (of an ``ordered-by user`` list or leaf-list) at `path` goes once the
    operation is applied (RFC 7950 s7.8.6 insert; RESTCONF insert/point, YANG Patch insert and
    move). None: a new entry goes last and a replaced one keeps its place."""
    point: str | None = None
    """With insert before/after: the data path of the sibling entry it goes next to."""

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS and self.operation != REQUIRE:
            raise ValueError(f"unknown edit operation {self.operation!r}")
        if (self.point is not None) != (self.insert in ("before", "after")):
            raise ValueError("point is given exactly with insert before or after")


class EditError(InvalidData):
    """An operation that cannot be applied (create of existing data, delete of missing data)."""

    def __init__(self, kind: IssueKind, message: str, path: str | None) -> None:
        super().__init__([DataIssue(message, path, kind=kind)])
        self.kind = kind
        self.message = message
        self.path = path


def apply_operation(tree: DataTree, op: EditOperation) -> None:
    """Apply one operation to `tree` in place. A failing create/delete changes nothing."""
    if op.operation == "create":
        if op.path != "/" and tree.exists(op.path, explicit=True):  # a server-set default was never created
            raise EditError(IssueKind.EXISTS, "the data already exists; cannot create it", op.path)
        if op.value is not None:
            tree.merge(op.value)
    elif op.operation == "merge":
        if op.value is not None:
            tree.merge(op.value)
    elif op.operation == "replace":
        if op.path == "/":
            tree.take(op.value.copy() if op.value is not None else DataTree(tree.schema))
            return
        following = _next_entry(tree, op.path) if op.insert is None else None
        tree.delete(op.path)
        if op.value is not None:
            tree.merge(op.value)
        if following is not None and tree.exists(op.path):  # a replaced entry keeps its place
            _position(tree, op.path, "before", following)
    elif op.operation == "delete":
        if not tree.delete(op.path, explicit=True):  # a server-set default was never created: RFC 6243 s2.3.3
            raise EditError(IssueKind.MISSING, "the data does not exist; cannot delete it", op.path)
    elif op.operation == REQUIRE:
        if not tree.exists(op.path):
            raise EditError(IssueKind.MISSING, "the data does not exist (default-operation none changes "
                            "nothing and creates no parent)", op.path)
    else:  # remove
        tree.delete(op.path)
    if op.insert is not None and op.operation in ("create", "merge", "replace"):
        _position(tree, op.path, op.insert, op.point)


# ---------------------------------------------------------------------- user order


def _ordered_entry(tree: DataTree, path: str):
    """The node at `path` if it is an entry of an ``ordered-by user`` list or leaf-list, else NULL."""
    node = _find(tree, path)
    if node == ffi.NULL or node.schema == ffi.NULL or not node.schema.flags & lib.LYS_ORDBY_USER:
        return ffi.NULL
    return node


def _instances(node) -> list:
    """The node and its siblings of the same schema node, in order."""
    parent = ffi.cast("struct lyd_node *", node.parent)
    sibling = lib.lyd_child(parent) if parent != ffi.NULL else lib.lyd_first_sibling(node)
    out = []
    while sibling != ffi.NULL:
        if sibling.schema == node.schema:
            out.append(sibling)
        sibling = sibling.next
    return out


def placed_unit(tree: DataTree, path: str) -> str:
    """The parent of an entry of an ``ordered-by user`` list at `path`, else `path`: the entry's
    place among its siblings is configuration (NACM rule-lists are evaluated in order), and an
    entry replaced on its own (deleted, then merged: a slice installed, a journal record
    replayed) goes last."""
    if _ordered_entry(tree, path) != ffi.NULL:
        return parent_path(path) or "/"
    return path


def _next_entry(tree: DataTree, path: str) -> str | None:
    """Data path of the entry after the user-ordered entry at `path` (None: last, or not one)."""
    node = _ordered_entry(tree, path)
    if node == ffi.NULL:
        return None
    instances = _instances(node)
    position = instances.index(node)
    return _node_path(instances[position + 1]) if position + 1 < len(instances) else None


def _position(tree: DataTree, path: str, insert: str, point: str | None) -> None:
    """Move the user-ordered entry at `path` first, last, or before/after the entry at `point`.
    Entries from the first one whose place changes are re-appended in their new order (libyang's
    bindings here can append a child but not insert one before another)."""
    node = _find(tree, path)
    if node == ffi.NULL:
        raise EditError(IssueKind.MISSING, "the entry to move does not exist", path)
    if node.schema == ffi.NULL or not node.schema.flags & lib.LYS_ORDBY_USER:
        raise EditError(IssueKind.INVALID_VALUE, f"insert={insert}: the entry is not in an ordered-by user list or "
                        "leaf-list (the server decides the order of the others)", path)
    parent = ffi.cast("struct lyd_node *", node.parent)
    if parent == ffi.NULL:
        raise EditError(IssueKind.INVALID_VALUE, "positions of top-level entries are not supported", path)
    instances = _instances(node)
    others = [n for n in instances if n != node]
    if insert == "first":
        order = [node, *others]
    elif insert == "last":
        order = [*others, node]
    else:
        anchor = _find(tree, point) if point else ffi.NULL
        if anchor == node:
            return
        at = next((i for i, n in enumerate(others) if n == anchor), None)
        if at is None:
            raise EditError(IssueKind.INVALID_VALUE, f"point {point}: no such entry in the same list", path)
        at += 1 if insert == "after" else 0
        order = [*others[:at], node, *others[at:]]
    changed = next((i for i, (a, b) in enumerate(zip(order, instances, strict=True)) if a != b), None)
    if changed is None:
        return
    out = ffi.new("struct lyd_node **")
    flags = lib.LYD_DUP_RECURSIVE | lib.LYD_DUP_WITH_FLAGS
    for entry in order[changed:]:
        if lib.lyd_dup_single(entry, ffi.NULL, flags, out) != lib.LY_SUCCESS:
            raise EditError(IssueKind.OTHER, "cannot copy a list entry", path)
        _free(tree, entry)
        if lib.lyd_insert_child(parent, out[0]) != lib.LY_SUCCESS:
            raise EditError(IssueKind.OTHER, "cannot move a list entry", path)


# ---------------------------------------------------------------------- units


@dataclass(frozen=True, slots=True)
class Unit:
    """A subtree an operation may change: its data path and whether data may disappear.
    `parent` (its parent's path) and `node` (the node in the operation's value) are filled in when
    known, so the datastore can find the unit's instance by hash instead of by parsing paths."""

    path: str
    removes: bool
    parent: str | None = None
    node: object = None


def operation_units(op: EditOperation) -> list[Unit]:
    """Merges touch the outermost list entries (and the leaves outside lists) of their content,
    none when it holds nothing but empty non-presence containers; every other operation touches the subtree at its path. A replace of ``/`` touches it all.
    An operation that places a user-ordered entry (insert, a replace that keeps its place, or a
    merge into one) touches the entry's parent: the order of its siblings is part of the change."""
    if op.insert is not None or (op.operation == "replace" and op.value is not None and op.path != "/"
                                 and _ordered_entry(op.value, op.path) != ffi.NULL):
        return [Unit(parent_path(op.path) or "/", True)]
    if op.operation == "merge":
        return list(_content_units(op.value)) if op.value is not None else []
    return [Unit(op.path, op.operation not in ("create", REQUIRE))]


def _content_units(value: DataTree) -> Iterator[Unit]:
    parents: dict[int, str] = {}
    ordered: set[str | None] = set()

    def parent_of(node) -> str | None:
        parent = node.parent
        if parent == ffi.NULL:
            return None
        key = int(ffi.cast("uintptr_t", parent))
        path = parents.get(key)
        if path is None:
            path = parents[key] = _node_path(ffi.cast("struct lyd_node *", parent))
        return path

    def walk(first) -> Iterator[Unit]:
        node = first
        while node != ffi.NULL:
            snode = node.schema
            inner = snode != ffi.NULL and snode.nodetype == lib.LYS_CONTAINER
            child = lib.lyd_child(node) if inner else ffi.NULL
            if inner and child != ffi.NULL:
                yield from walk(child)
            elif inner and not snode.flags & lib.LYS_PRESENCE:
                pass  # an empty non-presence container merges nothing (RFC 7950 s7.5.1), e.g. the
                # `qkd_links` left around a delete of one link: as a unit it put every link in the slice
            elif snode != ffi.NULL and snode.flags & lib.LYS_ORDBY_USER:
                # the order of a user-ordered entry's siblings is part of the configuration (NACM
                # rule-lists): a unit is installed last, so the unit is their parent, kept whole
                holder = parent_of(node)
                if holder not in ordered:
                    ordered.add(holder)
                    parent = ffi.cast("struct lyd_node *", node.parent)
                    yield Unit(holder or "/", False, parent_path(holder) if holder else None,
                               parent if holder else None)
            else:
                yield Unit(_node_path(node), False, parent_of(node), node)
            node = node.next

    if value.cdata != ffi.NULL:
        yield from walk(lib.lyd_first_sibling(value.cdata))


# ---------------------------------------------------------------------- NETCONF annotations


def _annotation(cdata) -> str | None:
    """The node's ``ietf-netconf:operation`` metadata (nc:operation), if any."""
    meta = cdata.meta
    while meta != ffi.NULL:
        if ffi.string(meta.name) == b"operation" and ffi.string(meta.annotation.module.name) == b"ietf-netconf":
            return ffi.string(meta.value.enum_item.name).decode()
        meta = meta.next
    return None


def annotated_operations(edit: DataTree, default_operation: str = "merge", *,
                         per_unit: bool = False) -> list[EditOperation]:
    """Reduce an edit tree carrying ``nc:operation`` metadata to operations (RFC 6241 s7.2).

    A node starts an operation of its own when its attribute changes the operation it inherits
    (under ``none``, any attribute does); its subtree minus such nested nodes is the operation's
    value. Everything without an attribute of its own under the default ``merge`` forms one merge
    (one per unit with `per_unit`, for continue-on-error); under ``replace`` each top-level node
    is replaced. Nested operations follow their parent in document order. The edit tree is
    consumed (its content may move into the values)."""
    if default_operation not in ("merge", "replace", "none"):
        raise ValueError(f"default-operation {default_operation!r} is not merge, replace or none")
    if edit.cdata == ffi.NULL:
        return []
    starts: list[tuple[object, str]] = []  # (node, operation), pre-order
    required: list[object] = []  # under "none": list entries and presence containers that must exist
    annotated = False
    replace_tops = default_operation == "replace"

    def walk(first, inherited: str, top: bool = False) -> None:
        nonlocal annotated
        node = first
        while node != ffi.NULL:
            own = _annotation(node)
            if own is not None:
                annotated = True
            elif top and replace_tops:
                own = "replace"  # default-operation replace: each top-level node is replaced
            below = inherited
            is_key = node.schema != ffi.NULL and node.schema.flags & lib.LYS_KEY
            if inherited not in ("delete", "remove") and own is not None and not is_key:
                if own == "none":
                    below = "none"
                elif own != inherited and not (own == "merge" and inherited in ("replace", "create")):
                    starts.append((node, own))
                    below = own
            if below == "none" and default_operation == "none" and node.schema != ffi.NULL and (
                    node.schema.nodetype == lib.LYS_LIST
                    or (node.schema.nodetype == lib.LYS_CONTAINER and node.schema.flags & lib.LYS_PRESENCE)):
                required.append(node)
            if node.schema != ffi.NULL and node.schema.nodetype in (lib.LYS_CONTAINER, lib.LYS_LIST):
                child = lib.lyd_child(node)
                if child != ffi.NULL:
                    walk(child, below)
            node = node.next

    walk(lib.lyd_first_sibling(edit.cdata), "none" if replace_tops else default_operation, top=True)

    start_paths = [(_node_path(node), op) for node, op in starts]
    required_paths = [_node_path(node) for node in required]  # before the values take nodes away
    values: list[DataTree | None] = []
    for (node, op), (path, _) in zip(starts, start_paths, strict=True):
        values.append(_value_of(edit, node, start_paths, path) if op in ("merge", "replace", "create") else None)
    operations = [EditOperation(REQUIRE, path) for path in required_paths]  # checked first
    if default_operation == "merge":
        root = _root_content(edit, start_paths, annotated)
        if root is not None:
            if per_unit:
                operations.extend(_split_units(root))
            else:
                operations.append(EditOperation("merge", "/", root))
    operations.extend(EditOperation(op, path, value)  # type: ignore[arg-type]
                      for (path, op), value in zip(start_paths, values, strict=True))
    return operations


def _without(tree: DataTree, under: str, start_paths: list[tuple[str, str]]) -> None:
    """Remove from `tree` the subtrees of nested operations below `under`."""
    prefix = "" if under == "/" else under
    for path, _ in start_paths:
        if path != under and (under == "/" or path.startswith(prefix + "/") or path.startswith(prefix + "[")):
            node = _find(tree, path)
            if node != ffi.NULL:
                _free(tree, node)


def _value_of(edit: DataTree, node, start_paths: list[tuple[str, str]], path: str) -> DataTree:
    out = ffi.new("struct lyd_node **")
    flags = lib.LYD_DUP_RECURSIVE | lib.LYD_DUP_NO_META | lib.LYD_DUP_WITH_PARENTS | lib.LYD_DUP_WITH_FLAGS
    if lib.lyd_dup_single(node, ffi.NULL, flags, out) != lib.LY_SUCCESS:
        raise EditError(IssueKind.OTHER, "cannot copy edit data", path)
    top = out[0]
    while top.parent != ffi.NULL:
        top = ffi.cast("struct lyd_node *", top.parent)
    value = DataTree(edit.schema, top)
    _without(value, path, start_paths)
    return value


def _root_content(edit: DataTree, start_paths: list[tuple[str, str]], annotated: bool) -> DataTree | None:
    """The edit minus the subtrees of explicit operations, without metadata (None when empty)."""
    if not annotated:
        value = DataTree(edit.schema)
        value.take(edit)
        return value
    out = ffi.new("struct lyd_node **")
    flags = lib.LYD_DUP_RECURSIVE | lib.LYD_DUP_NO_META | lib.LYD_DUP_WITH_FLAGS
    if lib.lyd_dup_siblings(lib.lyd_first_sibling(edit.cdata), ffi.NULL, flags, out) != lib.LY_SUCCESS:
        raise EditError(IssueKind.OTHER, "cannot copy edit data", "/")
    value = DataTree(edit.schema, out[0])
    for path, _ in start_paths:
        node = _find(value, path)
        if node != ffi.NULL:
            _free(value, node)
    return None if value.is_empty() else value


def _split_units(root: DataTree) -> list[EditOperation]:
    ops = []
    for unit in _content_units(root):
        part = DataTree(root.schema)
        part.insert_copy_of(root, unit.path)
        ops.append(EditOperation("merge", unit.path, part))
    return ops
