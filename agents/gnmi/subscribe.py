"""One Subscribe call: STREAM (SAMPLE, ON_CHANGE, TARGET_DEFINED), ONCE and POLL.

Points of the specification (3.5) that implementations often get wrong, kept here:
- sync_response follows the initial updates of *all* paths, and every poll; with
  updates_only it comes first, with no initial updates;
- SAMPLE with suppress_redundant sends a leaf only when it changed, and heartbeat_interval
  forces it out again; ON_CHANGE sends explicit deletes, and a leaf that returns to its default
  is an update (the view includes defaults);
- TARGET_DEFINED is on-change for configuration, status and other non-numeric leaves, and
  sampling (every `TARGET_DEFINED_SAMPLE_S`) for rates and counters;
- a path that matches nothing yet keeps the subscription open.

On-change takes what the core hands it (`Datastore.watch_operational`: leaf paths with their new
values, and the nodes that went) and filters it by pattern, TARGET_DEFINED's split and NACM; it
re-reads nothing. A list entry that disappears is a delete in every mode (SAMPLE and POLL
compare with what they sent last).

Memory stays bounded whatever the subscriber does: nothing is queued per subscriber except the
latest value of each leaf that changed since the last send (bounded by the data, not by time)
and the last value sent per leaf. A subscriber that stops reading blocks its own writes (HTTP/2 flow
control); changes meanwhile coalesce to the latest value, and how many were folded into an
update is reported in `Update.duplicates`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from gnmi_pb import gnmi_pb2
from qstrata.agents.datastore.operational import Operational, OperationalChange
from qstrata.bindings.jsontree import at, vanished
from qstrata.bindings.paths import prefixes, split_data_path
from qstrata.bindings.schema_index import SchemaNode
from qstrata.bindings.wire.gnmi_encoding import (
    SUPPORTED_ENCODINGS,
    SYNC_RESPONSE,
    notification_bytes,
    response_bytes,
    sample_response,
)

from .auth import Principal
from .errors import GnmiError, invalid
from .requests import Elem, Pattern, resolve
from .target import ALL, GnmiTarget
from .view import Leaf, leaves, select

log = logging.getLogger("qstrata.gnmi")

STREAM, ONCE, POLL = 0, 1, 2
TARGET_DEFINED, ON_CHANGE, SAMPLE = 0, 1, 2
MIN_INTERVAL_NS = 1_000_000
"""The shortest sample or heartbeat interval served (1 ms); 0 samples as fast as the subscriber
reads (specification 3.5.1.5.2: the lowest interval the target supports)."""
TARGET_DEFINED_SAMPLE_S = 1.0
MAX_NOTIFICATION_BYTES = 3 << 20
"""Updates are split over notifications of at most about this size: below the 4 MiB that gRPC
clients accept by default (pygnmi, gnmic), with room for the last update and the framing; one
notification per sample up to ~20,000 leaves (each response has a fixed cost on both sides)."""
MAX_PENDING_PATHS = 50_000
"""Beyond this many distinct changed paths between two sends, resynchronise everything instead."""
SUPPRESSED_MIN_INTERVAL_S = 0.01
"""A suppress_redundant sample at interval 0 looks for changes this often (nothing is sent
between changes, so "as fast as the subscriber reads" would only spin)."""

NUMERIC = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "decimal64"})


@dataclass(eq=False)
class _Sub:
    pattern: Pattern
    on_change: bool
    interval_ns: int = 0
    suppress: bool = False
    heartbeat_ns: int = 0
    keep: Callable[[str, SchemaNode], bool] | None = None
    last: dict[str, object] = field(default_factory=dict)
    next_due: float = 0.0
    last_full: float = 0.0
    sampled_from: object = None
    """The data snapshot the last full sample was encoded from (snapshots are shared and never
    modified, so the same object means the same values)."""
    sampled_chunks: list[bytes] = field(default_factory=list)


class SubscribeSession:
    """The server side of one Subscribe stream; `send` writes serialized SubscribeResponses."""

    def __init__(self, target: GnmiTarget, principal: Principal, send: Callable[[bytes], Awaitable[None]],
                 *, target_name: str = "") -> None:
        self.target = target
        self.principal = principal
        self.send = send
        self.prefix = gnmi_pb2.Path(target=target_name).SerializeToString() if target_name else b""
        self.subs: list[_Sub] = []
        self.encoding = 0
        self._pending = OperationalChange()
        """The core's changes not sent yet, folded (the latest value of each leaf)."""
        self._resync = False
        self._wake = asyncio.Event()
        self._polls = 0
        self._unwatch: Callable[[], None] | None = None
        self.sent_updates = 0

    # ---------------------------------------------------------------- request
    def configure(self, request: gnmi_pb2.SubscriptionList) -> int:
        """Check the SubscriptionList; returns its mode. Raises INVALID_ARGUMENT / UNIMPLEMENTED."""
        if request.encoding not in gnmi_pb2.Encoding.values():
            raise invalid(f"unknown encoding {request.encoding}")
        if request.encoding not in SUPPORTED_ENCODINGS:
            raise GnmiError(grpc.StatusCode.UNIMPLEMENTED, f"encoding {gnmi_pb2.Encoding.Name(request.encoding)} is not "
                            "supported: use JSON, JSON_IETF or PROTO")
        if request.mode not in (STREAM, ONCE, POLL):
            raise invalid(f"unknown subscription list mode {request.mode}")
        if not request.subscription:
            raise invalid("the SubscriptionList has no subscription")
        self.encoding = request.encoding
        self.updates_only = request.updates_only
        prefix = request.prefix if request.HasField("prefix") else None
        for sub in request.subscription:
            pattern = resolve(self.target.index, prefix, sub.path)
            if request.mode != STREAM:
                self.subs.append(_Sub(pattern, on_change=False))
                continue
            for ns, what in ((sub.sample_interval, "sample_interval"), (sub.heartbeat_interval, "heartbeat_interval")):
                if 0 < ns < MIN_INTERVAL_NS:
                    raise invalid(f"{what} {ns} ns is not supported: the shortest is {MIN_INTERVAL_NS} ns (1 ms)")
            if sub.mode == SAMPLE:
                self.subs.append(_Sub(pattern, False, sub.sample_interval, sub.suppress_redundant,
                                      sub.heartbeat_interval))
            elif sub.mode == ON_CHANGE:
                self.subs.append(_Sub(pattern, True, heartbeat_ns=sub.heartbeat_interval))
            elif sub.mode == TARGET_DEFINED:
                self.subs.append(_Sub(pattern, True, heartbeat_ns=sub.heartbeat_interval,
                                      keep=lambda p, n: not self._sampled(p, n)))
                self.subs.append(_Sub(pattern, False, int(TARGET_DEFINED_SAMPLE_S * 1e9), keep=self._sampled))
            else:
                raise invalid(f"unknown subscription mode {sub.mode}")
        return request.mode

    def _sampled(self, path: str, node: SchemaNode) -> bool:
        """TARGET_DEFINED: numeric state leaves (rates, counters, powers) are sampled."""
        return not node.config and self.target.encoder.base(path, node) in NUMERIC

    # ---------------------------------------------------------------- run
    async def run(self, mode: int, more_requests: AsyncIterator[gnmi_pb2.SubscribeRequest]) -> None:
        reader = asyncio.ensure_future(self._read(mode, more_requests))
        try:
            # updates_only: the current state is not sent, only the sync (specification 3.5.2.3)
            if mode == ONCE:
                if not self.updates_only:
                    await self._send_full(self.subs)
                await self.send(SYNC_RESPONSE)
                return
            if mode == POLL:
                if not self.updates_only:
                    await self._send_full(self.subs)
                await self.send(SYNC_RESPONSE)
                await self._serve_polls(reader)
                return
            await self._stream(reader)
        finally:
            reader.cancel()
            if self._unwatch is not None:
                self._unwatch()

    async def _read(self, mode: int, requests: AsyncIterator[gnmi_pb2.SubscribeRequest]) -> None:
        """Later requests: a Poll (POLL mode), anything else is an error that ends the stream."""
        async for request in requests:
            kind = request.WhichOneof("request")
            if kind == "poll" and mode == POLL:
                self._polls += 1
                self._wake.set()
            elif kind == "subscribe":
                raise invalid("a Subscribe stream takes one SubscriptionList; open another stream for more")
            else:
                raise invalid("Poll is only valid on a subscription of mode POLL")

    async def _serve_polls(self, reader: asyncio.Future) -> None:
        while True:
            await self._wait(reader, None)
            while self._polls:
                self._polls -= 1
                await self._send_full(self.subs)
                await self.send(SYNC_RESPONSE)
            if reader.done():
                return  # the client half-closed: no more polls can come

    async def _wait(self, reader: asyncio.Future, timeout: float | None) -> None:
        """Sleep until woken or `timeout`. A request error ends the stream; a client that
        half-closes its side just stops being read (a STREAM goes on)."""
        waiter = asyncio.ensure_future(self._wake.wait())
        watched = {waiter} if reader.done() else {waiter, reader}
        try:
            await asyncio.wait(watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        self._wake.clear()
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            raise reader.exception()

    async def _stream(self, reader: asyncio.Future) -> None:
        if any(s.on_change for s in self.subs):
            self._unwatch = self.target.watch(self._on_change)
        now = time.monotonic()
        if self.updates_only:
            snapshot = self._snapshot()
            for sub in self.subs:
                sub.last = {p: v for p, _, v in self._leaves(sub, snapshot.data)}
        else:
            await self._send_full(self.subs)
        await self.send(SYNC_RESPONSE)
        for sub in self.subs:
            sub.next_due = now + sub.interval_ns / 1e9
            sub.last_full = now
        samples = [s for s in self.subs if not s.on_change]
        changes = [s for s in self.subs if s.on_change]
        while True:
            now = time.monotonic()
            due = [s for s in samples if s.next_due <= now]
            beats = [s for s in changes if s.heartbeat_ns and s.last_full + s.heartbeat_ns / 1e9 <= now]
            pending = bool(self._pending.updates or self._pending.deletes or self._resync)
            if due or beats or pending:
                snapshot = self._snapshot() if due or beats or self._resync else None
                # changes alone read nothing: the core handed over their values
                stamp = snapshot.time_ns if snapshot is not None else self._pending.time_ns
                for sub in due:
                    await self._send_sample(sub, snapshot, stamp, now)
                    if sub.interval_ns:
                        sub.next_due = max(sub.next_due + sub.interval_ns / 1e9, now)
                    else:  # as fast as the subscriber reads; suppressed: looks for changes every 10 ms
                        sub.next_due = now + SUPPRESSED_MIN_INTERVAL_S if sub.suppress else now
                if pending:
                    await self._send_changes(changes, snapshot, stamp)
                for sub in beats:
                    await self._send_leaves(sub, list(self._leaves(sub, snapshot.data)), stamp)
                    sub.last_full = now
                await asyncio.sleep(0)
                continue
            deadlines = [s.next_due for s in samples] + [s.last_full + s.heartbeat_ns / 1e9 for s in changes
                                                         if s.heartbeat_ns]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            await self._wait(reader, timeout)

    # ---------------------------------------------------------------- changes
    def _on_change(self, change: OperationalChange) -> None:
        """Fold the core's change into what waits to be sent (latest value per leaf)."""
        self._pending.fold(change)
        if len(self._pending) > MAX_PENDING_PATHS:
            self._pending = OperationalChange(change.time_ns)
            self._resync = True
        self._wake.set()

    async def _send_changes(self, subs: list[_Sub], snapshot: Operational | None, stamp: int) -> None:
        pending, resync = self._pending, self._resync
        self._pending, self._resync = OperationalChange(pending.time_ns), False
        pending.settle()
        updates, deletes, counts = pending.updates, pending.deletes, pending.counts
        if resync:
            assert snapshot is not None
            for sub in subs:
                current = list(self._leaves(sub, snapshot.data))
                gone = self._gone(sub, current)
                changed = [(p, n, v) for p, n, v in current if sub.last.get(p, _MISSING) != v]
                if changed or gone:
                    await self._emit(sub, changed, gone, stamp)
            return
        split = {p: split_data_path(p) for p in (*updates, *deletes)}
        visible = None if self.principal is None or self.target.unrestricted(self.principal) \
            else self.target.read(ALL, self.principal).data
        for sub in subs:
            elems, keep = sub.pattern.elems, sub.keep
            changed = [(p, n, v) for p, (n, v) in updates.items()
                       if _match(elems, split[p]) and (keep is None or keep(p, n))
                       and (visible is None or at(self.target.index, visible, p) is not None)]
            gone: list[str] = []
            sent_below: dict[str, list[str]] = {}  # what this subscription sent under each delete
            if deletes:
                for p in sub.last:
                    for prefix in prefixes(p):
                        if prefix in deletes:
                            sent_below.setdefault(prefix, []).append(p)
                            break
            for path in deletes:
                below = sent_below.get(path, [])
                if _match(elems, split[path]):
                    if below or visible is None:
                        gone.append(path)
                elif _match(elems, split[path], above=True):
                    gone += vanished(below, set(), _depth(elems))
                else:
                    continue
                for p in below:
                    del sub.last[p]
            if changed or gone:
                await self._emit(sub, changed, gone, stamp, counts)

    # ---------------------------------------------------------------- sending
    def _snapshot(self) -> Operational:
        return self.target.read(ALL, self.principal)

    def _gone(self, sub: _Sub, current: list[Leaf]) -> list[str]:
        """Deletes for what `sub` sent before and is no longer there (one per list entry gone);
        forgets it."""
        if not sub.last:
            return []
        now_paths = {p for p, _, _ in current}
        gone = [p for p in sub.last if p not in now_paths]
        for p in gone:
            del sub.last[p]
        return vanished(gone, now_paths, _depth(sub.pattern.elems))

    def _leaves(self, sub: _Sub, data: dict):
        keep = sub.keep
        for match in select(self.target.index, data, sub.pattern.elems):
            for leaf in leaves(match):
                if keep is None or keep(leaf[0], leaf[1]):
                    yield leaf

    async def _send_full(self, subs: list[_Sub]) -> None:
        snapshot = self._snapshot()
        for sub in subs:
            current = list(self._leaves(sub, snapshot.data))
            await self._send_leaves(sub, current, snapshot.time_ns, self._gone(sub, current))

    async def _send_leaves(self, sub: _Sub, current: list, stamp: int, deletes: list[str] | None = None) -> None:
        sub.last = {p: v for p, _, v in current}
        if current or deletes:
            await self._emit(sub, current, deletes or [], stamp)

    async def _send_sample(self, sub: _Sub, snapshot: Operational, stamp: int, now: float) -> None:
        """One sample. With suppress_redundant only what changed goes, and the heartbeat sends
        everything again; without it everything goes each time (re-sent as encoded when the
        snapshot is the same one). Leaves that went are deletes."""
        beat = bool(sub.heartbeat_ns) and now - sub.last_full >= sub.heartbeat_ns / 1e9
        data = snapshot.data
        if data is sub.sampled_from:
            # the same snapshot as last time: the same values
            if sub.suppress and not beat:
                return
            if sub.sampled_chunks:
                sub.last_full = now
                for chunk in sub.sampled_chunks:
                    await self.send(sample_response(stamp, self.prefix, chunk))
                self.sent_updates += len(sub.last)
                return
        current = list(self._leaves(sub, data))
        gone = self._gone(sub, current)
        if sub.suppress and not beat:
            changed = [(p, n, v) for p, n, v in current if sub.last.get(p, _MISSING) != v]
            # nothing encoded whole here: a heartbeat on this snapshot encodes it then
            sub.sampled_from, sub.sampled_chunks = data, []
            if changed or gone:
                await self._emit(sub, changed, gone, stamp)
            return
        sub.last_full = now
        sub.last = {p: v for p, _, v in current}
        chunks = self._encode_chunks(current)
        sub.sampled_from, sub.sampled_chunks = data, chunks
        if gone:
            await self._emit(sub, [], gone, stamp)
        for chunk in chunks:
            await self.send(sample_response(stamp, self.prefix, chunk))
        self.sent_updates += len(current)

    def _encode_chunks(self, updates: list, counts: dict[str, int] | None = None) -> list[bytes]:
        """Updates encoded and grouped into notification-sized blocks of bytes; `counts` (changes
        seen per path since the last send) become `Update.duplicates`."""
        encoder = self.target.encoder
        chunks: list[bytes] = []
        chunk: list[bytes] = []
        size = 0
        for path, node, value in updates:
            dup = counts.get(path, 1) - 1 if counts else 0
            data = encoder.update_bytes(path, node, value, self.encoding, dup)
            if chunk and size + len(data) > MAX_NOTIFICATION_BYTES:
                chunks.append(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(data)
            size += len(data)
        if chunk:
            chunks.append(b"".join(chunk))
        return chunks

    async def _emit(self, sub: _Sub, updates: list, deletes: list[str], stamp: int,
                    counts: dict[str, int] | None = None) -> None:
        for path, _, value in updates:
            sub.last[path] = value
        chunks = self._encode_chunks(updates, counts)
        if deletes:
            # deletes ride with the last block of updates (or alone)
            last = chunks.pop() if chunks else b""
            delete_paths = [self.target.encoder.path_bytes(p) for p in deletes]
            for chunk in chunks:
                await self.send(sample_response(stamp, self.prefix, chunk))
            await self.send(response_bytes(notification_bytes(stamp, self.prefix, (last,), delete_paths)))
        else:
            for chunk in chunks:
                await self.send(sample_response(stamp, self.prefix, chunk))
        self.sent_updates += len(updates)


_MISSING = object()


def _depth(elems: tuple[Elem, ...]) -> int:
    """How many elements of a data path the pattern fixes (up to a ``...``)."""
    for i, elem in enumerate(elems):
        if elem.name == "...":
            return i
    return len(elems)


def _match(elems: tuple[Elem, ...], steps: list[tuple[str, dict[str, str]]], *, above: bool = False,
           i: int = 0, j: int = 0, module: str | None = None) -> bool:
    """Is the node at data path `steps` at or below a node the pattern selects? With `above`:
    is it an ancestor of one (a delete there takes what the pattern selected with it)?"""
    if i == len(elems):
        return not above
    if j == len(steps):
        return above
    elem = elems[i]
    name, keys = steps[j]
    prefix, _, local = name.rpartition(":")
    here = prefix or module
    if elem.name == "...":
        return (_match(elems, steps, above=above, i=i + 1, j=j, module=module)
                or _match(elems, steps, above=above, i=i, j=j + 1, module=here))
    if elem.name != "*" and (elem.name != local or elem.module not in (None, here)):
        return False
    if any(keys.get(k) != v for k, v in elem.keys):
        return False
    return _match(elems, steps, above=above, i=i + 1, j=j + 1, module=here)
