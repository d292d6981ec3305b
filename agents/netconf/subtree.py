"""RFC 6241 s6 subtree filtering over lxml trees.

``<get>`` and ``<get-config>`` select data with a ``<filter type="subtree">``: an XML
fragment shaped like the data it selects. The filter is evaluated one sibling set at a time
(RFC 6241 s6.3), each filter node being one of:

* a *selection node* (empty element): selects the matching data nodes with their subtrees;
* a *content match node* (element with text only): an exact match on a leaf's value. All
  content match nodes of a sibling set must match (AND); if they do and the set has no
  selection or containment nodes, the whole data sibling set is selected;
* a *containment node* (element with child elements): selects matching data nodes whose
  descendants the nested filter selects; data nodes with nothing selected below are pruned.

Namespace selection: a filter node in a namespace matches only data nodes in that namespace;
one in no namespace matches the local name in any namespace. So does one in the NETCONF base
namespace: an unqualified filter element inherits it from ``<rpc xmlns="...base:1.0">``, the
client meant "no namespace", and no YANG data lives in the base namespace. Attribute match expressions:
every attribute on a filter node must be present, with the same value, on the data node.

The filter is evaluated in two passes -- first a *selection* (which data nodes are in the
output, fully or partly), then the output is built in document order -- so data selected by
several filter subtrees appears once (RFC 6241 s6.1), with the union of what each selected.
Work is linear in the data and filter sizes: each data parent's children are indexed once per
sibling set, and many filter entries for one list (``<user><name>a</name></user>`` ...
``<user><name>z</name></user>``) are resolved through a value index instead of a scan each.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence

from lxml import etree
from qstrata.agents.netconf.errors import BASE_NS

__all__ = ["ListKeys", "apply_subtree_filter", "selects", "subtree_filter_xml"]

ListKeys = Callable[[etree._Element], Iterable[str]]
"""Given a data element, the Clark-notation tags of its list key leaves (empty if it is not a
list entry). Key leaves of a partly selected list entry are always output, so every entry in
the reply can be told apart (RFC 6241 s6.2.5 allows it; clients rely on it)."""

_FULL = object()
"""Selection marker: the data node is output with its whole subtree."""

# data node -> _FULL or a nested selection of its children
_Selection = dict[etree._Element, object]

_INDEX_THRESHOLD = 4
"""Containment filter nodes for one list above which a value index beats scanning."""


def apply_subtree_filter(
    data: etree._Element,
    filter_elements: Sequence[etree._Element],
    *,
    list_keys: ListKeys | None = None,
) -> etree._Element:
    """Return a new element shaped like ``data`` (same tag, e.g. ``<data>``) holding the
    children of ``data`` selected by ``filter_elements`` (the children of ``<filter>``).

    ``data`` is not modified. An empty filter selects nothing (RFC 6241 s6.4.2).
    """
    filters = [f for f in filter_elements if isinstance(f.tag, str)]
    selection = _select(data, filters) if filters else None
    result = etree.Element(data.tag, attrib=dict(data.attrib), nsmap=data.nsmap)
    if selection:
        _emit(result, data, selection, list_keys)
    return result


def selects(data: etree._Element, filter_elements: Sequence[etree._Element]) -> bool:
    """Whether ``filter_elements`` select anything among the children of ``data`` (an RFC 5277
    notification filter passes or holds back a whole event)."""
    filters = [f for f in filter_elements if isinstance(f.tag, str)]
    return bool(filters) and bool(_select(data, filters))


# -- selection ------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag[tag.rfind("}") + 1 :]


def _namespace(tag: str) -> str | None:
    return tag[1 : tag.index("}")] if tag[0] == "{" else None


def _children(element: etree._Element) -> list[etree._Element]:
    """Child elements, skipping comments and processing instructions."""
    return [child for child in element if isinstance(child.tag, str)]


def _leaf_text(element: etree._Element) -> str | None:
    """The stripped text of a leaf element; None if it has element children."""
    if len(element) and any(isinstance(child.tag, str) for child in element):
        return None
    return (element.text or "").strip()


class _FilterNode:
    """A filter element, classified once (RFC 6241 s6.2)."""

    __slots__ = ("attrib", "children", "content", "element", "local", "namespace")

    def __init__(self, element: etree._Element) -> None:
        self.element = element
        self.local = _local(element.tag)
        namespace = _namespace(element.tag)
        self.namespace = None if namespace == BASE_NS else namespace
        self.attrib = dict(element.attrib)
        self.children = [_FilterNode(child) for child in _children(element)]
        text = (element.text or "").strip()
        # An element with children is a containment node even if it also has (mixed) text.
        self.content = text if text and not self.children else None

    @property
    def is_containment(self) -> bool:
        return bool(self.children)

    @property
    def is_content_match(self) -> bool:
        return self.content is not None

    def matches(self, data: etree._Element) -> bool:
        """Name, namespace and attribute match (the local name is already known to match)."""
        if self.namespace is not None and _namespace(data.tag) != self.namespace:
            return False
        if self.attrib:
            data_attrib = data.attrib
            for name, value in self.attrib.items():
                if data_attrib.get(name) != value:
                    return False
        return True


class _Children:
    """A data parent's child elements indexed by local name, built once per sibling set."""

    __slots__ = ("by_local", "ordered", "_value_index")

    def __init__(self, parent: etree._Element) -> None:
        self.ordered = _children(parent)
        self.by_local: dict[str, list[etree._Element]] = {}
        for child in self.ordered:
            self.by_local.setdefault(_local(child.tag), []).append(child)
        self._value_index: dict[tuple[str, str], dict[str, list[etree._Element]]] = {}

    def candidates(self, node: _FilterNode) -> list[etree._Element]:
        return self.by_local.get(node.local, [])

    def by_leaf_value(self, entry_local: str, leaf_local: str, value: str) -> list[etree._Element]:
        """Children named ``entry_local`` having a leaf child named ``leaf_local`` whose text
        is ``value``: a superset of those a content match on that leaf accepts."""
        key = (entry_local, leaf_local)
        index = self._value_index.get(key)
        if index is None:
            index = {}
            for entry in self.by_local.get(entry_local, ()):
                for leaf in entry:
                    if isinstance(leaf.tag, str) and _local(leaf.tag) == leaf_local:
                        text = _leaf_text(leaf)
                        if text is not None:
                            bucket = index.setdefault(text, [])
                            if not bucket or bucket[-1] is not entry:
                                bucket.append(entry)
            self._value_index[key] = index
        return index.get(value, [])


