"""key_ID records and their journal: what this KME owes, so no key_ID is ever handed out twice, no
key_ID ever names two different keys, and a key given to a master is still there for its slaves
after a crash.

Records (one journal line each, written before anything is handed out or acknowledged):

    reserved   {t:"r", ids, m, s, size, ref}      master's KME: key taken for these key_IDs (before
                                                  the relay starts); never handed out unless confirmed
    confirmed  {t:"c", ids}                       master's KME: the slaves' KME holds them; the
                                                  master gets them now (the KME keeps nothing more)
    assigned   {t:"a", ids, m, s, size, ref, x, exp}  slaves' KME: keys for slaves `s` of master `m`:
                                                  block reference `ref` on the last hop, `x` the
                                                  relayed ciphertext (hex, null on a direct link),
                                                  erased at `exp` (Unix seconds) if never fetched
    delivered  {t:"d", ids, s}                    slaves' KME: slave `s` fetched them
    expired    {t:"e", ids}                       slaves' KME: erased unfetched

A key_ID is a fresh UUID4 with one block reference for its lifetime: the bits under it cannot
change. After a restart reservations that were never confirmed are discarded (the master never
got them: their key is lost, never re-used), assignments stay until every slave fetched them or
they expire. The journal is compacted to the live assignments when it outgrows them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any, NamedTuple

from qstrata.agents.devices.base import KeyRef

from . import material
from .journal import Journal, json_strings, json_text

log = logging.getLogger("qstrata.kme")

COMPACT_MIN_BYTES = 4 * 1024 * 1024
"""Compact once the journal holds at least this much and four times what is live."""


@dataclass(slots=True)
class Block:
    """The keys of one assignment (one relay): they share everything but their place in the block."""

    master: str
    slaves: tuple[str, ...]
    ref: KeyRef
    """The whole block on the last hop's link; key `i` is bytes `i*step ..` of it."""
    step: int
    """Bytes per key."""
    cipher: bytes | None
    """The relayed ciphertext of the whole block (None: a direct link, the bits are the key)."""
    expires: float


class Owed(NamedTuple):
    """One key this KME holds for slave SAEs until they fetch it: key `index` of a `Block`, and
    the slaves still to fetch it (a block's keys share one `Block` and, until a first slave
    fetches them, one frozen set of slaves: holding a key costs one small tuple, made in C)."""

    block: Block
    index: int
    pending: frozenset[str]

    @property
    def master(self) -> str:
        return self.block.master

    @property
    def slaves(self) -> tuple[str, ...]:
        return self.block.slaves

    @property
    def expires(self) -> float:
        return self.block.expires

    @property
    def ref(self) -> KeyRef:
        block = self.block
        return KeyRef(block.ref.qkdl_id, block.ref.epoch, block.ref.offset + self.index * block.step, block.step)

    @property
    def cipher(self) -> bytes | None:
        cipher, step = self.block.cipher, self.block.step
        return cipher[self.index * step:(self.index + 1) * step] if cipher else None


_owed = partial(tuple.__new__, Owed)
"""`Owed` from a (block, index, pending) tuple, without the Python-level `__new__`."""


def spans(owed: list[Owed]) -> list[tuple[KeyRef, bytes | None, int]]:
    """The keys `owed` as few reads as possible: (reference, ciphertext or None, bytes per key) for
    each run of keys that lie one after the other in one block, in order. A block's keys are
    usually fetched together, so this is one read of the device instead of one per key."""
    out: list[tuple[KeyRef, bytes | None, int]] = []
    i = 0
    while i < len(owed):
        block, first = owed[i].block, owed[i].index
        j = i + 1
        while j < len(owed) and owed[j].block is block and owed[j].index == first + (j - i):
            j += 1
        step, count = block.step, j - i
        ref = KeyRef(block.ref.qkdl_id, block.ref.epoch, block.ref.offset + first * step, count * step)
        cipher = block.cipher[first * step:(first + count) * step] if block.cipher else None
        out.append((ref, cipher, step))
        i = j
    return out


def _record(kind: str, ids: list[str], **fields: Any) -> str:
    """The journal record ``{"t": kind, "ids": ids, **fields}`` as JSON text."""
    head = f'{{"t":"{kind}","ids":{json_strings(ids)}'
    return f"{head},{json_text(fields)[1:]}" if fields else head + "}"


def _keys_record(kind: str, ids: list[str], master: str, slaves: list[str], size: int, ref: KeyRef,
                 tail: str = "") -> str:
    """A reservation's or an assignment's record (two per relayed request), written directly: the
    text `_record` writes for the same fields (``m, s, size, ref``, then `tail`), at a third of
    its cost."""
    q = encode_basestring_ascii
    return (f'{{"t":"{kind}","ids":{json_strings(ids)},"m":{q(master)},"s":{json_strings(slaves)},"size":{size},'
            f'"ref":[{q(ref.qkdl_id)},{q(ref.epoch)},{ref.offset},{ref.nbytes}]{tail}}}')


def _retrieved(future: asyncio.Future[None]) -> None:
    """A reservation nobody awaited any more (the relay failed first): its write error, if any, is
    the journal's to log, not the event loop's."""
    if not future.cancelled():
        future.exception()


