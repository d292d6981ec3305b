"""`fdatasync` of a journal by a helper process, so the event loop never waits for the disk and no
thread of the agent contends with it for the GIL.

A KME under load syncs its journal a thousand times a second. Done in a thread, every sync hands
the GIL to that thread and back two or three times; measured under the key delivery benchmark,
the event loop's thread then spent a fifth of its time waiting for the GIL. The helper is a
second Python process (`python -S -c`, a few MB, nothing imported) that opens the journal file
itself and, for each byte `s` it reads from a socket pair, syncs the file and answers one byte:
0, or the error number. `o` makes it open the file again (after the journal was replaced by a
compacted one, under the same name). It ends when the socket closes: with the agent, whatever
way the agent ends.

The event loop only writes the bytes to the file (into the page cache: no wait for the disk),
sends `s`, and reads the answer when the socket is readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("qstrata.kme")

HELPER = r"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the agent's to handle; we end with its socket
sock, path = int(sys.argv[1]), sys.argv[2]
fd = os.open(path, os.O_RDONLY)
while True:
    ops = os.read(sock, 4096)
    if not ops:
        break
    for op in ops:
        if op == 0x6f:
            os.close(fd)
            fd = os.open(path, os.O_RDONLY)
            continue
        try:
            os.fdatasync(fd)
            answer = 0
        except OSError as exc:
            answer = exc.errno or 5
        os.write(sock, bytes((min(answer, 255),)))
"""


class Syncer:
    """One helper process syncing the file at `path`; `done(error)` is called (in the event loop)
    once for each `sync()`, in order: None when the file's data is on disk."""

    def __init__(self, path: Path, done: Callable[[OSError | None], None]) -> None:
        self.path = path
        self._done = done
        self._pending = 0
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-S", "-c", HELPER, str(theirs.fileno()), str(path), "qstrata-kme-syncer"],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._socket = ours
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(ours.fileno(), self._readable)

    @property
    def alive(self) -> bool:
        return self._socket is not None

    def sync(self) -> None:
        self._pending += 1
        self._send(b"s")

    def reopen(self) -> None:
        """The file under `path` was replaced: sync the new one from now on."""
        self._send(b"o")

    def _send(self, op: bytes) -> None:
        try:
            self._socket.send(op)
        except OSError as exc:
            self._fail(exc)

    def _readable(self) -> None:
        try:
            answers = self._socket.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        if not answers:
            self._fail(OSError(errno.EPIPE, "the journal's sync helper ended"))
            return
        for answer in answers:
            self._pending -= 1
            self._done(None if answer == 0 else OSError(answer, f"fdatasync of {self.path}: {errno.errorcode.get(answer, answer)}"))

    def _fail(self, exc: OSError) -> None:
        """The helper is gone: the syncs asked of it fail (nobody knows whether they happened)."""
        log.error("KME journal %s: the sync helper failed: %s", self.path, exc)
        pending, self._pending = self._pending, 0
        self.close()
        for _ in range(pending):
            self._done(exc)

    def close(self) -> None:
        if self._socket is None:
            return
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._socket.fileno())
        self._socket.close()
        self._socket = None  # type: ignore[assignment]
        try:
            self._process.wait(2.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
