"""The world service's frames and messages, without sockets: length-prefixed JSON objects cut
from any split of the byte stream, refused when oversized or not JSON objects; the outbox that
keeps only the newest waiting snapshot, in place; DeviceDriver's vocabulary to JSON and back."""

from __future__ import annotations

import struct

import pytest
from qstrata.agents.devices.base import DeviceEvent, Inventory
from qstrata.agents.devices.remote import messages as m
from qstrata.agents.devices.remote.framing import FrameDecoder, FramingError, Outbox, encode
from qstrata.bindings.diff import Change

MESSAGES = [{"id": 1, "op": "attach", "node": "alice", "kind": "qkd", "protocol": 1},
            {"push": "state", "state": {"m:top": {"x": [1, 2.5, None, True, "é\n]]>"]}}},
            {"id": 2, "ok": {}}]


def test_frames_round_trip_whatever_the_split():
    stream = b"".join(encode(x) for x in MESSAGES)
    for size in (1, 2, 3, 7, len(stream)):
        decoder, got = FrameDecoder(), []
        for i in range(0, len(stream), size):
            got += decoder.feed(stream[i:i + size])
        assert got == MESSAGES
        assert decoder.pending == 0


def test_a_frame_is_a_length_then_json():
    frame = encode({"a": 1})
    assert frame == struct.pack("!I", 7) + b'{"a":1}'


def test_half_a_frame_waits():
    decoder = FrameDecoder()
    frame = encode(MESSAGES[0])
    assert decoder.feed(frame[:-1]) == []
    assert decoder.pending == len(frame) - 1
    assert decoder.feed(frame[-1:]) == [MESSAGES[0]]


@pytest.mark.parametrize("data, words", [
    (struct.pack("!I", 101) + b"x", "larger than the 100"),
    (struct.pack("!I", 3) + b"[1]", "JSON list, not an object"),
    (struct.pack("!I", 2) + b"\xff\xfe", "not UTF-8 JSON"),
    (struct.pack("!I", 3) + b"{1}", "not UTF-8 JSON"),
])
def test_bad_frames_break_the_stream_for_good(data, words):
    decoder = FrameDecoder(max_frame=100)
    with pytest.raises(FramingError, match=words):
        decoder.feed(data)
    with pytest.raises(FramingError):
        decoder.feed(encode({"fine": True}))


def test_outbox_keeps_order_and_replaces_a_waiting_snapshot_in_place():
    box = Outbox()
    box.put(b"state-1", key="state")
    box.put(b"event-a")
    box.put(b"clock-1", key="clock")
    box.put(b"state-2", key="state")  # takes state-1's place: event-a still follows a state
    box.put(b"clock-2", key="clock")
    assert len(box) == 3
    assert box.take() == b"state-2"
    box.put(b"state-3", key="state")  # state-2 is gone already: this one queues behind
    assert [box.take() for _ in range(4)] == [b"event-a", b"clock-2", b"state-3", None]


def test_driver_vocabulary_round_trips():
    change = Change("modify", "/m:top/leaf", "1", "2")
    assert m.change_from_wire(m.change_to_wire(change)) == change
    assert m.changes_from_wire([m.change_to_wire(change)]) == (change,)
    event = DeviceEvent("notification", {"m:n": {"a": 1}}, ("/m:top/a",), 42)
    assert m.event_from_wire(m.event_to_wire(event)) == event
    inventory = Inventory(("a", "b"), {"m:top": {"id": "x"}})
    assert m.inventory_from_wire(m.inventory_to_wire(inventory)) == inventory
    clock = {"epoch_unix_ns": 1, "now_ns": 2, "settled_ns": 2, "settled_wall_ns": 3}
    assert m.clock_of(clock) == clock


@pytest.mark.parametrize("call, raw", [
    (m.change_from_wire, ["replace", "/m:x", None, None]),
    (m.change_from_wire, ["create", 5, None, None]),
    (m.changes_from_wire, {"not": "a list"}),
    (m.event_from_wire, {"kind": "gossip"}),
    (m.inventory_from_wire, {"modules": "abc"}),
    (m.clock_of, {"now_ns": 1}),
])
def test_malformed_messages_are_protocol_errors(call, raw):
    with pytest.raises(m.ProtocolError):
        call(raw)