class Registry:
    def __init__(self, path: Path) -> None:
        self.journal = Journal(path)
        self.owed: dict[str, Owed] = {}
        self.lost_reservations = 0
        """Key_IDs reserved before the last restart and never confirmed."""
        self._live_bytes = 0

    def load(self) -> None:
        reserved: dict[str, None] = {}
        for record in self.journal.load():
            try:
                self._replay(record, reserved)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("KME journal %s: a record it cannot read (%s): %s", self.journal.path, exc,
                          str(record)[:200])
        self.lost_reservations = len(reserved)
        if reserved:
            log.warning("KME: %d key_IDs were reserved but never confirmed before the restart: their key is "
                        "lost, never handed out", len(reserved))
        self._live_bytes = 0

    def _replay(self, record: dict[str, Any], reserved: dict[str, None]) -> None:
        kind, ids = record["t"], record["ids"]
        if kind == "r":
            reserved.update(dict.fromkeys(ids))
        elif kind == "c":
            for key_id in ids:
                reserved.pop(key_id, None)
        elif kind == "a":
            self._assign(ids, record["m"], record["s"], int(record["size"]), material.ref_from_json(record["ref"]),
                         bytes.fromhex(record["x"]) if record.get("x") else None, float(record["exp"]))
        elif kind == "d":
            self._delivered(ids, record["s"])
        elif kind == "e":
            for key_id in ids:
                self.owed.pop(key_id, None)

    # -- the master's KME --------------------------------------------------------------------

    def reserve(self, ids: list[str], master: str, slaves: list[str], size: int, ref: KeyRef) -> asyncio.Future[None]:
        """Queued at once; the future is done when the record is on disk. The master's KME relays
        the keys meanwhile and awaits it before the master sees a key: the reservation and the
        slaves' KME's assignment are synced side by side, not one after the other."""
        done = self.journal.submit(_keys_record("r", ids, master, slaves, size, ref))
        done.add_done_callback(_retrieved)
        return done

    async def confirm(self, ids: list[str]) -> None:
        """Not awaited for durability: a reservation left unconfirmed by a crash is only
        discarded (the slaves' KME holds the keys either way)."""
        await self.journal.append(_record("c", ids), durable=False)

    # -- the slaves' KME ---------------------------------------------------------------------

    def known(self, ids: list[str]) -> bool:
        return not self.owed.keys().isdisjoint(ids)

    async def assign(self, ids: list[str], master: str, slaves: list[str], size: int, ref: KeyRef,
                     cipher: bytes | None, expires: float) -> None:
        """Hold keys for `slaves`; durable before it returns (the master's KME is told only then)."""
        self._assign(ids, master, slaves, size, ref, cipher, expires)
        x = f'"{cipher.hex()}"' if cipher else "null"
        await self.journal.append(_keys_record("a", ids, master, slaves, size, ref, f',"x":{x},"exp":{float(expires)!r}'))

    def _assign(self, ids: list[str], master: str, slaves: list[str], size: int, ref: KeyRef, cipher: bytes | None,
                expires: float) -> None:
        step = size // 8
        if step <= 0 or ref.nbytes != step * len(ids):
            raise ValueError(f"{len(ids)} key_IDs of {size} bits for a block of {ref.nbytes} bytes")
        if cipher is not None and len(cipher) != ref.nbytes:
            raise ValueError(f"a ciphertext of {len(cipher)} bytes for a block of {ref.nbytes} bytes")
        block = Block(master, tuple(slaves), ref, step, cipher, expires)
        rows = zip(repeat(block), range(len(ids)), repeat(frozenset(slaves)), strict=False)
        self.owed.update(zip(ids, map(_owed, rows), strict=True))

    def claim(self, ids: list[str], master: str, slave: str) -> list[Owed] | None:
        """The keys under `ids` if every one is owed to `slave` of `master`, marked delivered to it
        at once (a second claim for the same ids fails even before the journal says so); None
        otherwise (nothing is marked)."""
        get = self.owed.get
        found = []
        for key_id in ids:
            owed = get(key_id)
            if owed is None or owed.block.master != master or slave not in owed.pending:
                return None
            found.append(owed)
        if len(set(ids)) != len(ids):
            return None
        self._delivered(ids, slave)
        return found

    async def delivered(self, ids: list[str], slave: str) -> None:
        await self.journal.append(_record("d", ids, s=slave))
        self._compact_if_due()

    def _delivered(self, ids: list[str], slave: str) -> None:
        owed_keys = self.owed
        for key_id in ids:
            owed = owed_keys.get(key_id)
            if owed is not None and slave in owed.pending:
                if len(owed.pending) == 1:
                    del owed_keys[key_id]
                else:
                    owed_keys[key_id] = owed._replace(pending=owed.pending - {slave})

    async def expire(self, now: float | None = None) -> int:
        """Erase keys whose slaves did not fetch them in time; how many."""
        now = time.time() if now is None else now
        gone = [key_id for key_id, owed in self.owed.items() if owed.block.expires <= now]
        if gone:
            for key_id in gone:
                del self.owed[key_id]
            await self.journal.append(_record("e", gone))
            log.info("KME: %d keys expired unfetched", len(gone))
        return len(gone)

    # -- compaction --------------------------------------------------------------------------

    def _compact_if_due(self) -> None:
        live = len(self.owed) * 300
        if self.journal.size >= COMPACT_MIN_BYTES and self.journal.size >= 4 * live:
            self.journal.request_rewrite(self._live_records)

    def _live_records(self) -> Iterator[dict[str, Any]]:
        for key_id, owed in self.owed.items():
            yield {"t": "a", "ids": [key_id], "m": owed.master, "s": sorted(owed.pending),
                   "size": owed.ref.nbytes * 8, "ref": material.ref_to_json(owed.ref),
                   "x": owed.cipher.hex() if owed.cipher else None, "exp": owed.expires}

    async def close(self) -> None:
        await self.journal.close()
