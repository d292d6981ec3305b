"""An append-only journal of JSON records that survives `kill -9` at any moment, with group commit.

A record is one line ``CRC32 JSON``. Lines are only ever appended, so after a crash at most the
last line is torn: `load` keeps the records up to the first line that is incomplete or fails its
checksum and cuts the file there, so the next append starts on a clean line.

Group commit: `append` queues records; one writer writes everything queued since its last write
and syncs it with one `fdatasync` (in a worker thread, so the event loop keeps serving), then
wakes every caller whose records it made durable. Requests arriving together share one sync: the
cost per request falls as the load rises, instead of capping it at one request per sync.

`rewrite` replaces the journal with the records still live (compaction), atomically (temp file,
sync, rename, sync of the folder), between two writes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_HEAD = 9  # 8 hex digits and a space


def encode(record: dict[str, Any]) -> bytes:
    body = json.dumps(record, separators=(",", ":")).encode()
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
    """One journal file; `load` before the first `append`."""

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
        self._writer: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kme-journal")
        self._rewrite: Callable[[], Iterable[dict[str, Any]]] | None = None
        self._closed = False

    def load(self) -> list[dict[str, Any]]:
        """Every sound record, in order; a torn tail is cut off the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        raw = self.path.read_bytes() if self.path.exists() else b""
        records, sound = decode(raw)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if sound < len(raw):
            os.ftruncate(self._fd, sound)
            os.fsync(self._fd)
        self.size = sound
        return records

    async def append(self, *records: dict[str, Any], durable: bool = True) -> None:
        """Queue `records` (in order, after everything queued before) and, when `durable`, wait
        until they are on disk."""
        if self._closed:
            raise RuntimeError("the journal is closed")
        self._queue.extend(encode(r) for r in records)
        self.appended += len(records)
        waiter = None
        if durable:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
        self._kick()
        if waiter is not None:
            await waiter

    def request_rewrite(self, live: Callable[[], Iterable[dict[str, Any]]]) -> None:
        """At the writer's next turn, replace the journal with `live()` (called then, so it sees
        every record made durable before it)."""
        self._rewrite = live
        self._kick()

    def _kick(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="kme journal")

    async def _write_loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            while self._queue or self._rewrite is not None:
                batch, self._queue = self._queue, []
                waiters, self._waiters = self._waiters, []
                try:
                    if batch:
                        data = b"".join(batch)
                        await loop.run_in_executor(self._pool, self._write, data)
                        self.size += len(data)
                        self.syncs += 1
                    rewrite, self._rewrite = self._rewrite, None
                    if rewrite is not None:
                        data = b"".join(encode(r) for r in rewrite())
                        await loop.run_in_executor(self._pool, self._replace, data)
                        self.size = len(data)
                except OSError as exc:
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_exception(exc)
                    continue
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)

    def _write(self, data: bytes) -> None:
        """Append and sync; a write that fails (a full disk) is cut off again, so the records
        appended after it do not follow a torn line (recovery stops at the first one)."""
        assert self._fd is not None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            os.fdatasync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, self.size)
            except OSError:
                pass
            raise

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
        os.replace(tmp, self.path)
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        old, self._fd = self._fd, os.open(self.path, os.O_WRONLY | os.O_APPEND, 0o600)
        if old is not None:
            os.close(old)

    async def close(self) -> None:
        """Write what is queued, then close."""
        if self._writer is not None and not self._writer.done() and (self._queue or self._waiters):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            self._kick()
            try:
                await asyncio.wait_for(waiter, 5.0)
            except (TimeoutError, OSError):
                pass
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._pool.shutdown(wait=False)
