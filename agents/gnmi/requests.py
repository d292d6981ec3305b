"""The paths of a gNMI request, checked against the schema and turned into patterns.

A request path is `prefix` + `path` (specification 2.2.2.1). The origin may be empty,
``rfc7951`` or a module name (pygnmi sends ``etsi-qkd-sdn-node:qkd_node`` as origin
``etsi-qkd-sdn-node`` and element ``qkd_node``); element names may carry a module prefix
(``etsi-qkd-sdn-node:qkd_node``) where the module changes, as in RFC 7951. Wildcards are ``*``
(one element, or any key value) and ``...`` (any number of levels). Checking against the schema
here means a typo is INVALID_ARGUMENT at once instead of a silent empty subscription.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gnmi_pb import gnmi_pb2
from qstrata.bindings.paths import gnmi_path_to_string
from qstrata.bindings.schema_index import SchemaIndex, SchemaNode

from .errors import invalid

RFC7951_ORIGIN = "rfc7951"
DATA_KINDS = frozenset({"container", "list", "leaf", "leaf-list"})


@dataclass(frozen=True, slots=True)
class Elem:
    """One step of a pattern: `name` is a node name, ``*`` or ``...``; `module` is None when the
    request left it implicit; `keys` has no ``*`` values (a key wildcard is no constraint)."""

    module: str | None
    name: str
    keys: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Pattern:
    elems: tuple[Elem, ...]
    text: str
    """The path as gnmic prints it, for messages."""
    wildcard: bool
    request_path: gnmi_pb2.Path
    """`path` as the client sent it (echoed in Get responses)."""


def resolve(index: SchemaIndex, prefix: gnmi_pb2.Path | None, path: gnmi_pb2.Path) -> Pattern:
    """Raise INVALID_ARGUMENT for a path that is malformed or names nothing in the schema."""
    if path.element or (prefix is not None and prefix.element):
        raise invalid("Path.element (deprecated in gNMI 0.4) is not supported; use Path.elem")
    elems_in = list(prefix.elem if prefix is not None else ()) + list(path.elem)
    origin = path.origin or (prefix.origin if prefix is not None else "")
    text = gnmi_path_to_string(gnmi_pb2.Path(elem=elems_in))
    if origin and origin != RFC7951_ORIGIN and origin not in index.modules:
        raise invalid(f"unknown origin {origin!r}: use '', 'rfc7951' or a module name")
    elems: list[Elem] = []
    for i, e in enumerate(elems_in):
        if not e.name:
            raise invalid(f"empty element name in {text}")
        module, _, name = e.name.rpartition(":")
        if i == 0 and origin and origin != RFC7951_ORIGIN:
            if module and module != origin:
                raise invalid(f"element {e.name!r} is not in module {origin!r} (the path's origin)")
            module = origin
        if module and module not in index.modules:
            mapped = index.module_name(module)
            if mapped is None:
                raise invalid(f"unknown module {module!r} in {text}")
            module = mapped
        if name in ("*", "...") and e.key:
            raise invalid(f"a wildcard element takes no keys in {text}")
        keys = tuple((k.rpartition(":")[2], v) for k, v in sorted(e.key.items()) if v != "*")
        elems.append(Elem(module or None, name, keys))
    checked = _check_schema(index, elems, text)
    wildcard = any(e.name in ("*", "...") for e in checked) or any(
        "*" in e.key.values() for e in elems_in)
    return Pattern(tuple(checked), text, wildcard, path)


def _check_schema(index: SchemaIndex, elems: list[Elem], text: str) -> list[Elem]:
    """Every named element exists below its parent; keys belong to lists. Fills in the module
    of unqualified elements when the schema makes it unambiguous."""
    candidates: Iterable[SchemaNode] | None = None  # None: the top level
    out: list[Elem] = []
    for i, elem in enumerate(elems):
        if elem.name == "...":
            return out + elems[i:]
        level = [n for n in (index.top.values() if candidates is None else
                             (c for p in candidates for c in p.children.values())) if n.kind in DATA_KINDS]
        if elem.name == "*":
            matches = level
        else:
            matches = [n for n in level if n.name == elem.name and (elem.module is None or n.module == elem.module)]
            if not matches:
                where = gnmi_path_to_string(_as_path(out)) if out else "the top level"
                raise invalid(f"unknown element {elem.name!r} under {where} in {text}")
        if elem.keys:
            for node in matches:
                if node.kind != "list":
                    raise invalid(f"{node.name!r} is not a list: it takes no keys in {text}")
                unknown = [k for k, _ in elem.keys if k not in node.keys]
                if unknown:
                    raise invalid(f"{unknown[0]!r} is not a key of list {node.name!r} "
                                  f"(keys: {', '.join(node.keys)}) in {text}")
        modules = {n.module for n in matches}
        module = elem.module or (next(iter(modules)) if len(modules) == 1 and elem.name != "*" else None)
        out.append(Elem(module, elem.name, elem.keys))
        candidates = matches
    return out


def _as_path(elems: list[Elem]) -> gnmi_pb2.Path:
    return gnmi_pb2.Path(elem=[gnmi_pb2.PathElem(name=e.name, key=dict(e.keys)) for e in elems])
