"""Leaves -> gNMI values and wire bytes: what a gNMI server writes (the agents' front end and the
collectors' northbound output alike).

Telemetry is the hot path: a sample of 10,000 leaves must not build 10,000 `Update` objects
and serialize them again. Protobuf messages are length-delimited fields, so a
`SubscribeResponse` is assembled from bytes here: each leaf's `Path` is serialized once and
cached (paths repeat every sample), its `TypedValue` is serialized by protobuf, and the
enclosing `Update`, `Notification` and `SubscribeResponse` headers are written by hand
(field numbers of gnmi.proto 0.10.0). The bytes are what the gRPC method sends as is.

Values follow the YANG type (RFC 7951 JSON from the datastore and the devices): integers as
int_val/uint_val, decimal64 as double_val (decimal_val is deprecated since gNMI 0.8),
boolean, binary as bytes_val, leaf-lists as leaflist_val, the rest as string_val. With the
JSON encodings each leaf carries its RFC 7951 JSON in json_val / json_ietf_val.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from gnmi_pb import gnmi_pb2
from qstrata.bindings.leafinfo import leaf_info
from qstrata.bindings.paths import schema_path, xpath_to_gnmi
from qstrata.bindings.schema import Schema
from qstrata.bindings.schema_index import SchemaNode

Json = Any
"""An RFC 7951 JSON value as the datastore and the devices hold it."""

JSON, BYTES, PROTO, ASCII, JSON_IETF = 0, 1, 2, 3, 4
SUPPORTED_ENCODINGS = (JSON, JSON_IETF, PROTO)
ENCODING_NAMES = {v: k for k, v in gnmi_pb2.Encoding.items()}

_INTS = frozenset({"int8", "int16", "int32", "int64"})
_UINTS = frozenset({"uint8", "uint16", "uint32", "uint64"})


def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


class Encoder:
    """Per schema: the YANG base type of each leaf node and the serialized path of each data
    path, both cached (bounded) because telemetry asks for the same ones again and again."""

    MAX_PATHS = 200_000

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._bases: dict[SchemaNode, str] = {}
        self._paths: dict[str, bytes] = {}

    def base(self, path: str, node: SchemaNode) -> str:
        base = self._bases.get(node)
        if base is None:
            info = leaf_info(schema_path(path), self.schema)
            base = self._bases[node] = info.base if info is not None else "string"
        return base

    def path_bytes(self, path: str) -> bytes:
        data = self._paths.get(path)
        if data is None:
            if len(self._paths) >= self.MAX_PATHS:
                self._paths.clear()
            data = self._paths[path] = xpath_to_gnmi(path).SerializeToString()
        return data

    # ---------------------------------------------------------------- values
    def typed_value(self, path: str, node: SchemaNode, value: Json, encoding: int) -> gnmi_pb2.TypedValue:
        if encoding == JSON_IETF:
            return gnmi_pb2.TypedValue(json_ietf_val=_json(value))
        if encoding == JSON:
            return gnmi_pb2.TypedValue(json_val=_json(value))
        base = self.base(path, node)
        if node.kind == "leaf-list" and isinstance(value, list):
            return gnmi_pb2.TypedValue(leaflist_val=gnmi_pb2.ScalarArray(element=[_scalar(base, v) for v in value]))
        return _scalar(base, value)

    def value_bytes(self, path: str, node: SchemaNode, value: Json, encoding: int) -> bytes:
        return self.typed_value(path, node, value, encoding).SerializeToString()

    def update_bytes(self, path: str, node: SchemaNode, value: Json, encoding: int, duplicates: int = 0) -> bytes:
        body = field(1, self.path_bytes(path)) + field(3, self.value_bytes(path, node, value, encoding))
        if duplicates:
            body += b"\x20" + varint(duplicates)
        return field(4, body)


def _json(value: Json) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _scalar(base: str, value: Json) -> gnmi_pb2.TypedValue:
    try:
        if base in _INTS:
            return gnmi_pb2.TypedValue(int_val=int(value))
        if base in _UINTS:
            return gnmi_pb2.TypedValue(uint_val=int(value))
        if base == "decimal64":
            return gnmi_pb2.TypedValue(double_val=float(value))
        if base == "boolean" and isinstance(value, bool):
            return gnmi_pb2.TypedValue(bool_val=value)
        if base == "binary" and isinstance(value, str):
            return gnmi_pb2.TypedValue(bytes_val=base64.b64decode(value))
        if base == "empty":
            return gnmi_pb2.TypedValue(json_ietf_val=b"[null]")
    except (TypeError, ValueError):
        pass
    if isinstance(value, bool):
        return gnmi_pb2.TypedValue(bool_val=value)
    if isinstance(value, int):
        return gnmi_pb2.TypedValue(int_val=value) if value < 0 else gnmi_pb2.TypedValue(uint_val=value)
    if isinstance(value, float):
        return gnmi_pb2.TypedValue(double_val=value)
    if value == [None]:
        return gnmi_pb2.TypedValue(json_ietf_val=b"[null]")
    return gnmi_pb2.TypedValue(string_val=str(value))


def notification_bytes(timestamp: int, prefix: bytes, updates: Iterable[bytes], deletes: Iterable[bytes] = ()) -> bytes:
    """A `Notification`; `updates` are `update_bytes` results (field 4 already framed),
    `deletes` serialized `Path`s, `prefix` a serialized `Path` (b"" for none)."""
    head = b"\x08" + varint(timestamp)
    if prefix:
        head += field(2, prefix)
    return head + b"".join(updates) + b"".join(field(5, d) for d in deletes)


def response_bytes(notification: bytes) -> bytes:
    """A `SubscribeResponse` carrying one notification."""
    return field(1, notification)


def sample_response(timestamp: int, prefix: bytes, updates: bytes) -> bytes:
    """`response_bytes(notification_bytes(...))` for already joined updates, copying them once
    (a sample of 10,000 leaves is a megabyte)."""
    head = b"\x08" + varint(timestamp) + (field(2, prefix) if prefix else b"")
    return b"".join((b"\x0a", varint(len(head) + len(updates)), head, updates))


SYNC_RESPONSE = gnmi_pb2.SubscribeResponse(sync_response=True).SerializeToString()
