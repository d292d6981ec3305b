"""An owned libyang data forest with the operations qstrata needs.

`DataTree` owns every top-level sibling of one data tree (a datastore, an edit, a reply) and
frees it when dropped. Every failing libyang call raises `InvalidData` with structured issues,
so errors keep their data paths all the way to the client.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any, Literal

import libyang
from _libyang import ffi, lib
from libyang.data import DNode

from .diff import Change
from .paths import PathStep
from .schema import Schema, get_schema
from .validate import DataIssue, InvalidData, raise_issues, take_issues

Format = Literal["xml", "json"]
WithDefaults = Literal["explicit", "trim", "report-all", "report-all-tagged"]

_FORMATS = {"xml": lib.LYD_XML, "json": lib.LYD_JSON}
_WITH_DEFAULTS = {
    None: lib.LYD_PRINT_WD_EXPLICIT,
    "explicit": lib.LYD_PRINT_WD_EXPLICIT,
    "trim": lib.LYD_PRINT_WD_TRIM,
    "report-all": lib.LYD_PRINT_WD_ALL,
    "report-all-tagged": lib.LYD_PRINT_WD_ALL_TAG,
}


def _fmt(fmt: str) -> int:
    try:
        return _FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown data format {fmt!r} (xml or json)") from None


class DataTree:
    """A data forest bound to the shared schema."""

    __slots__ = ("schema", "_root")

    def __init__(self, schema: Schema | None = None, cdata=ffi.NULL) -> None:
        self.schema = schema or get_schema()
        self._root = ffi.new("struct lyd_node **")
        self._root[0] = cdata

    def __del__(self) -> None:
        root = getattr(self, "_root", None)
        if root is not None and root[0] != ffi.NULL:
            lib.lyd_free_all(root[0])
            root[0] = ffi.NULL

    # ------------------------------------------------------------------ construction
    @classmethod
    def parse(
        cls,
        data: str | bytes,
        fmt: Format,
        *,
        schema: Schema | None = None,
        config_only: bool = False,
        validate: bool = True,
        strict: bool = True,
    ) -> DataTree:
        """Parse (and by default validate) a complete data tree.

        `config_only` rejects config false nodes (running, candidate, edit content);
        `validate=False` checks types and structure only (an edit's content is partial).
        """
        schema = schema or get_schema()
        ctx = schema.ctx.cdata
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not data.strip():
            return cls(schema)
        if fmt == "json":
            _check_json_syntax(data)
        parse_opts = lib.LYD_PARSE_STRICT if strict else 0
        val_opts = lib.LYD_VALIDATE_PRESENT
        if config_only:
            parse_opts |= lib.LYD_PARSE_NO_STATE
            val_opts |= lib.LYD_VALIDATE_NO_STATE
        if not validate:
            parse_opts |= lib.LYD_PARSE_ONLY
            val_opts = 0
        buf = ffi.from_buffer(data + b"\0")
        inp = ffi.new("struct ly_in **")
        if lib.ly_in_new_memory(ffi.cast("char *", buf), inp) != lib.LY_SUCCESS:
            raise InvalidData([DataIssue("cannot read input")])
        out = ffi.new("struct lyd_node **")
        take_issues(ctx)
        try:
            ret = lib.lyd_parse_data(ctx, ffi.NULL, inp[0], _fmt(fmt), parse_opts, val_opts, out)
        finally:
            lib.ly_in_free(inp[0], 0)
        if ret != lib.LY_SUCCESS:
            if out[0] != ffi.NULL:
                lib.lyd_free_all(out[0])
            raise_issues(ctx, f"invalid {fmt.upper()} data")
        return cls(schema, out[0])

    @classmethod
    def from_python(cls, value: dict[str, Any], *, schema: Schema | None = None, **opts: Any) -> DataTree:
        """Build from a JSON-IETF dict (RFC 7951 member names and values)."""
        return cls.parse(json.dumps(value), "json", schema=schema, **opts)

    def copy(self) -> DataTree:
        if self._root[0] == ffi.NULL:
            return DataTree(self.schema)
        out = ffi.new("struct lyd_node **")
        flags = lib.LYD_DUP_RECURSIVE | lib.LYD_DUP_WITH_FLAGS
        if lib.lyd_dup_siblings(self._root[0], ffi.NULL, flags, out) != lib.LY_SUCCESS:
            raise_issues(self.schema.ctx.cdata, "cannot copy data tree")
        return DataTree(self.schema, out[0])

    # ------------------------------------------------------------------ inspection
    @property
    def cdata(self):
        """First top-level sibling (``struct lyd_node *``), NULL when empty."""
        return self._root[0]

    def is_empty(self) -> bool:
        return self._root[0] == ffi.NULL

    def top_nodes(self) -> Iterator[DNode]:
        node = self._root[0]
        if node == ffi.NULL:
            return
        node = lib.lyd_first_sibling(node)
        while node != ffi.NULL:
            yield DNode.new(self.schema.ctx, node)
            node = node.next

    def find(self, xpath: str) -> list[DNode]:
        """Nodes matching an XPath 1.0 expression (libyang's evaluation, JSON prefixes)."""
        if self._root[0] == ffi.NULL:
            return []
        ctx = self.schema.ctx.cdata
        found = ffi.new("struct ly_set **")
        take_issues(ctx)
        if lib.lyd_find_xpath(self._root[0], xpath.encode(), found) != lib.LY_SUCCESS:
            raise_issues(ctx, f"invalid XPath {xpath!r}")
        try:
            return [DNode.new(self.schema.ctx, found[0].dnodes[i]) for i in range(found[0].count)]
        finally:
            lib.ly_set_free(found[0], ffi.NULL)

    def get(self, path: str) -> DNode | None:
        """The one node at a data path (with keys), or None."""
        if self._root[0] == ffi.NULL:
            return None
        out = ffi.new("struct lyd_node **")
        ctx = self.schema.ctx.cdata
        ret = lib.lyd_find_path(self._root[0], path.encode(), 0, out)
        if ret == lib.LY_SUCCESS:
            return DNode.new(self.schema.ctx, out[0])
        issues = take_issues(ctx)
        if ret in (lib.LY_ENOTFOUND, lib.LY_EINCOMPLETE):
            return None
        raise InvalidData(issues or [DataIssue(f"invalid path {path!r}")])

    # ------------------------------------------------------------------ output
    def print(
        self,
        fmt: Format = "xml",
        *,
        with_defaults: WithDefaults | None = None,
        pretty: bool = False,
        keep_empty_containers: bool = False,
    ) -> str:
        if self._root[0] == ffi.NULL:
            return "{}" if fmt == "json" else ""
        return print_node(self._root[0], fmt, with_defaults=with_defaults, pretty=pretty,
                          siblings=True, keep_empty_containers=keep_empty_containers)

    def to_python(self) -> dict[str, Any]:
        """JSON-IETF dict of the whole tree (uint64/int64/decimal64 as strings, per RFC 7951)."""
        return json.loads(self.print("json")) if not self.is_empty() else {}

    # ------------------------------------------------------------------ changes
    def validate(self, *, config_only: bool = False) -> None:
        """Validate the whole tree; adds implicit defaults. Raises `InvalidData`."""
        ctx = self.schema.ctx.cdata
        opts = lib.LYD_VALIDATE_PRESENT | (lib.LYD_VALIDATE_NO_STATE if config_only else 0)
        take_issues(ctx)
        if lib.lyd_validate_all(self._root, ctx, opts, ffi.NULL) != lib.LY_SUCCESS:
            raise_issues(ctx, "validation failed")

    def set(self, path: str, value: str | None = None) -> None:
        """Create or update the node at `path` (parents as needed); `value` canonical or JSON form."""
        ctx = self.schema.ctx.cdata
        out = ffi.new("struct lyd_node **")
        take_issues(ctx)
        val = ffi.NULL if value is None else value.encode()
        ret = lib.lyd_new_path(self._root[0], ctx, path.encode(), val, lib.LYD_NEW_PATH_UPDATE, out)
        if ret != lib.LY_SUCCESS:
            raise_issues(ctx, f"cannot set {path}")
        if self._root[0] == ffi.NULL:
            self._root[0] = out[0]
        self._reroot()

    def delete(self, path: str) -> bool:
        """Remove the subtree at `path`; False when absent."""
        node = self.get(path)
        if node is None:
            return False
        cdata = node.cdata
        if cdata == lib.lyd_first_sibling(self._root[0]) or cdata == self._root[0]:
            nxt = cdata.next
            self._root[0] = nxt if nxt != ffi.NULL else ffi.NULL
        lib.lyd_free_tree(cdata)
        self._reroot()
        return True

    def merge(self, other: DataTree) -> None:
        """Merge a copy of `other` into this tree (RFC 6241 merge semantics for config nodes)."""
        if other.is_empty():
            return
        ctx = self.schema.ctx.cdata
        take_issues(ctx)
        if lib.lyd_merge_siblings(self._root, other.cdata, 0) != lib.LY_SUCCESS:
            raise_issues(ctx, "cannot merge data")
        self._reroot()

    def diff(self, other: DataTree) -> list[Change]:
        """Changes that turn this tree into `other`."""
        return diff_trees(self, other)

    def _reroot(self) -> None:
        if self._root[0] != ffi.NULL:
            self._root[0] = lib.lyd_first_sibling(self._root[0])

    # ------------------------------------------------------------------ filtering
    def pruned(self, visit: Callable[[tuple[PathStep, ...], tuple[tuple[str, str], ...]], Visit]) -> DataTree:
        """A copy holding only what ``visit`` lets through (access control on reads).

        ``visit(steps, schema_path)`` gets each node's steps from the top (module always filled
        in, list keys and leaf-list values as predicates) and its schema path as (module, name)
        pairs -- the same tuple object for every node of one schema node during one call, so a
        visitor can cache per schema node by identity. It answers a `Visit`. List keys are never
        visited: they stay with their entry. Cost: one call per visited node, none below KEEP or
        DROP."""
        out = self.copy()
        if out.is_empty():
            return out
        cache: dict = {}
        node = lib.lyd_first_sibling(out._root[0])
        while node != ffi.NULL:
            nxt = node.next
            if not _prune(node, (), (), visit, cache):
                if node == out._root[0]:
                    out._root[0] = nxt
                lib.lyd_free_tree(node)
            node = nxt
        out._reroot()
        return out


class Visit(Enum):
    """What `DataTree.pruned` does with a node."""

    KEEP = "keep"  # keep it and its whole subtree
    DROP = "drop"  # drop it and its whole subtree
    OPEN = "open"  # keep it, then visit its children
    THROUGH = "through"  # visit its children; keep it (with its keys) only if some child stays


def _prune(node, parent_steps: tuple[PathStep, ...], parent_path: tuple[tuple[str, str], ...],
           visit: Callable[[tuple[PathStep, ...], tuple[tuple[str, str], ...]], Visit], cache: dict) -> bool:
    """Filter ``node``'s subtree in place; False when ``node`` itself must go."""
    schema = node.schema
    if schema == ffi.NULL:  # opaque node: nothing to decide access on
        return False
    cached = cache.get(schema)
    if cached is None:
        names = (ffi.string(schema.module.name).decode(), ffi.string(schema.name).decode())
        cached = cache[schema] = (names, (*parent_path, names))
    names, schema_path = cached
    keys: tuple[tuple[str, str], ...] = ()
    if schema.nodetype == lib.LYS_LIST:
        keys = tuple(_list_keys(node))
    elif schema.nodetype == lib.LYS_LEAFLIST:
        keys = ((".", c_str(lib.lyd_get_value(node)) or ""),)
    steps = (*parent_steps, PathStep(names[0], names[1], keys))
    verdict = visit(steps, schema_path)
    if verdict is Visit.KEEP:
        return True
    if verdict is Visit.DROP:
        return False
    kept = False
    child = lib.lyd_child(node)
    while child != ffi.NULL:
        nxt = child.next
        if child.schema != ffi.NULL and child.schema.flags & lib.LYS_KEY:
            child = nxt
            continue
        if _prune(child, steps, schema_path, visit, cache):
            kept = True
        else:
            lib.lyd_free_tree(child)
        child = nxt
    return verdict is Visit.OPEN or kept


def _list_keys(node) -> Iterator[tuple[str, str]]:
    child = lib.lyd_child(node)
    while child != ffi.NULL and child.schema != ffi.NULL and child.schema.flags & lib.LYS_KEY:
        yield ffi.string(child.schema.name).decode(), c_str(lib.lyd_get_value(child)) or ""
        child = child.next


def _check_json_syntax(data: bytes) -> None:
    """libyang accepts truncated JSON and trailing garbage; the standard parser does not."""
    try:
        json.loads(data)
    except RecursionError:
        raise InvalidData([DataIssue("JSON nested too deeply", code="syntax-json")]) from None
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise InvalidData([DataIssue(f"not valid JSON: {getattr(exc, 'msg', exc)}", line=line, code="syntax-json")]) from None


def print_node(cdata, fmt: Format, *, with_defaults: WithDefaults | None = None, pretty: bool = False,
               siblings: bool = False, keep_empty_containers: bool = False) -> str:
    opts = _WITH_DEFAULTS[with_defaults]
    if siblings:
        opts |= lib.LYD_PRINT_WITHSIBLINGS
    if not pretty:
        opts |= lib.LYD_PRINT_SHRINK
    if keep_empty_containers:
        opts |= lib.LYD_PRINT_KEEPEMPTYCONT
    out = ffi.new("char **")
    if lib.lyd_print_mem(out, cdata, _fmt(fmt), opts) != lib.LY_SUCCESS:
        raise InvalidData([DataIssue("cannot print data")])
    if out[0] == ffi.NULL:
        return ""
    try:
        return ffi.string(out[0]).decode("utf-8")
    finally:
        lib.free(out[0])


def node_value(node: DNode) -> Any:
    """A node's value for a `Change`: canonical string for terms, the JSON-IETF object of the
    container or list entry itself for subtrees."""
    if node.schema().nodetype() in (libyang.SNode.LEAF, libyang.SNode.LEAFLIST):
        return c_str(lib.lyd_get_value(node.cdata))
    wrapped = json.loads(print_node(node.cdata, "json") or "{}")
    if len(wrapped) != 1:
        return wrapped
    inner = next(iter(wrapped.values()))
    return inner[0] if isinstance(inner, list) and len(inner) == 1 else inner


def c_str(value) -> str | None:
    return ffi.string(value).decode("utf-8") if value != ffi.NULL else None


def _meta(ctx_cdata, node_cdata, name: str) -> str | None:
    meta = node_cdata.meta
    while meta != ffi.NULL:
        if ffi.string(meta.name).decode() == name:
            return c_str(lib.lyd_value_get_canonical(ctx_cdata, ffi.addressof(meta.value)))
        meta = meta.next
    return None


def diff_trees(old: DataTree, new: DataTree) -> list[Change]:
    """Walk libyang's diff (yang:operation metadata) into typed `Change`s, document order."""
    ctx = old.schema.ctx
    out = ffi.new("struct lyd_node **")
    take_issues(ctx.cdata)
    if lib.lyd_diff_siblings(old.cdata, new.cdata, 0, out) != lib.LY_SUCCESS:
        raise_issues(ctx.cdata, "cannot diff data trees")
    if out[0] == ffi.NULL:
        return []
    diff = DataTree(old.schema, out[0])
    changes: list[Change] = []

    def walk(cdata, inherited: str | None) -> None:
        while cdata != ffi.NULL:
            op = _meta(ctx.cdata, cdata, "operation") or inherited
            node = DNode.new(ctx, cdata)
            path = node.path()
            if op == "create":
                created = new.get(path)
                changes.append(Change("create", path, None, node_value(created or node)))
            elif op == "delete":
                deleted = old.get(path)
                changes.append(Change("delete", path, node_value(deleted or node), None))
            elif op == "replace":
                if node.schema().nodetype() == libyang.SNode.LEAF:
                    changes.append(Change("modify", path, _meta(ctx.cdata, cdata, "orig-value"), node_value(node)))
                else:  # user-ordered move
                    changes.append(Change("modify", path, None, node_value(node)))
            else:
                child = lib.lyd_child(cdata)
                if child != ffi.NULL:
                    walk(child, None)
            cdata = cdata.next

    walk(lib.lyd_first_sibling(diff.cdata), None)
    return changes
