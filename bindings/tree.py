"""An owned libyang data forest with the operations qstrata needs.

`DataTree` owns every top-level sibling of one data tree (a datastore, an edit, a reply) and
frees it when dropped. Every failing libyang call raises `InvalidData` with structured issues,
so errors keep their data paths all the way to the client.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import re
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from typing import Any, Literal

import libyang
from _libyang import ffi, lib
from libyang.data import DNode

from ._native import find_sibling, unlink
from .diff import Change
from .paths import PathStep
from .schema import Schema, get_schema
from .validate import DataIssue, InvalidData, IssueKind, raise_issues, take_issues
from .xml_prefixes import declare_value_prefixes

Format = Literal["xml", "json"]

_exiting = False


@atexit.register
def _at_exit() -> None:
    """At interpreter exit libyang contexts and trees are finalized in no particular order; a
    tree freed after its context would read freed memory, so trees are left to the OS."""
    global _exiting
    _exiting = True

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
        if root is not None and root[0] != ffi.NULL and not _exiting:
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
            issues = take_issues(ctx) or [DataIssue(f"invalid {fmt.upper()} data")]
            raise InvalidData([_with_identity_hint(schema, issue) for issue in issues])
        tree = cls(schema, out[0])
        if not validate:
            tree.check_single_instances()  # validation would have caught them; a partial tree is not validated
        return tree

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

    def select(self, xpath: str) -> DataTree:
        """A new tree holding copies of the nodes an XPath selects, with their ancestors (what an
        XPath filter returns, RFC 6241 s8.9)."""
        out = DataTree(self.schema)
        for node in self.find(xpath):
            _insert_copy(out, node.cdata)
        return out

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
    def validate(self, *, config_only: bool = False, keep_tops: DataTree | None = None,
                 deferred: Sequence[Any] = (), outside: DataTree | None = None,
                 replaced: Sequence[str] = (), guards: Sequence[tuple[Any, str]] = ()) -> None:
        """Validate the whole tree; adds implicit defaults. Raises `InvalidData`.

        libyang validates only the modules that have data, so a change that removes a whole
        non-presence top-level container (e.g. ``qkd_node``, whose ``qkdn_id`` is mandatory)
        would pass: with `keep_tops` (the tree before the change), such containers are
        re-created empty in a probe and validated, so their mandatory nodes are checked.

        When this tree is a slice of `outside` (the whole tree it comes from) that takes the
        place of the subtrees at `replaced` there, the leafrefs libyang cannot see whole are
        checked by lookups, as whole-tree validation would find them (`locality`):
        `deferred` (`locality.Reference`s) names leafrefs this tree does not hold the targets
        of: their leaves are set aside while libyang validates, then each value is looked up
        here and, failing that, in what `outside` keeps. `guards` pairs a `Reference` with the
        path in `outside` of an entry it may name: when this tree no longer has the entry, no
        instance of the leafref, here or in what `outside` keeps, may name it."""
        held = self._set_aside(deferred)
        try:
            self._validate(config_only, keep_tops)
        finally:
            for parent, node, _ in held:
                lib.lyd_insert_child(parent, node)
        hidden = _addresses(outside, replaced) if outside is not None else set()
        for _parent, node, reference in held:
            value = c_str(lib.lyd_get_value(node)) or ""
            if not (self._has_entry(reference, value) or (outside is not None
                                                          and outside._has_entry(reference, value, hidden))):
                raise InvalidData([_dangling(reference, value, node)])
        for reference, path in guards:
            entry = _find(outside, path) if outside is not None else ffi.NULL
            if entry == ffi.NULL:
                continue
            value = c_str(lib.lyd_get_value(_find_child(entry, reference.key))) or ""
            if self._has_entry(reference, value):
                continue  # still there (replaced, not deleted)
            naming = self._naming(reference, value) or outside._naming(reference, value, hidden)  # type: ignore[union-attr]
            if naming is not None:
                raise InvalidData([_dangling(reference, value, naming)])

    def _naming(self, reference: Any, value: str, hidden: set[int] | frozenset[int] = frozenset()):
        """An instance of the `reference` leafref that names `value`, outside `hidden`; else None."""
        xpath = reference.naming(value)
        found = self.find(xpath) if xpath is not None else [
            n for n in self.find(reference.leaf) if c_str(lib.lyd_get_value(n.cdata)) == value]
        return next((n.cdata for n in found if not _under(n.cdata, hidden)), None)

    def _set_aside(self, deferred: Sequence[Any]) -> list[tuple[Any, Any, Any]]:
        held = []
        for reference in deferred:
            for found in self.find(reference.leaf):
                node = found.cdata
                parent = ffi.cast("struct lyd_node *", node.parent)
                if parent == ffi.NULL:
                    continue
                unlink(node)
                held.append((parent, node, reference))
        return held

    def _has_entry(self, reference: Any, value: str, hidden: set[int] | frozenset[int] = frozenset()) -> bool:
        path = reference.target_path(value)
        if path is not None:
            node = _find(self, path)
            return node != ffi.NULL and not _under(node, hidden)
        return any(c_str(lib.lyd_get_value(_find_child(entry.cdata, reference.key))) == value
                   and not _under(entry.cdata, hidden) for entry in self.find(reference.target_list))

    def _validate(self, config_only: bool, keep_tops: DataTree | None) -> None:
        ctx = self.schema.ctx.cdata
        opts = lib.LYD_VALIDATE_PRESENT | (lib.LYD_VALIDATE_NO_STATE if config_only else 0)
        take_issues(ctx)
        if lib.lyd_validate_all(self._root, ctx, opts, ffi.NULL) != lib.LY_SUCCESS:
            raise_issues(ctx, "validation failed")
        if keep_tops is None:
            return
        gone = keep_tops.top_members() - self.top_members()
        probe = None
        for member in sorted(gone):
            nodes = list(self.schema.ctx.find_path("/" + member))
            if nodes and nodes[0].nodetype() == libyang.SNode.CONTAINER and not nodes[0].presence():
                probe = probe or self.copy()
                probe.set("/" + member)
        if probe is not None:
            probe.validate(config_only=config_only)

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

    def delete(self, path: str, *, explicit: bool = False) -> bool:
        """Remove the subtree at `path`; False when absent (with `explicit`, also when it is a
        node libyang holds at its schema default: see `exists`)."""
        node = _find(self, path)
        if node == ffi.NULL or (explicit and node.flags & lib.LYD_DEFAULT):
            return False
        _free(self, node)
        return True

    def merge(self, other: DataTree) -> None:
        """Merge a copy of `other` into this tree (RFC 6241 merge semantics for config nodes).

        Linear in the size of `other`: libyang 2.1's merge costs O(n^2) in the number of sibling
        instances it inserts under one parent (200,000 list entries: minutes), so large sibling
        sets are merged one subtree per libyang call, each with its own bookkeeping."""
        if other.is_empty():
            return
        ctx = self.schema.ctx.cdata
        take_issues(ctx)
        try:
            _merge_level(self._root, ffi.NULL, lib.lyd_first_sibling(other.cdata), ctx)
        finally:
            self._reroot()

    def exists(self, path: str, *, explicit: bool = False) -> bool:
        """Is there a node at this data path (with keys)? `explicit`: one that was set, not one
        libyang holds at its schema default (RFC 6243 s2.3.3: such a node was never created)."""
        node = _find(self, path)
        return node != ffi.NULL and not (explicit and node.flags & lib.LYD_DEFAULT)

    def take(self, other: DataTree) -> None:
        """Make `other`'s content this tree's content (ours is freed, `other` is left empty)."""
        old = self._root[0]
        self._root[0], other._root[0] = other._root[0], ffi.NULL
        if old != ffi.NULL:
            lib.lyd_free_all(old)

    def clear(self) -> None:
        """Free the content now (e.g. in a worker thread, rather than when the last reference
        goes on the event loop)."""
        old, self._root[0] = self._root[0], ffi.NULL
        if old != ffi.NULL:
            lib.lyd_free_all(old)

    def swap(self, other: DataTree) -> None:
        """Exchange the contents of two trees of the same schema (no copies)."""
        self._root[0], other._root[0] = other._root[0], self._root[0]

    def insert_copy_of(self, source: DataTree, path: str) -> bool:
        """Copy the node at `path` of `source` (with its parents) into this tree; False when absent."""
        node = _find(source, path)
        if node == ffi.NULL:
            return False
        _insert_copy(self, node)
        return True

    def add_implicit(self, *, config_only: bool = False) -> None:
        """Add the default nodes libyang would print with report-all (RFC 6243)."""
        flags = lib.LYD_IMPLICIT_NO_STATE if config_only else 0
        lib.lyd_new_implicit_all(self._root, self.schema.ctx.cdata, flags, ffi.NULL)
        self._reroot()

    def top_members(self) -> set[str]:
        """``module:name`` of every top-level node."""
        return {f"{n.module().name()}:{n.name()}" for n in self.top_nodes()}

    def check_single_instances(self) -> None:
        """Refuse two instances of one leaf, container or list entry among siblings (RFC 7950 s8.3.3
        "duplicate instance"). libyang's parser leaves that to validation, which a partial tree
        (an edit) does not get, so an edit of an existing entry would silently keep the last one."""
        if self._root[0] == ffi.NULL:
            return
        issue = _first_duplicate(lib.lyd_first_sibling(self._root[0]))
        if issue is not None:
            raise InvalidData([issue])

    def extract(self, units: Sequence[str | Any]) -> tuple[DataTree, list[str]]:
        """The subtrees at `units` plus every leaf of their ancestors (what `when`, `must` and
        `mandatory` checks of those subtrees may look at): a slice that validates like the whole
        tree when the schema says the subtrees are self-contained (see `locality`). Returns the
        slice and the paths of the units this tree has (the others are new).

        A unit is a data path, or an object with `path`, `parent` (its parent's path) and `node`
        (an equal node in another tree of this schema, e.g. `bindings.edit.Unit`): then it is
        found by its parent's hash table instead of by parsing its path."""
        piece = DataTree(self.schema)
        present: list[str] = []
        seen: set[str] = set()
        parents: dict[str | None, object] = {}
        for unit in units:
            if isinstance(unit, str):
                path, parent, like = unit, parent_path(unit), None
            else:
                path, like = unit.path, unit.node
                parent = unit.parent if unit.parent is not None else parent_path(path)
            if like is not None:
                if parent not in parents:
                    parents[parent] = (lib.lyd_first_sibling(self._root[0]) if self._root[0] != ffi.NULL else ffi.NULL) \
                        if parent is None else _find(self, parent)
                holder = parents[parent]
                first = holder if parent is None else (lib.lyd_child(holder) if holder != ffi.NULL else ffi.NULL)
                node = _find_like(first, like, self.schema.ctx.cdata) if first != ffi.NULL else ffi.NULL
            else:
                node = _find(self, path)
            if node != ffi.NULL:
                _insert_copy(piece, node)
                present.append(path)
            chain = []
            ancestor = parent
            while ancestor and ancestor not in seen:
                seen.add(ancestor)
                chain.append(ancestor)
                ancestor = parent_path(ancestor)
            for anc_path in chain:
                anc = _find(self, anc_path)
                if anc == ffi.NULL:
                    continue
                for name, is_leaflist in _term_children(anc.schema):
                    if is_leaflist:
                        for node in self.find(f"{anc_path}/{name}"):
                            _insert_copy(piece, node.cdata)
                    else:
                        leaf = _find(self, f"{anc_path}/{name}")
                        if leaf != ffi.NULL:
                            _insert_copy(piece, leaf)
        return piece, present

    def replace_subtrees(self, paths: list[str], source: DataTree) -> None:
        """Remove the subtrees at `paths`, then merge `source` in: how a validated slice is
        installed into the whole tree."""
        for path in paths:
            self.delete(path)
        self.merge(source)

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


_BARE_IDENTITY = re.compile(r'^Invalid identityref "(?P<name>[^":]+)" value')


def _with_identity_hint(schema: Schema, issue: DataIssue) -> DataIssue:
    """An identity value without its module (``PHYS``) is wrong, but when exactly one identity
    has that name the fix is obvious: say it."""
    m = _BARE_IDENTITY.match(issue.message)
    if not m:
        return issue
    found = schema.identities_named(m.group("name"))
    if len(found) != 1:
        return issue
    module, name = found[0].split(":")
    hint = (f"{issue.message} (did you mean {found[0]}? In XML: xmlns:x=\"{schema.namespace(module)}\" "
            f"and the value x:{name})")
    return dataclasses.replace(issue, message=hint)


def _check_json_syntax(data: bytes) -> None:
    """libyang accepts truncated JSON and trailing garbage; the standard parser does not."""
    try:
        json.loads(data)
    except RecursionError:
        raise InvalidData([DataIssue("JSON nested too deeply", code="syntax-json", kind=IssueKind.SYNTAX)]) from None
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise InvalidData([DataIssue(f"not valid JSON: {getattr(exc, 'msg', exc)}", line=line, code="syntax-json",
                                     kind=IssueKind.SYNTAX)]) from None


def print_node(cdata, fmt: Format, *, with_defaults: WithDefaults | None = None, pretty: bool = False,
               siblings: bool = False, keep_empty_containers: bool = False) -> str:
    """The node (with `siblings`, it and the siblings after it) as XML or JSON-IETF text. In XML
    each top-level element declares the value prefixes its subtree uses (`xml_prefixes`), so the
    text survives a client that copies its elements into a request."""
    opts = _WITH_DEFAULTS[with_defaults]
    if fmt == "xml":
        if not siblings:
            return declare_value_prefixes(_print(cdata, fmt, opts, pretty, keep_empty_containers))
        pieces = []
        while cdata != ffi.NULL:
            pieces.append(declare_value_prefixes(_print(cdata, fmt, opts, pretty, keep_empty_containers)))
            cdata = cdata.next
        return "".join(pieces)
    if siblings:
        opts |= lib.LYD_PRINT_WITHSIBLINGS
    return _print(cdata, fmt, opts, pretty, keep_empty_containers)


def _print(cdata, fmt: Format, opts: int, pretty: bool, keep_empty_containers: bool) -> str:
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
    if node.cdata.schema.nodetype & (lib.LYS_LEAF | lib.LYS_LEAFLIST):
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
    """Walk libyang's diff (yang:operation metadata) into typed `Change`s, document order.

    A non-presence container that comes or goes is no change of its own (RFC 7950 s7.5.1: it
    only organizes the hierarchy): its explicit entries and leaves are (not the leaves libyang
    holds at their defaults), each named with its keys, as
    RFC 6470's ``edit/target`` wants. Without this a transaction's slice, where the container
    holds only the edited entry, would report the container where one entry changed."""
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
            if inherited is not None and cdata.flags & lib.LYD_DEFAULT:  # set by the server, not a change
                cdata = cdata.next
                continue
            if op in ("create", "delete") and _holder_only(cdata):
                walk(lib.lyd_child(cdata), op)
                cdata = cdata.next
                continue
            node = DNode.new(ctx, cdata)
            path = node.path()
            # the diff's own node would print its yang:operation; one inside a holder has none
            if op == "create":
                created = new.get(path) if inherited is None else None
                changes.append(Change("create", path, None, node_value(created or node)))
            elif op == "delete":
                deleted = old.get(path) if inherited is None else None
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


def _holder_only(cdata) -> bool:
    """A non-presence container: it exists for what it holds."""
    snode = cdata.schema
    return snode != ffi.NULL and snode.nodetype == lib.LYS_CONTAINER and not snode.flags & lib.LYS_PRESENCE


# ---------------------------------------------------------------------- node-level helpers
# (cdata = ``struct lyd_node *``; only this package touches them)


def _find(tree: DataTree, path: str):
    """The node at a data path, or NULL (errors from a path that names nothing are dropped)."""
    root = tree._root[0]  # noqa: SLF001
    if root == ffi.NULL:
        return ffi.NULL
    out = ffi.new("struct lyd_node **")
    if lib.lyd_find_path(root, path.encode(), 0, out) == lib.LY_SUCCESS:
        return out[0]
    lib.ly_err_clean(tree.schema.ctx.cdata, ffi.NULL)
    return ffi.NULL


def _find_child(parent, name: str):
    child = lib.lyd_child(parent)
    while child != ffi.NULL:
        if child.schema != ffi.NULL and ffi.string(child.schema.name).decode() == name:
            return child
        child = child.next
    return ffi.NULL


def _addresses(tree: DataTree, paths: Sequence[str]) -> set[int]:
    """Addresses of the nodes at `paths` (those that exist)."""
    found = (_find(tree, path) for path in paths)
    return {int(ffi.cast("uintptr_t", node)) for node in found if node != ffi.NULL}


def _under(cdata, hidden: set[int] | frozenset[int]) -> bool:
    """Is the node, or one of its ancestors, at one of the `hidden` addresses?"""
    if not hidden:
        return False
    node = cdata
    while node != ffi.NULL:
        if int(ffi.cast("uintptr_t", node)) in hidden:
            return True
        node = ffi.cast("struct lyd_node *", node.parent)
    return False


def _dangling(reference: Any, value: str, cdata) -> DataIssue:
    """libyang's own words for a leafref instance whose target is missing (RFC 7950 s15.5)."""
    return DataIssue(f'Invalid leafref value "{value}" - no target instance "{reference.target}" with the same value.',
                     path=_node_path(cdata), app_tag="instance-required", kind=IssueKind.INSTANCE_REQUIRED)


def _free(tree: DataTree, cdata) -> None:
    """Free one subtree, keeping the tree's root pointer on a live first sibling."""
    root = tree._root  # noqa: SLF001
    if cdata == root[0] or cdata == lib.lyd_first_sibling(root[0]):
        first = lib.lyd_first_sibling(root[0])
        if cdata == first:
            root[0] = cdata.next if cdata.next != ffi.NULL else ffi.NULL
    lib.lyd_free_tree(cdata)
    if root[0] != ffi.NULL:
        root[0] = lib.lyd_first_sibling(root[0])


def _insert_copy(tree: DataTree, source) -> None:
    """Insert a copy of `source` (with its parents, without metadata) into `tree`."""
    out = ffi.new("struct lyd_node **")
    flags = lib.LYD_DUP_RECURSIVE | lib.LYD_DUP_NO_META | lib.LYD_DUP_WITH_PARENTS | lib.LYD_DUP_WITH_FLAGS
    ctx = tree.schema.ctx.cdata
    if lib.lyd_dup_single(source, ffi.NULL, flags, out) != lib.LY_SUCCESS:
        raise_issues(ctx, "cannot copy data")
    top = out[0]
    while top.parent != ffi.NULL:
        top = ffi.cast("struct lyd_node *", top.parent)
    if tree._root[0] == ffi.NULL:  # noqa: SLF001
        tree._root[0] = top  # noqa: SLF001
        return
    _merge_level(tree._root, ffi.NULL, top, ctx, destruct=True)  # noqa: SLF001
    tree._reroot()  # noqa: SLF001


def _merge_level(first_pp, parent, src, ctx, *, destruct: bool = False) -> None:
    """Merge `src` and its following siblings into the level whose first sibling `first_pp`
    points at: children of `parent`, or top-level siblings when `parent` is NULL.

    libyang's own merge is used for whole top-level subtrees the target lacks (one copy). Below
    the top, each source node is looked up in the target by its path (hash lookups): absent ->
    one copy inserted under the parent; a term -> its value updated when it differs; an inner
    node -> merged recursively. Cost: O(nodes the source shares with the target + subtrees it
    adds), never O(n^2)."""
    while src != ffi.NULL:
        nxt = src.next
        if parent == ffi.NULL:
            match = _find_like(first_pp[0], src, ctx) if first_pp[0] != ffi.NULL else ffi.NULL
            if match == ffi.NULL:
                if lib.lyd_merge_tree(first_pp, src, lib.LYD_MERGE_DESTRUCT if destruct else 0) != lib.LY_SUCCESS:
                    raise_issues(ctx, "cannot merge data")
            else:
                _merge_into(match, src, ctx)
                if destruct:
                    lib.lyd_free_tree(src)
            first_pp[0] = lib.lyd_first_sibling(first_pp[0])
        else:
            _merge_child(parent, src, ctx)
        src = nxt


def _merge_into(target, src, ctx) -> None:
    """Merge the children of `src` into the matching inner node `target`."""
    child = lib.lyd_child(src)
    while child != ffi.NULL:
        nxt = child.next
        if not (child.schema != ffi.NULL and child.schema.flags & lib.LYS_KEY):  # keys match by construction
            _merge_child(target, child, ctx)
        child = nxt


def _merge_child(parent, src, ctx) -> None:
    first = lib.lyd_child(parent)
    match = _find_like(first, src, ctx) if first != ffi.NULL else ffi.NULL
    if match == ffi.NULL:
        out = ffi.new("struct lyd_node **")
        if lib.lyd_dup_single(src, ffi.NULL, lib.LYD_DUP_RECURSIVE | lib.LYD_DUP_WITH_FLAGS, out) != lib.LY_SUCCESS:
            raise_issues(ctx, "cannot copy data")
        if lib.lyd_insert_child(parent, out[0]) != lib.LY_SUCCESS:
            lib.lyd_free_tree(out[0])
            raise_issues(ctx, "cannot insert data")
        return
    nodetype = src.schema.nodetype if src.schema != ffi.NULL else 0
    if nodetype == lib.LYS_LEAF:
        new = lib.lyd_get_value(src)
        if src.flags & lib.LYD_DEFAULT and not match.flags & lib.LYD_DEFAULT:
            return  # an implicit default never overrides a value that was set
        if ffi.string(new) != ffi.string(lib.lyd_get_value(match)) or (match.flags & lib.LYD_DEFAULT
                                                                       and not src.flags & lib.LYD_DEFAULT):
            out = ffi.new("struct lyd_node **")
            path = lib.lyd_path(match, lib.LYD_PATH_STD, ffi.NULL, 0)
            try:
                ret = lib.lyd_new_path(match, ffi.NULL, path, new, lib.LYD_NEW_PATH_UPDATE, out)
            finally:
                lib.free(path)
            if ret != lib.LY_SUCCESS:
                raise_issues(ctx, "cannot merge data")
    elif nodetype in _INNER:
        _merge_into(match, src, ctx)
    # leaf-list values and anydata that match are already there


_INNER = (lib.LYS_CONTAINER, lib.LYS_LIST)


def _find_like(first, src, ctx):
    """The instance among `first`'s siblings that `src` would merge into: the same list entry
    (keys), leaf-list value or container, found through the siblings' hash table. A leaf is
    found by its path instead: libyang's sibling search compares a leaf's value too."""
    if src.schema != ffi.NULL and src.schema.nodetype in (lib.LYS_LEAF, lib.LYS_ANYDATA, lib.LYS_ANYXML):
        raw = lib.lyd_path(src, lib.LYD_PATH_STD, ffi.NULL, 0)
        try:
            out = ffi.new("struct lyd_node **")
            if lib.lyd_find_path(first, raw, 0, out) == lib.LY_SUCCESS:
                return out[0]
        finally:
            lib.free(raw)
        lib.ly_err_clean(ctx, ffi.NULL)
        return ffi.NULL
    match = find_sibling(first, src)
    if match == ffi.NULL:
        lib.ly_err_clean(ctx, ffi.NULL)
    return match


def _first_duplicate(first) -> DataIssue | None:
    """The first sibling set (depth-first) holding two instances of a leaf, container or list
    entry (same keys), or two equal leaf-list values."""
    seen: set = set()
    node = first
    while node != ffi.NULL:
        snode = node.schema
        if snode != ffi.NULL:
            nodetype = snode.nodetype
            if nodetype in (lib.LYS_LEAF, lib.LYS_CONTAINER, lib.LYS_ANYDATA, lib.LYS_ANYXML):
                key = snode
            elif nodetype in (lib.LYS_LIST, lib.LYS_LEAFLIST):
                key = (snode, _node_path(node))
            else:
                key = None
            if key is not None:
                if key in seen:
                    return DataIssue(f'Duplicate instance of "{ffi.string(snode.name).decode()}".', _node_path(node),
                                     kind=IssueKind.DUPLICATE, node=ffi.string(snode.name).decode())
                seen.add(key)
            if nodetype in _INNER:
                child = lib.lyd_child(node)
                if child != ffi.NULL:
                    found = _first_duplicate(child)
                    if found is not None:
                        return found
        node = node.next
    return None


def _node_path(cdata) -> str:
    raw = lib.lyd_path(cdata, lib.LYD_PATH_STD, ffi.NULL, 0)
    try:
        return ffi.string(raw).decode()
    finally:
        lib.free(raw)


_term_cache: dict[int, list[tuple[str, bool]]] = {}


def _term_children(snode) -> list[tuple[str, bool]]:
    """(name, is leaf-list) of an inner schema node's config leaf children; cached per schema
    node. Looked up by name, so a container with 10,000 list entries costs nothing here."""
    key = int(ffi.cast("uintptr_t", snode))
    cached = _term_cache.get(key)
    if cached is None:
        cached = []
        parent_mod = ffi.string(snode.module.name).decode()
        child = lib.lysc_node_child(snode)
        while child != ffi.NULL:
            if child.nodetype in (lib.LYS_LEAF, lib.LYS_LEAFLIST) and not child.flags & lib.LYS_CONFIG_R:
                mod = ffi.string(child.module.name).decode()
                name = ffi.string(child.name).decode()
                cached.append((name if mod == parent_mod else f"{mod}:{name}", child.nodetype == lib.LYS_LEAFLIST))
            child = child.next
        _term_cache[key] = cached
    return cached


def parent_path(path: str) -> str | None:
    """The data path of a node's parent (None for a top-level node), read from the right so its
    cost does not grow with the depth. Key values are quoted with ' or " and never contain their
    own quote (libyang picks the other one), so brackets and slashes inside them are skipped."""
    i = len(path) - 1
    while i > 0:
        ch = path[i]
        if ch == "]":
            while i > 0 and path[i] != "[":
                if path[i] in "'\"":
                    i = path.rindex(path[i], 0, i)
                i -= 1
        elif ch == "/":
            return path[:i] or None
        i -= 1
    return None
