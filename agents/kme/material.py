"""Key references and key bits. Pure.

A KME never keeps key bits: a block of `number` keys is one `KeyRef` into a link's key stream,
split here into one reference per key; a relayed key crosses each hop as the XOR of the key
with that hop's own key (a one-time pad), so every hop consumes key. References and ciphertexts
travel between KMEs and into the journal as JSON.
"""

from __future__ import annotations

from typing import Any

from qstrata.agents.devices.base import KeyRef

KME_URN = "urn:qkd:kme:"


def kme_urn(kme_id: str) -> str:
    """The URN the forwarding table matches to reach KME `kme_id` (qstrata-ss `kme-id`)."""
    return KME_URN + kme_id.lower()


def split(block: KeyRef, size_bits: int) -> list[KeyRef]:
    """The keys of `size_bits` each in a block, in order."""
    size = size_bits // 8
    if size <= 0 or block.nbytes % size:
        raise ValueError(f"a block of {block.nbytes} bytes does not hold whole keys of {size_bits} bits")
    return [KeyRef(block.qkdl_id, block.epoch, block.offset + i * size, size) for i in range(block.nbytes // size)]


def cut(bits: bytes, step: int) -> list[bytes]:
    """Consecutive keys of `step` bytes each."""
    return [bits[i:i + step] for i in range(0, len(bits), step)]


def xor(a: bytes, b: bytes) -> bytes:
    if len(a) != len(b):
        raise ValueError(f"one-time pad of {len(b)} bytes for {len(a)} bytes")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def ref_to_json(ref: KeyRef) -> list[Any]:
    return [ref.qkdl_id, ref.epoch, ref.offset, ref.nbytes]


def ref_from_json(raw: Any) -> KeyRef:
    if not (isinstance(raw, list) and len(raw) == 4 and isinstance(raw[0], str) and isinstance(raw[1], str)
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in raw[2:])):
        raise ValueError(f"not a key reference: {str(raw)[:200]}")
    return KeyRef(raw[0], raw[1], raw[2], raw[3])