def _select(parent: etree._Element, filters: list[_FilterNode] | list[etree._Element]) -> _Selection | None:
    """Evaluate one filter sibling set against ``parent``'s children.

    Returns the selected children (data node -> _FULL or nested selection), possibly empty,
    or None when a content match node failed -- then nothing of this set is selected.
    """
    nodes = [f if isinstance(f, _FilterNode) else _FilterNode(f) for f in filters]
    children = _Children(parent)
    selected: _Selection = {}

    content_nodes = [n for n in nodes if n.is_content_match]
    for node in content_nodes:
        hits = [
            child
            for child in children.candidates(node)
            if node.matches(child) and _leaf_text(child) == node.content
        ]
        if not hits:
            return None
        for child in hits:
            selected[child] = _FULL

    others = [n for n in nodes if not n.is_content_match]
    if content_nodes and not others:
        # Only content match nodes, all true: the whole sibling set is selected.
        return dict.fromkeys(children.ordered, _FULL)

    containment: dict[str, list[_FilterNode]] = {}
    for node in others:
        if node.is_containment:
            containment.setdefault(node.local, []).append(node)
            continue
        for child in children.candidates(node):  # selection node
            if node.matches(child):
                selected[child] = _FULL

    for local, group in containment.items():
        for node in group:
            for child in _containment_candidates(children, local, group, node):
                if selected.get(child) is _FULL or not node.matches(child):
                    continue
                nested = _select(child, node.children)
                if nested:  # None (content mismatch) or empty: pruned
                    _merge(selected, child, nested)
    return selected


