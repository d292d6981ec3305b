"""Twin key material and key references, pure: the per-link stream is the same whoever reads it and
however it is cut, differs between links, sessions and worlds; stores hand out every byte of a
stream once; blocks split into keys and keys fetched together are read back in one piece; key_IDs are the
UUIDs `uuid` makes and reads; the 014 front end has an HTTP status for every error kind."""

from __future__ import annotations

import os
import uuid

import pytest
from qstrata.agents.devices.base import KeyRef
from qstrata.agents.devices.key_stream import link_secret, stream_bytes
from qstrata.agents.devices.qkd_link import KeyStore
from qstrata.agents.kme import key_ids, material
from qstrata.agents.kme.errors import KmeError
from qstrata.agents.kme.registry import Block, Owed, spans
from qstrata.agents.kme014.errors import answer


def test_the_stream_is_the_same_however_it_is_cut() -> None:
    secret = link_secret(1, "5b1f0c3e-9a39-4c55-8c0e-2d7f3a6b9e01")
    whole = stream_bytes(secret, "epoch-a", 0, 1000)
    assert len(whole) == 1000
    for offset, size in [(0, 1), (63, 2), (64, 64), (100, 300), (999, 1), (5, 0)]:
        assert stream_bytes(secret, "epoch-a", offset, size) == whole[offset:offset + size]


def test_streams_differ_between_links_sessions_and_worlds_and_not_between_ends() -> None:
    a = stream_bytes(link_secret(1, "link-1"), "e", 0, 32)
    assert a == stream_bytes(link_secret(1, "LINK-1"), "e", 0, 32), "the link id is compared in lower case"
    assert a != stream_bytes(link_secret(1, "link-2"), "e", 0, 32)
    assert a != stream_bytes(link_secret(1, "link-1"), "f", 0, 32)
    assert a != stream_bytes(link_secret(2, "link-1"), "e", 0, 32)


def test_a_store_hands_out_every_byte_once_and_nothing_when_short() -> None:
    store = KeyStore()
    store.add(10_000)
    first = store.take_bytes(32)
    store.take(3.5)  # an application's synthetic draw: fractional bits still move the stream on
    second = store.take_bytes(32)
    assert first == 0 and second is not None and second >= 32 + 1, "no byte of the stream twice"
    before = (store.bits, store.offset_bits, store.consumed_bits)
    assert store.take_bytes(10_000) is None
    assert (store.bits, store.offset_bits, store.consumed_bits) == before, "a short store is left as it was"
    assert store.consumed_bits == 32 * 8 * 2 + 3.5


def test_a_block_splits_into_keys_in_order() -> None:
    block = KeyRef("l", "e", 640, 96)
    assert material.split(block, 256) == [KeyRef("l", "e", 640, 32), KeyRef("l", "e", 672, 32),
                                          KeyRef("l", "e", 704, 32)]
    with pytest.raises(ValueError):
        material.split(block, 512)
    assert material.ref_from_json(material.ref_to_json(block)) == block
    for bad in (["l", "e", -1, 3], ["l", "e", 1], ["l", "e", True, 3], "l/e/1/3"):
        with pytest.raises(ValueError):
            material.ref_from_json(bad)


def test_a_one_time_pad_undoes_itself() -> None:
    key, pad = bytes(range(32)), bytes(range(100, 132))
    assert material.xor(material.xor(key, pad), pad) == key
    with pytest.raises(ValueError):
        material.xor(key, pad[:31])


def test_a_refusal_is_the_standard_error_object() -> None:
    """Every kind's status: tests/datastore/test_error_tables.py."""
    status, body = answer(KmeError("not-enough-key", "not enough key", [{"stored_key_count": 3}]))
    assert status == 503 and body == {"message": "not enough key", "details": [{"stored_key_count": 3}]}
    assert answer(KmeError("bad-request", "size 100 is not a multiple of 8"))[1] == {
        "message": "size 100 is not a multiple of 8"}


def test_new_key_ids_are_what_uuid4_makes_of_the_same_randomness(monkeypatch: pytest.MonkeyPatch) -> None:
    """key_IDs are formatted from the random bytes directly (no UUID objects): the same text,
    version and variant bits as `uuid.UUID(bytes=..., version=4)`, for every value of the bits
    those set."""
    raw = bytes(range(256)) + bytes(255 - i for i in range(256))
    monkeypatch.setattr(os, "urandom", lambda n: raw[:n])
    ids = key_ids.new_key_ids(32)
    assert ids == [str(uuid.UUID(bytes=raw[i:i + 16], version=4)) for i in range(0, 512, 16)]
    monkeypatch.undo()
    fresh = key_ids.new_key_ids(1000)
    assert len(set(fresh)) == 1000 and all(uuid.UUID(k).version == 4 and str(uuid.UUID(k)) == k for k in fresh)


def test_a_key_id_is_a_uuid_exactly_when_uuid_reads_it() -> None:
    for text in ("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
                 "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}", "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
                 "6ba7b8109dad11d180b400c04fd430c8", "6ba7b810-9dad-11d1-80b4-00c04fd430c", "not-a-uuid", "", 7, None,
                 ["6ba7b810-9dad-11d1-80b4-00c04fd430c8"]):
        try:
            uuid.UUID(text)  # type: ignore[arg-type]
            expected = True
        except (ValueError, TypeError, AttributeError):
            expected = False
        assert key_ids.is_uuid(text) is expected, text


def test_keys_fetched_together_are_read_in_one_piece_per_run() -> None:
    """dec_keys reads the keys of one block that lie one after the other with one read of the
    device, the relayed ciphertext cut to match; a gap or another block starts a new read."""
    one = Block("m", ("s",), KeyRef("l", "e", 640, 128), 32, None, 4e9)
    two = Block("m", ("s",), KeyRef("l", "f", 0, 64), 32, bytes(range(64)), 4e9)
    keys = [Owed(one, 0, frozenset("s")), Owed(one, 1, frozenset("s")), Owed(one, 3, frozenset("s")),
            Owed(two, 0, frozenset("s")), Owed(two, 1, frozenset("s"))]
    assert spans(keys) == [(KeyRef("l", "e", 640, 64), None, 32), (KeyRef("l", "e", 736, 32), None, 32),
                           (KeyRef("l", "f", 0, 64), bytes(range(64)), 32)]
    assert [k.ref for k in keys] == [KeyRef("l", "e", 640, 32), KeyRef("l", "e", 672, 32),
                                     KeyRef("l", "e", 736, 32), KeyRef("l", "f", 0, 32), KeyRef("l", "f", 32, 32)]
    assert keys[4].cipher == bytes(range(32, 64)) and keys[0].cipher is None
    assert material.cut(bytes(range(96)), 32) == [bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96))]
