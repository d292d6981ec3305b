"""Data trees <-> gNMI updates (`Path` + `TypedValue`).

Every term node (leaf, leaf-list, list keys included so key-only entries survive) becomes one
update. The `TypedValue` field follows the YANG built-in type: int_val/uint_val for integers
(uint64 included), bool_val, decimal_val for decimal64 (digits + precision: lossless, unlike
double_val), bytes_val for binary, leaflist_val for leaf-lists, json_ietf_val ``[null]`` for
empty, string_val for the rest (identityrefs as ``module:identity``, per RFC 7951).
Decoding also accepts double_val, float_val, ascii_val and JSON scalars, as clients send them.
"""

from __future__ import annotations

import json
import struct
from decimal import Decimal

import libyang
from _libyang import lib
from gnmi_pb import gnmi_pb2

from ..paths import gnmi_to_xpath, xpath_to_gnmi
from ..schema import Schema
from ..tree import DataTree, c_str
from .values import INT_TYPES, UINT_TYPES, term_base_type, to_canonical, to_python


class UnsupportedValue(ValueError):
    """A TypedValue that cannot become a YANG value (e.g. proto_bytes, any_val)."""


def typed_value(base: int, canonical: str | None) -> gnmi_pb2.TypedValue:
    value = to_python(base, canonical)
    if base in INT_TYPES:
        return gnmi_pb2.TypedValue(int_val=value)
    if base in UINT_TYPES:
        return gnmi_pb2.TypedValue(uint_val=value)
    if base == lib.LY_TYPE_BOOL:
        return gnmi_pb2.TypedValue(bool_val=value)
    if base == lib.LY_TYPE_DEC64:
        sign, digits, exponent = value.as_tuple()
        unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
        return gnmi_pb2.TypedValue(decimal_val=gnmi_pb2.Decimal64(digits=unscaled, precision=max(0, -exponent)))
    if base == lib.LY_TYPE_BINARY:
        return gnmi_pb2.TypedValue(bytes_val=value)
    if base == lib.LY_TYPE_EMPTY:
        return gnmi_pb2.TypedValue(json_ietf_val=b"[null]")
    return gnmi_pb2.TypedValue(string_val=value or "")


def scalar_from_typed_value(tv: gnmi_pb2.TypedValue) -> str | None:
    """One scalar TypedValue as the string libyang parses."""
    kind = tv.WhichOneof("value")
    if kind in ("string_val", "ascii_val"):
        return getattr(tv, kind)
    if kind in ("int_val", "uint_val"):
        return str(getattr(tv, kind))
    if kind == "bool_val":
        return "true" if tv.bool_val else "false"
    if kind == "decimal_val":
        return format(Decimal(tv.decimal_val.digits).scaleb(-tv.decimal_val.precision), "f")
    if kind == "double_val":
        return to_canonical(tv.double_val)
    if kind == "float_val":
        return to_canonical(_shortest_float32(tv.float_val))
    if kind == "bytes_val":
        return to_canonical(tv.bytes_val)
    if kind in ("json_ietf_val", "json_val"):
        try:
            decoded = json.loads(getattr(tv, kind) or b"null")
        except ValueError as exc:
            raise UnsupportedValue(f"{kind} is not JSON: {exc}") from None
        if decoded == [None] or decoded is None:
            return None
        if isinstance(decoded, dict | list):
            raise UnsupportedValue(f"{kind} must hold a scalar for a leaf")
        return to_canonical(decoded)
    raise UnsupportedValue(f"TypedValue {kind or '(unset)'} is not supported for YANG data")


def _shortest_float32(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (0.1, not 0.10000000149011612)."""
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == struct.pack("<f", value):
            return candidate
    return value


def tree_to_updates(tree: DataTree, *, with_defaults: bool = False) -> list[gnmi_pb2.Update]:
    """One update per leaf (keys included) and per leaf-list, in document order; implicit
    default nodes only when `with_defaults`."""
    updates: list[gnmi_pb2.Update] = []
    for top in tree.top_nodes():
        leaflists: dict[str, gnmi_pb2.Update] = {}
        for node in top.iter_tree():
            if not with_defaults and node.cdata.flags & lib.LYD_DEFAULT:
                continue
            nodetype = node.schema().nodetype()
            if nodetype == libyang.SNode.LEAF:
                base = term_base_type(node.cdata)
                val = typed_value(base, c_str(lib.lyd_get_value(node.cdata)))
                updates.append(gnmi_pb2.Update(path=xpath_to_gnmi(node.path()), val=val))
            elif nodetype == libyang.SNode.LEAFLIST:
                base = term_base_type(node.cdata)
                path = node.path()
                list_path = path[: path.rfind("[")]
                entry = typed_value(base, c_str(lib.lyd_get_value(node.cdata)))
                upd = leaflists.get(list_path)
                if upd is None:
                    upd = leaflists[list_path] = gnmi_pb2.Update(path=xpath_to_gnmi(list_path))
                    updates.append(upd)
                upd.val.leaflist_val.element.append(entry)
    return updates


def updates_to_tree(
    updates: list[gnmi_pb2.Update], prefix: gnmi_pb2.Path | None = None, *, schema: Schema | None = None
) -> DataTree:
    """Build a tree from updates of term nodes (not validated: the caller decides how)."""
    tree = DataTree(schema)
    for upd in updates:
        path = gnmi_to_xpath(upd.path, prefix)
        if upd.val.WhichOneof("value") == "leaflist_val":
            # No value predicate: libyang takes the value as the instance (config leaf-lists
            # stay unique) and state leaf-lists reject [.='v'] predicates (duplicates allowed).
            for element in upd.val.leaflist_val.element:
                tree.set(path, scalar_from_typed_value(element))
        else:
            tree.set(path, scalar_from_typed_value(upd.val))
    return tree
