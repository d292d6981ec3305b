"""RFC 6241 edit-config operations applied to a data tree (no I/O, no validation).

The edit content has been parsed by libyang (types and structure checked, ``nc:operation``
parsed as ``ietf-netconf:operation`` metadata). `apply_edit` walks it and changes the target
tree; `edit_units` names the subtrees an edit can touch so the transaction can work on a slice of
the datastore instead of all of it.
"""

from __future__ import annotations

from typing import Literal

import libyang
from _libyang import ffi, lib
from qstrata.bindings.tree import DataTree, c_str

Operation = Literal["merge", "replace", "create", "delete", "remove", "none"]
OPERATIONS = ("merge", "replace", "create", "delete", "remove", "none")


class EditError(Exception):
    """An edit that cannot be applied; `tag` is the RFC 6241 error-tag."""

    def __init__(self, tag: str, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.tag = tag
        self.message = message
        self.path = path


def _operation(cdata) -> str | None:
    meta = cdata.meta
    while meta != ffi.NULL:
        if ffi.string(meta.name) == b"operation" and ffi.string(meta.annotation.module.name) == b"ietf-netconf":
            return ffi.string(meta.value.enum_item.name).decode()  # an enumeration
        meta = meta.next
    return None


def _path(cdata) -> str:
    raw = lib.lyd_path(cdata, lib.LYD_PATH_STD, ffi.NULL, 0)
    try:
        return ffi.string(raw).decode()
    finally:
        lib.free(raw)


def _nodetype(cdata) -> int:
    return cdata.schema.nodetype


def _is_term(cdata) -> bool:
    return _nodetype(cdata) in (libyang.SNode.LEAF, libyang.SNode.LEAFLIST)


def _is_key(cdata) -> bool:
    return bool(cdata.schema.flags & lib.LYS_KEY)


def _siblings(first):
    node = first
    while node != ffi.NULL:
        nxt = node.next
        yield node
        node = nxt


def _find(tree: DataTree, path: str):
    if tree.cdata == ffi.NULL:
        return ffi.NULL
    out = ffi.new("struct lyd_node **")
    if lib.lyd_find_path(tree.cdata, path.encode(), 0, out) == lib.LY_SUCCESS:
        return out[0]
    lib.ly_err_clean(tree.schema.ctx.cdata, ffi.NULL)
    return ffi.NULL


def _free(tree: DataTree, cdata) -> None:
    root = tree._root  # noqa: SLF001 - the tree's own root pointer must follow removals
    if cdata == root[0] or cdata == lib.lyd_first_sibling(root[0]):
        first = lib.lyd_first_sibling(root[0])
        if cdata == first:
            root[0] = cdata.next if cdata.next != ffi.NULL else ffi.NULL
    lib.lyd_free_tree(cdata)
    if root[0] != ffi.NULL:
        root[0] = lib.lyd_first_sibling(root[0])


def insert_copy(tree: DataTree, source) -> None:
    """Insert a copy of `source` (with its parents, without metadata) into `tree`."""
    out = ffi.new("struct lyd_node **")
    flags = lib.LYD_DUP_RECURSIVE | lib.LYD_DUP_NO_META | lib.LYD_DUP_WITH_PARENTS | lib.LYD_DUP_WITH_FLAGS
    if lib.lyd_dup_single(source, ffi.NULL, flags, out) != lib.LY_SUCCESS:
        raise EditError("operation-failed", "cannot copy edit data", _path(source))
    top = out[0]
    while top.parent != ffi.NULL:
        top = ffi.cast("struct lyd_node *", top.parent)
    if lib.lyd_merge_tree(tree._root, top, lib.LYD_MERGE_DESTRUCT) != lib.LY_SUCCESS:  # noqa: SLF001
        lib.lyd_free_all(top)
        raise EditError("operation-failed", "cannot insert edit data", _path(source))
    tree._reroot()  # noqa: SLF001


def _set_term(tree: DataTree, cdata) -> None:
    path = _path(cdata)
    if _nodetype(cdata) == libyang.SNode.LEAFLIST:
        if _find(tree, path) == ffi.NULL:
            insert_copy(tree, cdata)
        return
    value = c_str(lib.lyd_get_value(cdata))
    tree.set(path, value)


def _has_operations(first) -> bool:
    """Any explicit nc:operation in these subtrees?"""
    for node in _siblings(first):
        if _operation(node) is not None:
            return True
        child = lib.lyd_child(node)
        if child != ffi.NULL and not _is_term(node) and _has_operations(child):
            return True
    return False


def apply_edit(target: DataTree, edit: DataTree, default_operation: Operation = "merge") -> None:
    """Apply `edit` to `target` in place. Raises `EditError` (data-exists, data-missing...)."""
    if default_operation not in ("merge", "replace", "none"):
        raise EditError("invalid-value", f"default-operation {default_operation!r} is not merge, replace or none")
    if edit.cdata != ffi.NULL:
        _walk(target, lib.lyd_first_sibling(edit.cdata), default_operation)


def _walk(target: DataTree, first, inherited: str) -> None:
    for node in _siblings(first):
        if _is_key(node):
            continue
        op = _operation(node) or inherited
        path = _path(node)
        existing = _find(target, path)
        if op == "create":
            if existing != ffi.NULL:
                raise EditError("data-exists", "the data already exists; cannot create it", path)
            insert_copy(target, node)
        elif op == "delete":
            if existing == ffi.NULL:
                raise EditError("data-missing", "the data does not exist; cannot delete it", path)
            _free(target, existing)
        elif op == "remove":
            if existing != ffi.NULL:
                _free(target, existing)
        elif op == "replace":
            if existing != ffi.NULL:
                _free(target, existing)
            insert_copy(target, node)
        elif op == "merge":
            if _is_term(node):
                _set_term(target, node)
            elif existing == ffi.NULL and not _has_operations(lib.lyd_child(node)):
                insert_copy(target, node)  # a new subtree: one copy instead of a set per leaf
            else:
                if existing == ffi.NULL:
                    target.set(path)
                _walk(target, lib.lyd_child(node), "merge")
        else:  # none: only descend; nested operations act
            if not _is_term(node):
                _walk(target, lib.lyd_child(node), "none")


def _removes_below(first, inherited: str) -> bool:
    for node in _siblings(first):
        op = _operation(node) or inherited
        if op in ("delete", "remove", "replace"):
            return True
        child = lib.lyd_child(node)
        if child != ffi.NULL and _removes_below(child, op):
            return True
    return False


def edit_units(edit: DataTree, default_operation: Operation = "merge") -> list[tuple[str, bool]]:
    """The subtrees `edit` can change, as (data path, may remove data) pairs: outermost list
    entries, term nodes outside lists, and any subtree that carries a replace/create/delete/remove
    of its own."""
    units: list[tuple[str, bool]] = []

    def add(node, op: str) -> None:
        removes = op in ("delete", "remove", "replace")
        if not removes and lib.lyd_child(node) != ffi.NULL and not _is_term(node):
            removes = _removes_below(lib.lyd_child(node), op)
        units.append((_path(node), removes))

    def walk(first, inherited: str, depth: int) -> None:
        for node in _siblings(first):
            op = _operation(node) or inherited
            own = _operation(node)
            if (
                _is_term(node)
                or _nodetype(node) == libyang.SNode.LIST
                or (own in ("replace", "create", "delete", "remove"))
                or (depth == 0 and op == "replace")
            ):
                add(node, op)
            else:
                child = lib.lyd_child(node)
                if child == ffi.NULL:
                    add(node, op)
                else:
                    walk(child, op, depth + 1)

    if edit.cdata != ffi.NULL:
        walk(lib.lyd_first_sibling(edit.cdata), default_operation, 0)
    return units
