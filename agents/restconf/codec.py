"""Request bodies into data trees, data trees into answers: RFC 7951 JSON and XML through
libyang (`bindings`), the plain-JSON dialect through `dialect`.

A body holds one resource; to parse it against the schema it is placed inside its ancestors
(the resource path's containers and list entries, with their keys) and libyang parses the whole
as an edit (types and structure checked, not validated). JSON is read by Python's parser first,
which refuses duplicate member names (RFC 7951 s4 / RFC 8259: names SHOULD be unique; libyang
would keep the last) and nesting deeper than `MAX_DEPTH`.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from qstrata.bindings.codecs.values import key_json_value
from qstrata.bindings.paths import PathStep
from qstrata.bindings.schema import Schema
from qstrata.bindings.schema_index import SchemaIndex, SchemaNode
from qstrata.bindings.tree import DataTree, print_node
from qstrata.bindings.validate import InvalidData
from qstrata.bindings.wire.xmlsafe import MalformedMessage, content_xml, parse_message

from . import dialect
from .errors import RestconfError, bad_request, from_core
from .media import Encoding
from .resource import Target

MAX_DEPTH = 128
"""Deepest JSON nesting read; YANG data here is a dozen levels (libxml2 stops XML at 256)."""
_NESTING = re.compile(rb"[\[\]{}\"\\]")
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>", re.DOTALL)


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise _Duplicate(name)
        out[name] = value
    return out


def _check_depth(raw: bytes) -> None:
    """Refuse deep nesting before the parser recurses into it (a 100,000-deep document costs a
    scan of its bytes, nothing more)."""
    depth = 0
    in_string = False
    skip = -1
    for m in _NESTING.finditer(raw):
        if m.start() < skip:
            continue
        c = m.group()
        if in_string:
            if c == b"\\":
                skip = m.end() + 1  # the escaped byte is data
            elif c == b'"':
                in_string = False
            continue
        if c == b'"':
            in_string = True
        elif c in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise RestconfError("malformed-message", f"the JSON body is nested deeper than {MAX_DEPTH} levels",
                                    error_type="rpc")
        elif c in (b"]", b"}"):
            depth -= 1


def parse_json(raw: bytes) -> Any:
    _check_depth(raw)
    try:
        return json.loads(raw, object_pairs_hook=_no_duplicates)
    except _Duplicate as exc:
        raise RestconfError("malformed-message", f"the JSON body names member {exc.args[0]!r} twice in one object",
                            error_type="rpc") from None
    except RecursionError:
        raise RestconfError("malformed-message", "the JSON body is nested too deeply", error_type="rpc") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RestconfError("malformed-message", f"the body is not JSON: {exc}", error_type="rpc") from None


@dataclass
class Body:
    """A parsed request body: the edit tree (the resource inside its ancestors) and the
    resource it holds."""

    tree: DataTree
    path: str
    """Data path of the resource the body holds (the target, or for POST the new child)."""
    node: SchemaNode
    keys: tuple[tuple[str, str], ...] = ()
    whole_parent: list[tuple[str, SchemaNode, tuple[tuple[str, str], ...]]] | None = None
    """Dialect POST to a container with the container itself as body: the resources inside it,
    each created."""


def _wrap_json(target: Target, schema: Schema, inner: dict[str, Any]) -> dict[str, Any]:
    """`inner` (members of the node at `target`) inside the target's ancestors, RFC 7951 names;
    each key from the URI (a string, RFC 8040 s3.5.3) as RFC 7951 writes its type (a uint32 is
    a number: libyang refuses ``"13"``)."""
    doc = inner
    for depth in range(len(target.steps) - 1, -1, -1):
        step = target.steps[depth]
        if step.keys and step.keys[0][0] != ".":
            at = schema_path(target.steps[:depth + 1])
            entry = {k: key_json_value(schema, f"{at}/{k}", v) for k, v in step.keys}
            entry.update(doc)
            doc = {f"{step.module}:{step.name}": [entry]}
        else:
            doc = {f"{step.module}:{step.name}": doc}
    return doc


def _wrap_xml(target: Target, schema: Schema, inner: bytes) -> bytes:
    head, tail = [], []
    previous = None
    for step in target.steps:
        xmlns = f' xmlns="{schema.namespace(step.module)}"' if step.module != previous else ""
        keys = "".join(f"<{k}>{_xml_text(v)}</{k}>" for k, v in step.keys if k != ".")
        head.append(f"<{step.name}{xmlns}>{keys}")
        tail.insert(0, f"</{step.name}>")
        previous = step.module
    return "".join(head).encode() + inner + "".join(tail).encode()


def _xml_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def schema_path(steps: tuple[PathStep, ...]) -> str:
    """Schema path of `steps` without keys, each module named where it changes (the dialect's
    positions)."""
    out, previous = [], None
    for step in steps:
        out.append(step.name if step.module == previous else f"{step.module}:{step.name}")
        previous = step.module
    return "/" + "/".join(out) if out else ""


def _parse(schema: Schema, text: bytes | str, fmt: str) -> DataTree:
    try:
        return DataTree.parse(text, fmt, schema=schema, config_only=True, validate=False)  # type: ignore[arg-type]
    except InvalidData as exc:
        raise from_core(exc) from None


def decode(raw: bytes, encoding: Encoding, target: Target, schema: Schema, index: SchemaIndex,
           child: bool) -> Body:
    """The body of a PUT/PATCH (`child` False: it holds the target) or a POST (`child` True:
    it holds one new child of the target). Raises `RestconfError` (400) when it holds anything
    else."""
    if not raw.strip():
        raise bad_request("the request has no body; it must hold the resource", tag="malformed-message",
                          error_type="rpc")
    container = target if child else _parent(target, index)
    if encoding == "xml":
        if re.search(rb"<!DOCTYPE|<!ENTITY", raw[:4096], re.IGNORECASE):
            raise RestconfError("malformed-message", "a document type declaration is not accepted", error_type="rpc")
        tree = _parse(schema, _wrap_xml(container, schema, _XML_DECL.sub(b"", raw, count=1)), "xml")
        return _located(tree, container, target, child, index, whole_parent=False)
    doc = parse_json(raw)
    if not isinstance(doc, dict) or len(doc) != 1:
        raise bad_request("the JSON body must be an object with exactly one member: the resource",
                          tag="malformed-message", error_type="rpc")
    whole_parent = False
    if encoding == "plain":
        name = next(iter(doc))
        if child and target.node is not None and name.rpartition(":")[2] == target.node.name and \
                target.node.kind == "container":
            # TeraFlowSDN POSTs {"qkd_links": {"qkd_link": [...]}} to .../qkd_links: the container's content
            doc = doc[name] if isinstance(doc[name], dict) else {}
            whole_parent = True
        doc = dialect.from_plain(doc, container.node, schema_path(container.steps), index, schema,
                                 qualify=not whole_parent)
    if not isinstance(doc, dict) or (not whole_parent and len(doc) != 1):
        raise bad_request("the JSON body must hold exactly one resource", tag="malformed-message", error_type="rpc")
    for name in doc if not whole_parent else ():
        if ":" not in name:
            raise RestconfError("malformed-message", f"member {name!r} needs its module (RFC 7951 s4: module:{name}); "
                                "plain application/json may leave it out", error_type="rpc")
    tree = _parse(schema, json.dumps(_wrap_json(container, schema, doc)), "json")
    return _located(tree, container, target, child, index, whole_parent=whole_parent)


def _parent(target: Target, index: SchemaIndex) -> Target:
    if target.is_datastore:
        raise bad_request("a body for the datastore resource goes to PUT/PATCH of {+restconf}/data")
    steps = target.steps[:-1]
    node = index.node([(s.module, s.name) for s in steps]) if steps else None  # type: ignore[misc]
    from .resource import data_path_of

    return Target(data_path_of(steps), steps, node, data_path_of(steps[:-1]) if steps else "/")


def _located(tree: DataTree, container: Target, target: Target, child: bool, index: SchemaIndex, *,
             whole_parent: bool) -> Body:
    """Find the one resource the body holds inside the wrapper."""
    members = _children(tree, container, index)
    if whole_parent:
        assert target.node is not None
        inside = []
        for path, module, name, keys in members:
            node = target.node.child(module, name)
            if node is not None:
                inside.append((path, node, tuple(keys)))
        return Body(tree, target.path, target.node, whole_parent=inside)
    if len(members) != 1:
        raise bad_request(f"the body must hold exactly one resource, it holds {len(members)}",
                          tag="malformed-message", error_type="rpc")
    path, module, name, keys = members[0]
    node = index.top.get((module, name)) if container.node is None else container.node.child(module, name)
    if node is None:
        raise RestconfError("unknown-element", f"{module}:{name} is not a data node here", error_type="protocol")
    if not child:
        if target.node is None or (module, name) != (target.node.module, target.node.name):
            raise bad_request(f"the body holds {module}:{name}, but the target resource is "
                              f"{target.steps[-1].module}:{target.steps[-1].name}")
        # the same values, not the same text: libyang reads the path's keys by their type (port=013 is port-id 13)
        if path != target.path and tuple(keys) != tuple(target.steps[-1].keys) and not tree.exists(target.path):
            raise bad_request("the key values in the body differ from those in the resource path "
                              f"({', '.join(f'{k}={v}' for k, v in target.steps[-1].keys)})")
        return Body(tree, target.path, target.node, tuple(target.steps[-1].keys))
    return Body(tree, path, node, tuple(keys))


def _children(tree: DataTree, container: Target, index: SchemaIndex
              ) -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    """(data path, module, name, keys) of each node directly inside the wrapper. A list entry's
    keys are its first children, in the list's key order (libyang keeps them so): read from the
    schema index, not asked of each child node."""
    if container.is_datastore:
        nodes = list(tree.top_nodes())
    else:
        parent = tree.get(container.path)
        keys_of_parent = len(container.node.keys) if container.node is not None else 0
        nodes = [] if parent is None else list(itertools.islice(parent.children(), keys_of_parent, None))
    out = []
    for node in nodes:
        module, name = node.module().name(), node.name()
        snode = index.top.get((module, name)) if container.node is None else container.node.child(module, name)
        keys: list[tuple[str, str]] = []
        if snode is not None and snode.kind == "list":
            keys = [(k.name(), str(k.value())) for k in itertools.islice(node.children(), len(snode.keys))]
        out.append((node.path(), module, name, keys))
    return out


def decode_datastore(raw: bytes, encoding: Encoding, schema: Schema, index: SchemaIndex) -> DataTree:
    """The body of a PUT/PATCH of the datastore resource: ``ietf-restconf:data`` around the
    top-level nodes (RFC 8040 s4.5, s4.6.1)."""
    if encoding == "xml":
        if re.search(rb"<!DOCTYPE|<!ENTITY", raw[:4096], re.IGNORECASE):
            raise RestconfError("malformed-message", "a document type declaration is not accepted", error_type="rpc")
        text = _XML_DECL.sub(b"", raw, count=1).strip()
        m = re.match(rb"<(?:\w+:)?data\b[^>]*>(.*)</(?:\w+:)?data>\Z", text, re.DOTALL)
        head = text[:text.find(b">") + 1]
        if m is None or b"urn:ietf:params:xml:ns:yang:ietf-restconf" not in head:
            raise bad_request('the body must be <data xmlns="urn:ietf:params:xml:ns:yang:ietf-restconf">',
                              tag="malformed-message", error_type="rpc")
        if b"xmlns:" not in head:
            return _parse(schema, m.group(1), "xml")
        # prefixes declared on <data> are in scope for the values inside (identityrefs, instance-identifiers)
        try:
            return _parse(schema, content_xml(parse_message(text)), "xml")
        except MalformedMessage as exc:
            raise RestconfError("malformed-message", f"the body is not acceptable XML: {exc.message}",
                                error_type="rpc") from None
    doc = parse_json(raw)
    if not isinstance(doc, dict) or len(doc) != 1 or next(iter(doc)) not in ("ietf-restconf:data", "data"):
        raise bad_request('the body must be {"ietf-restconf:data": {...}}', tag="malformed-message", error_type="rpc")
    inner = next(iter(doc.values()))
    if not isinstance(inner, dict):
        raise bad_request("ietf-restconf:data must be an object", tag="malformed-message", error_type="rpc")
    if encoding == "plain":
        inner = dialect.from_plain(inner, None, "", index, schema)
    return _parse(schema, json.dumps(inner), "json")


# ------------------------------------------------------------------------------------ output


def encode_node(cdata: Any, encoding: Encoding, modules: frozenset[str], *, with_defaults: str | None = None,
                keep_empty: bool = False, parent: str = "") -> bytes:
    """One data node (a container, a list entry, a leaf) as a RESTCONF answer; an empty container
    is written as one (``{"m:c": {}}``), not as nothing. `parent`: the node's parent's schema
    path for the plain dialect (`dialect.answer`)."""
    fmt = "xml" if encoding == "xml" else "json"
    text = print_node(cdata, fmt, with_defaults=with_defaults, keep_empty_containers=keep_empty)  # type: ignore[arg-type]
    if not text.strip() or text.strip() == "{}":
        text = print_node(cdata, fmt, with_defaults=with_defaults, keep_empty_containers=True)  # type: ignore[arg-type]
    if encoding == "plain":
        return json.dumps(dialect.answer(json.loads(text or "{}"), modules, parent)).encode()
    return text.encode()


def encode_datastore(tree: DataTree, encoding: Encoding, modules: frozenset[str], *,
                     with_defaults: str | None = None, keep_empty: bool = False) -> bytes:
    """The datastore resource: ``ietf-restconf:data`` around every top-level node (RFC 8040 s3.3.1)."""
    if encoding == "xml":
        body = tree.print("xml", with_defaults=with_defaults, keep_empty_containers=keep_empty)  # type: ignore[arg-type]
        return f'<data xmlns="urn:ietf:params:xml:ns:yang:ietf-restconf">{body}</data>'.encode()
    text = tree.print("json", with_defaults=with_defaults, keep_empty_containers=keep_empty)  # type: ignore[arg-type]
    if encoding == "plain":
        return json.dumps({"data": dialect.to_plain(json.loads(text or "{}"), modules)}).encode()
    return b'{"ietf-restconf:data":' + (text or "{}").encode() + b"}"
