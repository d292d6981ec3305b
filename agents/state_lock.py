"""One process per state directory: `qstrata up` holds STATE_DIR/up.lock while it runs, and an
agent holds its own STATE_DIR/agent.lock (under `up` as well, in `up`'s process or in its child).

Two agents on one state directory would both append to its datastore journal and its KME journal:
a key_ID could then be handed out twice, the very thing the KME's journal is there to prevent. The
lock is an advisory `flock` on an open file, so the kernel drops it the moment its process ends
however it ends (Ctrl-C, SIGTERM, `kill -9`, a crash): a crashed process never leaves a stale lock
behind, and nothing has to guess from a pid whether that process is still ours. The file holds the
pid of the holder, for the message the refused process prints.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path


class StateDirInUse(OSError):
    """Another process holds the state directory. An `OSError` (EBUSY) whose `strerror` is the
    whole sentence, so every command that reports an `OSError` in one line reports this one."""

    def __init__(self, state_dir: Path, pid: int | None, holder: str) -> None:
        self.state_dir = state_dir
        self.pid = pid
        who = f"pid {pid}" if pid else "pid unknown"
        super().__init__(errno.EBUSY, f"{state_dir} is in use by another {holder} ({who}): stop it first, "
                                      "or give another --state-dir")


class StateDirLock:
    """Held from `acquire` until `release` or the end of the process. `holder` names, in the
    refusal, what holds such a lock ("qstrata up", "agent")."""

    def __init__(self, state_dir: Path, file_name: str, holder: str) -> None:
        self.path = Path(state_dir) / file_name
        self.holder = holder
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
            raise StateDirInUse(self.path.parent, pid, self.holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


def holder(state_dir: Path, file_name: str) -> int | None:
    """The pid of the process holding `file_name` in `state_dir`, or None when none does (0: one
    does, pid unknown)."""
    path = Path(state_dir) / file_name
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
