"""Durable datastores that survive ``kill -9`` at any moment.

`running` is a snapshot plus a journal of committed transactions; `startup` is a file replaced
atomically. A journal record is one line ``CRC32 JSON``; a torn last line (crash mid-write)
fails its checksum and is ignored, so recovery always yields the last committed state. Records
are idempotent (delete the touched subtrees, merge their new content), so replaying a journal
over a snapshot written after some of its records converges to the same tree.

Appending a record costs O(size of the change); the snapshot (O(configuration)) is written once
the journal has at least `snapshot_every` records and is as large as the last snapshot, so its
cost per committed byte stays constant as the configuration grows. Folding is split: the
configuration is printed and the journal set aside (``running.journal.folding``) while writers
wait, then the snapshot is written and synced off the write path while new records go to a fresh
journal. Recovery replays snapshot, the set-aside journal if a crash left one, then the journal.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qstrata.bindings.diff import Change
from qstrata.bindings.edit import placed_unit
from qstrata.bindings.schema import Schema
from qstrata.bindings.tree import DataTree, parent_path


def atomic_write(path: Path, data: bytes) -> None:
    """Temp file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _encode_record(record: dict[str, Any]) -> bytes:
    body = json.dumps(record, separators=(",", ":")).encode()
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def _decode_records(raw: bytes) -> list[dict[str, Any]]:
    records = []
    for line in raw.split(b"\n"):
        if len(line) < 10 or line[8:9] != b" ":
            continue
        body = line[9:]
        try:
            if int(line[:8], 16) != zlib.crc32(body):
                continue
            records.append(json.loads(body))
        except ValueError:
            continue
    return records


URGENT_FACTOR = 4
"""A due fold waits for a pause in commits until the journal weighs this many snapshots."""


class RunningStore:
    """Snapshot + journal of the running datastore in a state directory."""

    def __init__(self, state_dir: Path, schema: Schema, *, snapshot_every: int = 1000) -> None:
        self.schema = schema
        self.dir = state_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.snapshot_path = self.dir / "running.json"
        self.journal_path = self.dir / "running.journal"
        self.folding_path = self.dir / "running.journal.folding"
        self.snapshot_every = snapshot_every
        self._journal_fd: int | None = None
        self._records = 0
        self._journal_bytes = 0
        self._snapshot_bytes = self.snapshot_path.stat().st_size if self.snapshot_path.exists() else 0

    def exists(self) -> bool:
        return self.snapshot_path.exists() or self.journal_path.exists() or self.folding_path.exists()

    def load(self) -> DataTree:
        """The last committed running configuration (not validated: the caller does that)."""
        tree = DataTree(self.schema)
        if self.snapshot_path.exists():
            tree = DataTree.parse(self.snapshot_path.read_bytes() or b"{}", "json", schema=self.schema,
                                  config_only=True, validate=False)
        for journal in (self.folding_path, self.journal_path):
            if journal.exists():
                raw = journal.read_bytes()
                for record in _decode_records(raw):
                    tree = apply_record(tree, record)
                    self._records += 1
                self._journal_bytes += len(raw)
        return tree

    def append(self, record: dict[str, Any]) -> None:
        """Make a committed transaction durable before anyone is told it happened."""
        if self._journal_fd is None:
            self._journal_fd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        line = _encode_record(record)
        os.write(self._journal_fd, line)
        os.fsync(self._journal_fd)
        self._records += 1
        self._journal_bytes += len(line)

    def snapshot_due(self) -> bool:
        """The journal may be folded into a snapshot once it holds `snapshot_every` records and
        weighs as much as the snapshot (so rewriting the snapshot costs O(1) per journal byte)."""
        return self._records >= self.snapshot_every and self._journal_bytes >= self._snapshot_bytes

    def snapshot_urgent(self) -> bool:
        """Past this the journal is folded even while commits keep coming (recovery replays at
        most about `URGENT_FACTOR` snapshots' worth of journal)."""
        return self.snapshot_due() and self._journal_bytes >= URGENT_FACTOR * max(self._snapshot_bytes, 1)

    def snapshot(self, current: DataTree) -> None:
        """Fold everything now (start-up; tests)."""
        self.begin_fold(current)()

    def begin_fold(self, current: DataTree) -> Callable[[], None]:
        """Print `current` and set the journal aside; return the slow half (write and sync the
        snapshot, drop the set-aside journal) to run while new records go to a fresh journal.
        Call only when no earlier fold is still finishing."""
        data = current.print("json").encode()
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None
        if self.journal_path.exists() and self.folding_path.exists():  # an earlier fold failed: keep both
            with open(self.folding_path, "ab") as folding:
                folding.write(self.journal_path.read_bytes())
                folding.flush()
                os.fsync(folding.fileno())
            os.unlink(self.journal_path)
            _sync_dir(self.dir)
        elif self.journal_path.exists():
            os.replace(self.journal_path, self.folding_path)
            _sync_dir(self.dir)
        self._records = self._journal_bytes = 0

        def finish() -> None:
            atomic_write(self.snapshot_path, data)
            self._snapshot_bytes = len(data)
            if self.folding_path.exists():
                os.unlink(self.folding_path)
                _sync_dir(self.dir)
        return finish

    def close(self) -> None:
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None


