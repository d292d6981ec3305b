"""gNMI wire <-> collector values, sans-IO: a target's subscriptions as a `SubscribeRequest`, and
serialized `SubscribeResponse`s as lists of `Update`s.

This is the collector's hot path (100,000+ leaf updates/s on one core), so decoding keeps the
per-update Python work to a dictionary lookup and a value read:

* the response is parsed by protobuf's C implementation (upb), once;
* a leaf's data path string is cached per serialized `Path` bytes (per prefix): paths repeat
  every sample, and the agent serializes each one from the same cache (qstrata.bindings.wire.gnmi_encoding),
  so the bytes are identical from sample to sample. The cache is keyed by the bytes' hash, not
  the bytes: at 400 targets x 500 leaves the keys alone were 40 MB. It is one cache for every
  target (`PathCache`, `SHARED_PATHS`): devices of a kind report the same paths (interface
  names, link ids seen from both ends), so each distinct path is one string in the whole
  collector, and there is one table instead of one per target (at 400 x 498 the 200,000 path
  strings, their keys and 400 tables became one table of 498 strings: the benchmark's targets
  all report the same link ids). Python's bytes hash is a 64-bit SipHash with a
  per-process random key, so for a million distinct paths a collision (which would file a
  value under another path) has a probability below 1e-7;
* short string values are interned (`MAX_SHARED_STRING`): one object per distinct value;
* values are read by the name of the TypedValue field set; decimal64 arrives as double_val
  (gNMI >= 0.8; the deprecated decimal_val is still understood); JSON encodings are decoded per
  leaf, and RFC 7951 strings of numeric leaves (int64, uint64, decimal64) become numbers.

Nothing here does I/O or looks at a clock: tests feed bytes and read updates.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from sys import intern
from typing import Any

from gnmi_pb import gnmi_pb2
from qstrata.bindings.leafinfo import leaf_info
from qstrata.bindings.paths import PathSyntaxError, gnmi_to_xpath, schema_path, xpath_to_gnmi

from .config import Subscription
from .model import Update, Value

JSON, BYTES, PROTO, ASCII, JSON_IETF = 0, 1, 2, 3, 4
STREAM = 0
TARGET_DEFINED, ON_CHANGE, SAMPLE = 0, 1, 2
MODES = {"sample": SAMPLE, "on-change": ON_CHANGE, "target-defined": TARGET_DEFINED}
MAX_CACHED_PATHS = 1_000_000
"""Distinct paths kept (all targets together); beyond it the cache is cleared (a target whose
keys never repeat must not grow the collector without bound): paths are parsed again."""

MAX_SHARED_STRING = 64
"""String values up to this length are interned: enumerations, identities and ids (a link's
status, `etsi-qkd-node-types:ACTIVE` x 28,400 in the benchmark) are then one object each, not
one per series (the latest value of every series stays in memory)."""

_SCALARS = frozenset({"string_val", "int_val", "uint_val", "bool_val", "double_val", "float_val", "ascii_val"})
_NUMERIC_BASES = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "decimal64"})


def subscribe_request(target: str, subscriptions: tuple[Subscription, ...], encoding: int = PROTO
                      ) -> gnmi_pb2.SubscribeRequest:
    """A STREAM SubscriptionList for a target's configured subscriptions. `prefix.target` names
    the agent: a gateway serving many agents on one port routes by it, an agent echoes it."""
    subs = []
    for sub in subscriptions:
        mode = MODES[sub.mode]
        interval = int(sub.sample_interval * 1e9) if mode == SAMPLE else 0
        for path in sub.paths:
            subs.append(gnmi_pb2.Subscription(path=xpath_to_gnmi(path), mode=mode, sample_interval=interval))
    return gnmi_pb2.SubscribeRequest(subscribe=gnmi_pb2.SubscriptionList(
        prefix=gnmi_pb2.Path(target=target), subscription=subs, mode=STREAM, encoding=encoding))


@dataclass(slots=True)
class Decoded:
    """What one SubscribeResponse carried."""

    updates: list[Update] = field(default_factory=list)
    sync: bool = False
    duplicates: int = 0
    """Sum of Update.duplicates: values the agent coalesced into the ones sent."""
    timestamp_ns: int = 0
    skipped: int = 0
    """Updates whose value the collector cannot represent (any_val, proto_bytes)."""
    error: str = ""
    """The deprecated SubscribeResponse.error, if a target still sends it."""


class PathCache:
    """Data path strings by the hash of their serialized `Path` (prefix included)."""

    __slots__ = ("paths", "max_entries")

    def __init__(self, max_entries: int = MAX_CACHED_PATHS) -> None:
        self.paths: dict[int, str] = {}
        self.max_entries = max_entries

    def __len__(self) -> int:
        return len(self.paths)


SHARED_PATHS = PathCache()
"""The collector's one path cache: every `ResponseDecoder` uses it unless given another."""


