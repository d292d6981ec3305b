"""key_IDs (ETSI GS QKD 014: UUIDs): new ones for the keys a KME hands out, and reading the ones
an SAE sends back. A request for 16 keys makes and checks 16 of each, so both are done on the
text, without building `uuid.UUID` objects (which cost a KME a tenth of its time)."""

from __future__ import annotations

import os
import re
import uuid

_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def new_key_ids(number: int) -> list[str]:
    """`number` random UUIDs (version 4) from one read of the system's randomness, exactly as
    `str(uuid.UUID(bytes=raw, version=4))` writes them (version and variant bits set)."""
    raw = os.urandom(16 * number).hex()
    out = []
    for i in range(0, 32 * number, 32):
        h = raw[i:i + 32]
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}")
    return out


def is_uuid(text: object) -> bool:
    """Does `uuid.UUID` read `text`? The canonical lower-case form (ours) is matched on the text;
    anything else is left to `uuid.UUID`, so what is accepted does not change."""
    if isinstance(text, str) and _CANONICAL.fullmatch(text):
        return True
    try:
        uuid.UUID(text)  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError):
        return False
    return True
