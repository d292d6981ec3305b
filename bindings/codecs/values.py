"""YANG built-in type values <-> Python values, losslessly.

Canonical strings (what libyang stores and XML carries) are the pivot: uint64 and decimal64 must
not pass through a float, so integers become `int`, decimal64 becomes `decimal.Decimal`, binary
becomes `bytes`, empty becomes `None`, and everything else stays a string.
"""

from __future__ import annotations

import base64
import functools
from decimal import Decimal
from typing import Any

from _libyang import ffi, lib

INT_TYPES = {lib.LY_TYPE_INT8, lib.LY_TYPE_INT16, lib.LY_TYPE_INT32, lib.LY_TYPE_INT64}
UINT_TYPES = {lib.LY_TYPE_UINT8, lib.LY_TYPE_UINT16, lib.LY_TYPE_UINT32, lib.LY_TYPE_UINT64}
JSON_NUMBER_TYPES = {lib.LY_TYPE_INT8, lib.LY_TYPE_INT16, lib.LY_TYPE_INT32, lib.LY_TYPE_UINT8, lib.LY_TYPE_UINT16,
                     lib.LY_TYPE_UINT32}
"""Types RFC 7951 s6.1 writes as JSON numbers (64-bit integers and decimal64 are strings)."""


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


def json_value(leaf: Any, text: str) -> Any:
    """`text`, a value of the schema leaf `leaf` (a libyang ``SLeaf``) written as a string (a key
    in an RFC 8040 s3.5.3 URI, XML text), as RFC 7951 s6 has it in JSON: int8..int32 and
    uint8..uint32 numbers, boolean true/false, empty ``[null]``, everything else (64-bit
    integers, decimal64, enumerations, identities...) the string. A union takes the member type
    libyang finds for the text, as when it reads XML. A value its type refuses stays the
    string, for the parser to refuse with its own words."""
    realtype = ffi.new("const struct lysc_type **")
    raw = text.encode()
    ctx = leaf.context.cdata
    if lib.lyd_value_validate(ctx, leaf.cdata, raw, len(raw), ffi.NULL, realtype, ffi.NULL) not in (
            lib.LY_SUCCESS, lib.LY_EINCOMPLETE):
        lib.ly_err_clean(ctx, ffi.NULL)  # the parser reports it, alone
        return text
    kind = realtype[0]
    while kind.basetype == lib.LY_TYPE_LEAFREF:
        kind = ffi.cast("struct lysc_type_leafref *", kind).realtype
    if kind.basetype in JSON_NUMBER_TYPES:
        return int(text)
    if kind.basetype == lib.LY_TYPE_BOOL:
        return text == "true"
    if kind.basetype == lib.LY_TYPE_EMPTY:
        return [None]
    return text


def key_json_value(schema: Any, key_path: str, text: str) -> Any:
    """A list key given as text (a RESTCONF URI's ``port=13``, a gNMI path's ``[port-id=13]``)
    as RFC 7951 writes it in the entry a front end builds around a JSON value: the schema leaf
    at `key_path` (a schema path, modules named where they change) decides (`json_value`)."""
    leaf = _schema_leaf(schema, key_path)
    return text if leaf is None else json_value(leaf, text)


@functools.lru_cache(maxsize=1024)
def _schema_leaf(schema: Any, path: str) -> Any:
    return next(schema.ctx.find_path(path), None)
