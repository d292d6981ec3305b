"""What a telemetry consumer needs to know about a leaf: counter or gauge, numeric or not, units.

Collectors decide how to export a value from its YANG type, never from the value itself: a
`yang:counter64` that stays at 5 is still a counter, a `uint32` key rate is a gauge. Counters are
the ietf-yang-types counter typedefs (RFC 6991: counter32/64, zero-based-counter32/64) and any
typedef derived from them, followed through the typedef chain.

Lookups take schema paths (data paths without key predicates) and are cached per schema: the
collectors ask once per new series, not once per update.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import libyang
from _libyang import ffi

from .schema import Schema, get_schema

COUNTER_TYPEDEFS: frozenset[tuple[str, str]] = frozenset(
    ("ietf-yang-types", name) for name in ("counter32", "counter64", "zero-based-counter32", "zero-based-counter64")
)
RATIO_TYPEDEFS = frozenset({"fraction", "fidelity"})
NUMERIC_BASES = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "decimal64",
                           "boolean"})


@dataclass(frozen=True, slots=True)
class LeafInfo:
    """Export facts about one leaf (or leaf-list) of the schema."""

    path: str
    base: str
    """Built-in type name after typedefs (``uint64``, ``decimal64``, ``string``, ``union``...)."""
    counter: bool
    """Derived from an ietf-yang-types counter: monotonic, exported as a counter."""
    numeric: bool
    """A number (or boolean, exported as 0/1): fit for Prometheus."""
    units: str | None
    key: bool = False
    """A key of its list: it names the entry (a label to exporters, never a sample)."""
    reference: bool = False
    """A leafref: its value names another node's entry, it measures nothing."""
    ratio: bool = False
    """A decimal64 fraction 0..1 (a range of 0..1, or a typedef named fraction or fidelity):
    Prometheus names it ``_ratio``."""


def _typedef_chain(leaf_type: libyang.Type, max_depth: int = 16) -> list[tuple[str, str]]:
    """(module, typedef name) for the leaf's type and every typedef it derives from."""
    chain: list[tuple[str, str]] = []
    name = leaf_type.name()
    module = leaf_type.module()
    for _ in range(max_depth):
        if module is None or name == leaf_type.basename() and ":" not in name:
            break
        if ":" in name:
            prefix, local = name.split(":", 1)
            if prefix != module.prefix():
                module = module.get_module_from_prefix(prefix)
                if module is None:
                    break
            name = local
        chain.append((module.name(), name))
        typedef = module.get_typedef(name)
        if typedef is None or typedef.cdata.type.name == ffi.NULL:
            break
        name = ffi.string(typedef.cdata.type.name).decode()
    return chain


@functools.lru_cache(maxsize=4096)
def _lookup(schema: Schema, path: str) -> LeafInfo | None:
    try:
        node = next(schema.ctx.find_path(path), None)
    except libyang.LibyangError:
        return None
    if node is None or node.nodetype() not in (libyang.SNode.LEAF, libyang.SNode.LEAFLIST):
        return None
    leaf_type = node.type()
    base = leaf_type.basename()
    chain = _typedef_chain(leaf_type)
    counter = any(entry in COUNTER_TYPEDEFS for entry in chain)
    units = node.units() if hasattr(node, "units") else None
    ratio = base == "decimal64" and (leaf_type.range() in ("0..1", "0.0..1.0")
                                     or any(name in RATIO_TYPEDEFS for _, name in chain))
    return LeafInfo(path=path, base=base, counter=counter, numeric=base in NUMERIC_BASES, units=units,
                    key=bool(node.nodetype() == libyang.SNode.LEAF and node.is_key()), reference=base == "leafref",
                    ratio=ratio)


def leaf_info(path: str, schema: Schema | None = None) -> LeafInfo | None:
    """Facts about the leaf at schema `path` (``/m:a/b/c``, no predicates); None when the path
    names no leaf of the schema (an unknown module, a container, a typo)."""
    return _lookup(schema or get_schema(), path)
