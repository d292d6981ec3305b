"""An append-only journal of JSON records that survives `kill -9` at any moment, with group commit.

A record is one line ``CRC32 JSON``. Lines are only ever appended, so after a crash at most the
last line is torn: `load` keeps the records up to the first line that is incomplete or fails its
checksum and cuts the file there, so the next append starts on a clean line.

Group commit: `append` queues records; the event loop writes everything queued since the last
write in one go and has it synced with one `fdatasync`, then wakes every caller whose records
it made durable; what arrives meanwhile waits for the next sync. Requests arriving together
share one sync: the cost per request falls as the load rises, instead of capping it at one
request per sync. The syncs are done by a helper process (`syncer`), started with the first one:
the event loop goes on serving while the disk works, no thread contends with it for the GIL,
and the journals of several KMEs of one process are synced side by side (a relayed request's
reservation at the master's KME and assignment at the slaves' KME: synced in the event loop,
one after the other, they made a lone enc_keys wait for two syncs in a row). Only when no
helper can be started is a batch synced in the event loop itself.

`request_rewrite` replaces the journal with the records still live (compaction), atomically
(temp file, sync, rename, sync of the folder), between two syncs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import zlib
from collections.abc import Callable, Iterable
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from .syncer import Syncer

log = logging.getLogger("qstrata.kme")

_HEAD = 9  # 8 hex digits and a space
_FLAGS = os.O_WRONLY | os.O_APPEND
_JSON = json.JSONEncoder(separators=(",", ":"))
"""One encoder for every record (`json.dumps` with options builds a new one per call)."""
_C_JSON = c_make_encoder(None, _JSON.default, encode_basestring_ascii, None, ":", ",", False, False, True) \
    if c_make_encoder is not None else None
"""`_JSON`'s C encoder, made once: `JSONEncoder.encode` makes a new one on every call, which
was two thirds of the cost of writing a record (the text is the same)."""


Record = dict[str, Any] | str
"""A JSON object, or its JSON text already written."""


def json_text(value: Any) -> str:
    """Compact JSON text, as records are written."""
    if _C_JSON is None or isinstance(value, str):
        return _JSON.encode(value)
    return "".join(_C_JSON(value, 0))


def json_strings(items: list[str]) -> str:
    """A JSON list of strings, written directly when none needs escaping (key_IDs never do:
    encoding them one by one was most of the cost of a record)."""
    joined = '","'.join(items)
    if joined.isprintable() and "\\" not in joined and joined.count('"') == 2 * (len(items) - 1):
        return f'["{joined}"]'
    return json_text(items)


def encode(record: Record) -> bytes:
    body = (record if isinstance(record, str) else json_text(record)).encode()
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def decode(raw: bytes) -> tuple[list[dict[str, Any]], int]:
    """The records of a journal's bytes up to the first broken line, and where that line starts
    (the length of the sound part)."""
    records: list[dict[str, Any]] = []
    pos = 0
    while True:
        end = raw.find(b"\n", pos)
        if end < 0:
            return records, pos
        line = raw[pos:end]
        body = line[_HEAD:]
        try:
            if len(line) <= _HEAD or line[8:9] != b" " or int(line[:8], 16) != zlib.crc32(body):
                return records, pos
            record = json.loads(body)
        except ValueError:
            return records, pos
        if not isinstance(record, dict):
            return records, pos
        records.append(record)
        pos = end + 1


class Journal:
    """One journal file; `load` before the first `append`. Used from one event loop."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.size = 0
        """Bytes in the file (sound records only)."""
        self.syncs = 0
        """Syncs done: with `appended`, tells how well requests share them."""
        self.appended = 0
        self._fd: int | None = None
        self._queue: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._syncing: list[asyncio.Future[None]] | None = None
        """The waiters of the batch being synced by the helper (None: no sync under way)."""
        self._syncing_from = 0
        self._scheduled = False
        self._syncer: Syncer | None = None
        self._no_helper = False
        """A helper could not be started: every batch is synced in the event loop."""
        self._rewrite: Callable[[], Iterable[dict[str, Any]]] | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the journal is used from, looked up once (Python 3.11 makes a `getpid`
        system call for every `asyncio.get_running_loop()`: three per request were 3% of the
        KME's time)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def load(self) -> list[dict[str, Any]]:
        """Every sound record, in order; a torn tail is cut off the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        raw = self.path.read_bytes() if self.path.exists() else b""
        records, sound = decode(raw)
        self._fd = os.open(self.path, _FLAGS | os.O_CREAT, 0o600)
        if sound < len(raw):
            os.ftruncate(self._fd, sound)
            os.fsync(self._fd)
        self.size = sound
        return records

    async def append(self, *records: Record, durable: bool = True) -> None:
        """Queue `records` (in order, after everything queued before) and, when `durable`, wait
        until they are on disk."""
        if durable:
            await self.submit(*records)
        else:
            self._enqueue(records, None)

    def submit(self, *records: Record) -> asyncio.Future[None]:
        """Queue `records` now; the future is done when they are on disk (or fails with the
        write's error), so a caller can do other work while they are synced."""
        waiter = self._running_loop().create_future()
        self._enqueue(records, waiter)
        return waiter

    def _enqueue(self, records: tuple[Record, ...], waiter: asyncio.Future[None] | None) -> None:
        if self._closed:
            raise RuntimeError("the journal is closed")
        self._queue += [encode(r) for r in records]
        self.appended += len(records)
        if waiter is not None:
            self._waiters.append(waiter)
        self._schedule()

    def _schedule(self) -> None:
        """Write at the end of this turn of the event loop, so what arrives together goes
        together (unless a sync is under way: its end writes the next batch)."""
        if not self._scheduled and self._syncing is None:
            self._scheduled = True
            self._running_loop().call_soon(self._flush)

    def request_rewrite(self, live: Callable[[], Iterable[dict[str, Any]]]) -> None:
        """After the next sync, replace the journal with `live()` (called then, so it sees every
        record made durable before it; what is queued meanwhile is written after it)."""
        self._rewrite = live
        self._schedule()

    # -- writing and syncing -------------------------------------------------------------------

    def _flush(self) -> None:
        self._scheduled = False
        if self._syncing is not None or self._fd is None:
            return
        if self._rewrite is not None and not self._waiters:
            self._compact()
        if not self._queue:  # waiters with nothing queued (`close`): everything before is durable
            waiters, self._waiters = self._waiters, []
            _wake(waiters, None)
            return
        batch, self._queue = b"".join(self._queue), []
        waiters, self._waiters = self._waiters, []
        start = self.size
        try:
            self._write(batch)
        except OSError as exc:
            _wake(waiters, exc)
            return
        if not waiters:
            return  # records nobody waits for: written, synced with the next batch somebody waits for
        syncer = self._helper()
        if syncer is None:
            try:  # no helper: at once, in the event loop
                os.fdatasync(self._fd)
            except OSError as exc:
                self._cut(start)
                _wake(waiters, exc)
                return
            self.syncs += 1
            _wake(waiters, None)
            if self._rewrite is not None:
                self._compact()
            return
        self._syncing, self._syncing_from = waiters, start
        syncer.sync()

    def _helper(self) -> Syncer | None:
        """The helper process, started with the first sync (again if it died); None: sync inline."""
        if self._syncer is not None and self._syncer.alive:
            return self._syncer
        if self._no_helper:
            return None
        try:
            self._syncer = Syncer(self.path, self._synced)
        except OSError as exc:
            log.error("KME journal %s: no sync helper (%s): syncing in the event loop", self.path, exc)
            self._no_helper = True
            return None
        return self._syncer

    def _synced(self, error: OSError | None) -> None:
        """The helper's answer for the batch under way."""
        waiters, self._syncing = self._syncing or [], None
        if error is not None:
            self._cut(self._syncing_from)
        else:
            self.syncs += 1
        _wake(waiters, error)
        if error is None and self._rewrite is not None:
            self._compact()
        if self._queue or self._waiters:
            self._flush()

    def _write(self, data: bytes) -> None:
        """Append (into the page cache: a `kill -9` a moment later loses none of it); a write that
        fails (a full disk) is cut off again, so the records appended after it do not follow a
        torn line (recovery stops at the first one)."""
        assert self._fd is not None
        start = self.size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            self._cut(start)
            raise
        self.size += len(data)

    def _cut(self, size: int) -> None:
        """Forget what was written after `size` (its sync failed: it may not be on disk)."""
        try:
            if self._fd is not None:
                os.ftruncate(self._fd, size)
            self.size = size
        except OSError:
            pass

    def _compact(self) -> None:
        live, self._rewrite = self._rewrite, None
        if live is None:
            return
        try:
            data = b"".join(encode(r) for r in live())
        except Exception:
            log.exception("KME journal %s: the live records could not be read; not compacted", self.path)
            return
        try:
            self._replace(data)
        except OSError as exc:  # the records stay in the file as they were: compacted another time
            log.error("KME journal %s: compaction failed: %s", self.path, exc)
            return
        if self._syncer is not None and self._syncer.alive:
            self._syncer.reopen()

    def _replace(self, data: bytes) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        fresh = os.open(tmp, _FLAGS)
        try:
            os.replace(tmp, self.path)
        except OSError:
            os.close(fresh)
            raise
        old, self._fd, self.size = self._fd, fresh, len(data)
        if old is not None:
            os.close(old)
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    async def close(self) -> None:
        """Write what is queued, then close."""
        if not self._closed and (self._queue or self._waiters or self._syncing is not None):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            self._schedule()
            try:
                await asyncio.wait_for(waiter, 5.0)
            except (TimeoutError, OSError):
                pass
        self._closed = True
        if self._syncer is not None:
            self._syncer.close()
            self._syncer = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _wake(waiters: list[asyncio.Future[None]], error: OSError | None) -> None:
    for waiter in waiters:
        if not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)