def _containment_candidates(
    children: _Children, local: str, group: list[_FilterNode], node: _FilterNode
) -> list[etree._Element]:
    """Candidates for one containment node. When many filter entries target the same list,
    narrow each to the entries whose first content-match leaf has the wanted value."""
    if len(group) > _INDEX_THRESHOLD:
        key_node = next((c for c in node.children if c.is_content_match), None)
        if key_node is not None:
            return children.by_leaf_value(local, key_node.local, key_node.content)  # type: ignore[arg-type]
    return children.candidates(node)


def _merge(selected: _Selection, child: etree._Element, nested: object) -> None:
    """Union of two selections of the same data node (RFC 6241 s6.1: no duplicates)."""
    current = selected.get(child)
    if current is None or nested is _FULL:
        selected[child] = nested
    elif current is _FULL:
        return
    else:
        assert isinstance(current, dict) and isinstance(nested, dict)
        for grandchild, sub in nested.items():
            _merge(current, grandchild, sub)


# -- output ---------------------------------------------------------------------------------


def _emit(
    out_parent: etree._Element,
    data_parent: etree._Element,
    selection: _Selection,
    list_keys: ListKeys | None,
) -> None:
    """Append the selected children of ``data_parent`` to ``out_parent`` in document order."""
    for child, choice in _chosen(data_parent, selection, list_keys):
        if choice is None:
            duplicate = copy.deepcopy(child)
            duplicate.tail = None
            out_parent.append(duplicate)
            continue
        partial = etree.SubElement(out_parent, child.tag, attrib=dict(child.attrib), nsmap=_own_nsmap(child))
        _emit(partial, child, choice, list_keys)


def _chosen(data_parent: etree._Element, selection: _Selection,
            list_keys: ListKeys | None) -> Iterator[tuple[etree._Element, _Selection | None]]:
    """The selected children of ``data_parent`` in document order, each with the selection inside
    it (None: the whole child). A partly selected list entry keeps its keys (RFC 6241 s6.2.5), so
    both serializers widen its selection with them here."""
    for child in data_parent:
        choice = selection.get(child) if isinstance(child.tag, str) else None
        if choice is None:
            continue
        if choice is _FULL:
            yield child, None
            continue
        assert isinstance(choice, dict)
        keys = set(list_keys(child)) if list_keys is not None else set()
        if keys:
            choice = {**choice, **{g: _FULL for g in child if g.tag in keys}}
        yield child, choice


def _own_nsmap(element: etree._Element) -> dict[str | None, str]:
    """The declaration that keeps the element's own prefix (lxml drops redundant ones)."""
    namespace = _namespace(element.tag)
    return {element.prefix: namespace} if namespace else {}


def subtree_filter_xml(
    data: etree._Element,
    filter_elements: Sequence[etree._Element],
    *,
    list_keys: ListKeys | None = None,
) -> bytes:
    """Like `apply_subtree_filter`, but the selected content of ``data`` serialized (what goes
    inside ``<data>``). Selected subtrees are serialized where they stand, with the namespace
    declarations they carry: moving elements between lxml documents would drop a declaration
    whose URI is already in scope under another prefix, and with it the prefix of an
    identityref value such as ``ncm:yang``."""
    filters = [f for f in filter_elements if isinstance(f.tag, str)]
    selection = _select(data, filters) if filters else None
    out: list[bytes] = []
    if selection:
        _emit_xml(out, data, selection, list_keys)
    return b"".join(out)


_SPLIT = "\ue000qstrata\ue000"


def _emit_xml(out: list[bytes], data_parent: etree._Element, selection: _Selection,
              list_keys: ListKeys | None) -> None:
    for child, choice in _chosen(data_parent, selection, list_keys):
        if choice is None:
            out.append(etree.tostring(child, with_tail=False))
            continue
        shell = etree.Element(child.tag, attrib=dict(child.attrib), nsmap=dict(child.nsmap))
        shell.text = _SPLIT
        start, end = etree.tostring(shell, encoding="unicode").split(_SPLIT)
        out.append(start.encode())
        _emit_xml(out, child, choice, list_keys)
        out.append(end.encode())
