"""One network per state directory: `qstrata up` holds STATE_DIR/up.lock while it runs.

The lock is an advisory `flock` on an open file, so the kernel drops it the moment its process
ends however it ends (Ctrl-C, SIGTERM, `kill -9`, a crash): a crashed `up` never leaves a stale
lock behind, and nothing has to guess from a pid whether that process is still ours. The file
holds the pid of the holder, for the message a second `up` prints.

Other commands ask `holder()` whether a network is running in a state directory before they try
to reach it (`qstrata demo`), so a leftover endpoints.json of a network that is gone is not
mistaken for a live one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "up.lock"


class StateDirInUse(Exception):
    """Another process holds the state directory."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        self.state_dir = state_dir
        self.pid = pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(f"{state_dir} is in use by another qstrata up ({who})")


class StateDirLock:
    """Held from `acquire` until `release` or the end of the process."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock now or raise `StateDirInUse` with the holder's pid (never waits)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise StateDirInUse(self.path.parent, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


def holder(state_dir: Path) -> int | None:
    """The pid of the `up` running in `state_dir`, or None when none is (0: running, pid unknown)."""
    path = Path(state_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
