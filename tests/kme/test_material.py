"""Twin key material and key references, pure: the per-link stream is the same whoever reads it and
however it is cut, differs between links, sessions and worlds; stores hand out every byte of a
stream once; blocks split into keys; the 014 front end has an HTTP status for every error kind."""

from __future__ import annotations

import pytest
from qstrata.agents.devices.base import KeyRef
from qstrata.agents.devices.key_stream import link_secret, stream_bytes
from qstrata.agents.devices.qkd_link import KeyStore
from qstrata.agents.kme import material
from qstrata.agents.kme.errors import KINDS, KmeError
from qstrata.agents.kme014.errors import STATUS, answer


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


def test_every_error_kind_has_an_etsi_status() -> None:
    assert set(STATUS) == set(KINDS)
    assert set(STATUS.values()) <= {400, 401, 503}, "ETSI GS QKD 014 answers 400, 401 or 503"
    status, body = answer(KmeError("not-enough-key", "not enough key", [{"stored_key_count": 3}]))
    assert status == 503 and body == {"message": "not enough key", "details": [{"stored_key_count": 3}]}
    assert answer(KmeError("bad-request", "size 100 is not a multiple of 8"))[1] == {
        "message": "size 100 is not a multiple of 8"}