def apply_record(tree: DataTree, record: dict[str, Any]) -> DataTree:
    """Replay one journal record onto `tree` (returns the resulting tree)."""
    if "full" in record:
        return DataTree.from_python(record["full"], schema=tree.schema, config_only=True, validate=False)
    for path in record.get("units", ()):
        tree.delete(path)
    data = record.get("data") or {}
    if data:
        tree.merge(DataTree.from_python(data, schema=tree.schema, config_only=True, validate=False))
    return tree


FULL_RECORD_AFTER = 512
"""A whole-copy transaction that changed more units than this is recorded whole: listing them
(a copy-config that creates 10,000 links names each) costs more to write, find and replay."""


def journal_record(work: DataTree, units: list[str] | None, changes: Sequence[Change]) -> dict[str, Any]:
    """The record of one transaction: the touched units and their new content, so its size
    follows the change, not the configuration, even when the transaction validated a whole copy
    (`units` None); a change of a top-level leaf, of everything or of very many units records
    the whole tree."""
    if units is None:
        found: set[str] = set()
        for c in changes:
            found.add(placed_unit(work, _unit_of(c.path)))  # a user-ordered entry keeps its place
            if len(found) > FULL_RECORD_AFTER:
                return {"full": work.to_python()}
        changed = sorted(found)
        if not changed or "/" in changed:
            return {"full": work.to_python()}
        return {"units": changed, "data": work.extract(changed)[0].to_python()}
    return {"units": units, "data": work.to_python()}


def _unit_of(path: str) -> str:
    """The journal unit of a changed path: its outermost list entry, else the path itself."""
    outer = path
    parent = parent_path(path)
    while parent is not None:
        if parent.endswith("]"):
            outer = parent
        parent = parent_path(parent)
    if outer != path or path.endswith("]"):
        return outer
    return path


class PendingCommitStore:
    """The confirmed commit awaiting confirmation (RFC 6241 s8.4), so that it survives kill -9:
    the configuration to roll back to, the persist-id and the deadline."""

    def __init__(self, state_dir: Path, schema: Schema) -> None:
        self.schema = schema
        self.path = state_dir / "pending-commit.json"

    def save(self, rollback: DataTree, persist: str | None, deadline: float, session_id: int | None,
             username: str | None) -> None:
        body = {"persist": persist, "deadline": deadline, "session-id": session_id, "username": username,
                "rollback": rollback.to_python()}
        atomic_write(self.path, json.dumps(body).encode())

    def load(self) -> tuple[DataTree, str | None, float, int | None, str | None] | None:
        try:
            body = json.loads(self.path.read_bytes())
            rollback = DataTree.from_python(body["rollback"], schema=self.schema, config_only=True, validate=False)
            return rollback, body.get("persist"), float(body["deadline"]), body.get("session-id"), body.get("username")
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:  # written atomically: only a hand edit gets here
            raise ValueError(f"{self.path}: unreadable pending confirmed commit: {exc}") from None

    def clear(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


class StartupStore:
    """The startup datastore: one file, replaced atomically by copy-config."""

    def __init__(self, state_dir: Path, schema: Schema) -> None:
        self.schema = schema
        self.path = state_dir / "startup.json"

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> DataTree:
        return DataTree.parse(self.path.read_bytes() or b"{}", "json", schema=self.schema, config_only=True,
                              validate=False)

    def save(self, tree: DataTree) -> None:
        atomic_write(self.path, tree.print("json").encode())
