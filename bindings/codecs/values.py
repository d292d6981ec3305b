"""YANG built-in type values <-> Python values, losslessly.

Canonical strings (what libyang stores and XML carries) are the pivot: uint64 and decimal64 must
not pass through a float, so integers become `int`, decimal64 becomes `decimal.Decimal`, binary
becomes `bytes`, empty becomes `None`, and everything else stays a string.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from _libyang import ffi, lib

INT_TYPES = {lib.LY_TYPE_INT8, lib.LY_TYPE_INT16, lib.LY_TYPE_INT32, lib.LY_TYPE_INT64}
UINT_TYPES = {lib.LY_TYPE_UINT8, lib.LY_TYPE_UINT16, lib.LY_TYPE_UINT32, lib.LY_TYPE_UINT64}


def term_base_type(node_cdata) -> int:
    """The built-in type of a term node's stored value (leafrefs resolved, unions as union)."""
    term = ffi.cast("struct lyd_node_term *", node_cdata)
    return term.value.realtype.basetype


def to_python(base: int, canonical: str | None) -> Any:
    if base in INT_TYPES or base in UINT_TYPES:
        return int(canonical)
    if base == lib.LY_TYPE_BOOL:
        return canonical == "true"
    if base == lib.LY_TYPE_DEC64:
        return Decimal(canonical)
    if base == lib.LY_TYPE_BINARY:
        return base64.b64decode(canonical or "")
    if base == lib.LY_TYPE_EMPTY:
        return None
    return canonical


def to_canonical(value: Any) -> str | None:
    """A Python value as the string libyang takes (it re-canonicalises per the leaf's type)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):  # positional notation: libyang reads neither 1e-07 nor 7.0 as an integer
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value)
