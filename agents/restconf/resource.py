"""RFC 8040 s3.5.3 resource identifiers: the part of a URL after ``{+restconf}/data`` as a data
path the core understands, checked against the schema. Pure (no I/O, no aiohttp).

``/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link=3f1c...`` becomes
``/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id='3f1c...']``. Each segment is
``[module:]name[=key1,key2,...]``: the module is mandatory on the first segment and wherever
it changes; key values are split on ``,`` *before* percent-decoding (so ``%2C`` and ``%2F`` are
data, not syntax) and decoded as UTF-8. A trailing ``/`` is ignored (TeraFlowSDN writes
``.../qkd_links/``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from qstrata.bindings.paths import PathStep
from qstrata.bindings.schema_index import SchemaIndex, SchemaNode

from .errors import RestconfError, bad_request

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
MAX_SEGMENTS = 64
"""No schema here is that deep; a longer path is refused before any work."""


@dataclass(frozen=True)
class Target:
    """What a request acts on: the datastore itself (`node` None), a data node, or an
    operation (`node.kind` rpc/action)."""

    path: str
    """The data path (libyang/RFC 7951 style, keys as predicates); ``/`` for the datastore."""
    steps: tuple[PathStep, ...]
    node: SchemaNode | None
    parent_path: str

    @property
    def is_datastore(self) -> bool:
        return self.node is None

    @property
    def module(self) -> str | None:
        return self.steps[0].module if self.steps else None


def _decode(raw: str, what: str) -> str:
    try:
        text = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise bad_request(f"{what} {raw[:80]!r} is not percent-encoded UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise bad_request(f"{what} {raw[:80]!r} holds a control character (such as %00)")
    return text


def quote_value(value: str) -> str:
    """A key value as an XPath literal for a libyang predicate."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise bad_request("a key value holding both ' and \" cannot be addressed")


def parse(index: SchemaIndex, raw_path: str, *, operations: bool = False) -> Target:
    """`raw_path`: the URL path below ``/restconf/data`` (or ``/restconf/operations`` with
    `operations`), still percent-encoded. Raises `RestconfError` (400) for anything that names
    no schema node; whether data exists there is for the caller to find."""
    raw = raw_path.strip("/")
    if not raw:
        return Target("/", (), None, "/")
    segments = raw.split("/")
    if len(segments) > MAX_SEGMENTS:
        raise bad_request(f"the resource path has {len(segments)} segments, at most {MAX_SEGMENTS} are read")
    steps: list[PathStep] = []
    node: SchemaNode | None = None
    module: str | None = None
    for position, segment in enumerate(segments):
        name_part, eq, key_part = segment.partition("=")
        name = _decode(name_part, "the node name")
        prefix, colon, local = name.rpartition(":")
        if not _IDENTIFIER.fullmatch(local) or (colon and not _IDENTIFIER.fullmatch(prefix)):
            raise bad_request(f"{name!r} is not an api-identifier ([module:]name)", path=None)
        if colon:
            resolved = index.module_name(prefix) if prefix in index.modules else None
            if resolved is None:
                raise RestconfError("unknown-namespace", f"no module named {prefix!r} is implemented here",
                                    error_type="protocol", info={"bad-namespace": prefix})
            module = resolved
        elif position == 0:
            raise bad_request(f"the first segment must name its module (module:{local})",
                              tag="missing-attribute")
        child = index.top.get((module, local)) if node is None and position == 0 else (
            node.child(module, local) if node is not None else None)  # type: ignore[arg-type]
        if child is None and operations and position == 0:
            child = index.rpcs.get((module, local))  # type: ignore[arg-type]
        if child is None:
            where = "/".join(s.name for s in steps) or "the top"
            raise RestconfError("unknown-element", f"{module}:{local} is not a data node under {where}",
                                error_type="protocol", info={"bad-element": local})
        keys: tuple[tuple[str, str], ...] = ()
        if child.kind == "list":
            if not eq:
                raise RestconfError("missing-attribute", f"list {local} needs its key value(s) "
                                    f"({', '.join(child.keys)}) as {local}=value", error_type="protocol",
                                    info={"bad-element": local})
            values = [_decode(v, "the key value") for v in key_part.split(",")]
            if len(values) != len(child.keys):
                raise RestconfError("missing-attribute" if len(values) < len(child.keys) else "bad-attribute",
                                    f"list {local} has {len(child.keys)} key(s) ({', '.join(child.keys)}), "
                                    f"{len(values)} value(s) were given", error_type="protocol",
                                    info={"bad-element": local})
            keys = tuple(zip(child.keys, values, strict=True))
        elif child.kind == "leaf-list":
            if eq:
                keys = ((".", _decode(key_part, "the leaf-list value")),)
        elif eq:
            raise bad_request(f"{local} is a {child.kind}, it takes no key value", tag="bad-attribute",
                              info={"bad-element": local})
        steps.append(PathStep(module, local, keys))
        node = child
        if child.kind in ("rpc", "action") and position != len(segments) - 1:
            raise bad_request(f"{local} is an operation: nothing is below it")
    return Target(data_path_of(tuple(steps)), tuple(steps), node, data_path_of(tuple(steps[:-1])))


def child_segment(parent: Target, node: SchemaNode, keys: tuple[tuple[str, str], ...]) -> str:
    """The URL segment of a child (for a POST's ``Location``), percent-encoded."""
    name = node.name if parent.steps and parent.steps[-1].module == node.module else f"{node.module}:{node.name}"
    if keys:
        name += "=" + ",".join(quote(v, safe="") for _, v in keys)
    return name


def data_path_of(steps: tuple[PathStep, ...]) -> str:
    """Steps (module on each) as a libyang data path."""
    out = []
    previous = None
    for step in steps:
        shown = step.name if step.module == previous else f"{step.module}:{step.name}"
        out.append(shown + "".join(f"[{k}={quote_value(v)}]" for k, v in step.keys))
        previous = step.module
    return "/" + "/".join(out) if out else "/"


