"""Twin key material: a pseudo-random stream per link session, the same at both ends. Pure.

A QKD link's two ends distil identical key; a twin has no photons, so both ends compute the same
bits from a secret per link that both share:

    secret(qkdl_id)       = BLAKE2b(key = "qstrata twin key/<world seed>", data = qkdl_id), 32 bytes
    block j of epoch E    = BLAKE2b(key = secret, data = E || j (8 bytes, big-endian)), 64 bytes
    bits(E, offset, n)    = (block 0 || block 1 || ...)[offset : offset + n]

`epoch` is the random nonce of one key session of the link (`qkd_link.KeyStore.epoch`), `offset`
a byte position that only grows within it, so no two takers ever get the same bits. Anyone who
knows the topology's seed and a link id can compute every key of that link: twin keys are for
testing applications, not for secrecy.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

BLOCK = 64
_PERSON = b"qstrata twin key/"


def link_secret(seed: int | str, qkdl_id: str) -> bytes:
    """The secret both ends of link `qkdl_id` share in a world of seed `seed`."""
    return hashlib.blake2b(qkdl_id.lower().encode(), key=_PERSON + str(seed).encode(), digest_size=32).digest()


def stream_bytes(secret: bytes, epoch: str, offset: int, nbytes: int) -> bytes:
    """`nbytes` bytes of the stream of `epoch` from byte `offset`."""
    if offset < 0 or nbytes < 0:
        raise ValueError("offset and size are not negative")
    if nbytes == 0:
        return b""
    first, last = offset // BLOCK, (offset + nbytes - 1) // BLOCK
    prefix = epoch.encode()
    keyed = _keyed(secret)
    out = []
    for j in range(first, last + 1):
        block = keyed.copy()
        block.update(prefix + j.to_bytes(8, "big"))
        out.append(block.digest())
    blocks = b"".join(out)
    start = offset - first * BLOCK
    return blocks[start:start + nbytes]


@functools.lru_cache(maxsize=1024)
def _keyed(secret: bytes) -> Any:
    """BLAKE2b keyed with `secret`, before any data: each block copies it instead of keying a new
    hash (keying is a compression of its own: a third of the cost of a block)."""
    return hashlib.blake2b(key=secret, digest_size=BLOCK)