class ResponseDecoder:
    """Decodes one target's SubscribeResponses (use one per target: `target` names the updates)."""

    def __init__(self, target: str, paths: PathCache | None = None) -> None:
        self.target = target
        self._cache = SHARED_PATHS if paths is None else paths
        self._numeric: dict[str, bool] = {}

    def decode(self, data: bytes) -> Decoded:
        """A serialized SubscribeResponse -> updates (deletes as value None). Raises ValueError
        for bytes that are not a SubscribeResponse."""
        try:
            response = gnmi_pb2.SubscribeResponse.FromString(data)
        except Exception as exc:  # protobuf's DecodeError is not exported consistently
            raise ValueError(f"not a SubscribeResponse: {exc}") from None
        kind = response.WhichOneof("response")
        if kind == "sync_response":
            return Decoded(sync=response.sync_response)
        if kind == "error":
            return Decoded(error=response.error.message or f"error code {response.error.code}")
        if kind != "update":
            return Decoded()
        return self.notification(response.update)

    def notification(self, n: gnmi_pb2.Notification) -> Decoded:
        out = Decoded(timestamp_ns=n.timestamp)
        updates = out.updates
        target, ts = self.target, n.timestamp
        cache = self._cache.paths
        if len(cache) > self._cache.max_entries:
            cache.clear()
        base = b""
        prefix = None
        if n.HasField("prefix") and (n.prefix.elem or n.prefix.origin):
            prefix = gnmi_pb2.Path(elem=n.prefix.elem, origin=n.prefix.origin)
            base = prefix.SerializeToString() + b"\xff"  # not a valid start of a Path: no collisions
        dups = 0
        for u in n.update:
            key = hash(base + u.path.SerializeToString() if base else u.path.SerializeToString())
            path = cache.get(key)
            if path is None:
                path = cache[key] = self._path(u.path, prefix)
            val = u.val
            kind = val.WhichOneof("value")
            if kind in _SCALARS:
                value = getattr(val, kind)
            else:
                value = self._other(path, val, kind)
                if value is _SKIP:
                    out.skipped += 1
                    continue
            if value.__class__ is str and len(value) <= MAX_SHARED_STRING:
                value = intern(value)
            if u.duplicates:
                dups += u.duplicates
            updates.append(Update(target, path, value, ts))
        for d in n.delete:
            key = hash(base + d.SerializeToString())
            path = cache.get(key)
            if path is None:
                path = cache[key] = self._path(d, prefix)
            updates.append(Update(target, path, None, ts))
        out.duplicates = dups
        return out

    # ------------------------------------------------------------------ slow paths
    @staticmethod
    def _path(path: gnmi_pb2.Path, prefix: gnmi_pb2.Path | None) -> str:
        return gnmi_to_xpath(path, prefix)

    def _other(self, path: str, val: gnmi_pb2.TypedValue, kind: str | None) -> Any:
        if kind == "decimal_val":
            return val.decimal_val.digits / 10 ** val.decimal_val.precision
        if kind in ("json_ietf_val", "json_val"):
            try:
                value = json.loads(getattr(val, kind))
            except ValueError:
                return getattr(val, kind).decode("utf-8", "replace")
            return self._json(path, value)
        if kind == "leaflist_val":
            return json.dumps([getattr(e, e.WhichOneof("value") or "string_val") for e in val.leaflist_val.element],
                              separators=(",", ":"), default=str)
        if kind == "bytes_val":
            return base64.b64encode(val.bytes_val).decode()
        return _SKIP

    def _json(self, path: str, value: Any) -> Value | object:
        if value == [None]:
            return True  # RFC 7951 'empty': the leaf exists
        if isinstance(value, str) and self._is_numeric(path):
            try:
                return int(value)
            except ValueError:
                try:
                    return float(value)
                except ValueError:
                    return value
        if isinstance(value, (str, int, float, bool)):
            return value
        if value is None:
            return _SKIP
        return json.dumps(value, separators=(",", ":"))  # a leaf-list or a subtree: kept as text

    def _is_numeric(self, path: str) -> bool:
        numeric = self._numeric.get(path)
        if numeric is None:
            try:
                info = leaf_info(schema_path(path))
            except (PathSyntaxError, ValueError):
                info = None
            numeric = self._numeric[path] = info is not None and info.base in _NUMERIC_BASES
        return numeric


_SKIP = object()
