"""The datastores every protocol front end shares: running, candidate, startup, operational.

One write path: every change is a transaction that works on a slice (or, when constraints
reach further, a copy) of the target, validates it with libyang, lets device drivers veto,
then installs it without awaiting, persists it, and tells subscribers. Readers read the
installed trees directly and never wait behind a write; writes are serialized per datastore.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import libyang
from _libyang import ffi, lib
from qstrata.agents.devices.base import ConfigTransaction, DeviceDriver, DeviceRefusal
from qstrata.bindings.diff import Change
from qstrata.bindings.paths import PathSyntaxError, _split_segments
from qstrata.bindings.schema import Schema, get_schema
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import DataIssue, InvalidData

from .edit import EditError, Operation, _find, _free, apply_edit, edit_units, insert_copy
from .locality import Locality, schema_path_of
from .persist import RunningStore, StartupStore

log = logging.getLogger("qstrata.datastore")

DATASTORES = ("running", "candidate", "startup")


class DatastoreError(Exception):
    """A refused operation, in NETCONF vocabulary (error-tag, error-path, error-app-tag)."""

    def __init__(self, tag: str, message: str, path: str | None = None, *, app_tag: str | None = None,
                 info: dict[str, str] | None = None, issues: Sequence[DataIssue] = ()) -> None:
        super().__init__(message)
        self.tag = tag
        self.message = message
        self.path = path
        self.app_tag = app_tag
        self.info = info or {}
        self.issues = tuple(issues)


def error_from_invalid(exc: InvalidData) -> DatastoreError:
    """Map libyang's findings to RFC 6241 / RFC 7950 s15 error tags."""
    first = exc.issues[0]
    msg = first.message
    tag, app_tag = "invalid-value", first.app_tag
    lowered = msg.lower()
    if "missing its key" in lowered or "mandatory node" in lowered:
        tag = "missing-element"
    if "not found as a child" in lowered or "unknown element" in lowered or "namespace" in lowered:
        tag = "unknown-element"
    if "unique" in lowered:
        tag, app_tag = "operation-failed", "data-not-unique"
    if "too many" in lowered:
        tag, app_tag = "operation-failed", "too-many-elements"
    if "too few" in lowered:
        tag, app_tag = "operation-failed", "too-few-elements"
    if "when condition" in lowered:
        tag = "unknown-element"
    if "must condition" in lowered:
        tag, app_tag = "operation-failed", app_tag or "must-violation"
    if "leafref" in lowered or "instance-required" in (first.app_tag or ""):
        tag, app_tag = "data-missing", "instance-required"
    return DatastoreError(tag, msg, first.path, app_tag=app_tag, issues=exc.issues)


@dataclass(frozen=True)
class CommitEvent:
    """A transaction that changed a datastore (for netconf-config-change, gNMI on-change)."""

    datastore: str
    changes: tuple[Change, ...]
    session_id: int | None = None
    username: str | None = None


@dataclass
class SessionInfo:
    """Who is writing: for locks, NACM and change notifications."""

    session_id: int | None = None
    username: str | None = None
    authorize: Callable[[Sequence[Change]], None] | None = None  # raises DatastoreError access-denied


Listener = Callable[[CommitEvent], None]


@dataclass
class _Pending:
    """A confirmed commit awaiting confirmation."""

    rollback: DataTree
    session_id: int | None
    persist: str | None
    timer: asyncio.TimerHandle | None = None
    extra: dict = field(default_factory=dict)


def _parent_paths(path: str) -> list[str]:
    """Ancestors of a data path, outermost first (not the path itself)."""
    try:
        segs = _split_segments(path)
    except PathSyntaxError:
        return []
    return ["/" + "/".join(segs[:i]) for i in range(1, len(segs))]


class Datastore:
    def __init__(self, schema: Schema | None = None, state_dir: Path | None = None,
                 drivers: Iterable[DeviceDriver] = (), *, snapshot_every: int = 1000) -> None:
        self.schema = schema or get_schema()
        self.locality = Locality(self.schema)
        self.drivers = list(drivers)
        self.running_store = RunningStore(state_dir, self.schema, snapshot_every=snapshot_every) if state_dir else None
        self.startup_store = StartupStore(state_dir, self.schema) if state_dir else None
        self.trees: dict[str, DataTree] = {name: DataTree(self.schema) for name in DATASTORES}
        self.candidate_modified = False
        self._candidate_stale = False  # running changed while the candidate held no changes of its own
        self.versions: dict[str, int] = {}
        """Bumped on every install: a reader may cache what it printed of a datastore version."""
        self.locks: dict[str, int] = {}
        self._write = {name: asyncio.Lock() for name in DATASTORES}
        self.listeners: list[Listener] = []
        self.pending: _Pending | None = None
        self._term_cache: dict[int, list[tuple[str, bool]]] = {}

    # ------------------------------------------------------------------ start
    def load(self, initial: DataTree | None = None) -> None:
        """Running from its journal, else from startup, else `initial` (device inventory)."""
        running = None
        if self.running_store and self.running_store.exists():
            running = self.running_store.load()
        elif self.startup_store and self.startup_store.exists():
            running = self.startup_store.load()
        if running is None:
            running = initial.copy() if initial is not None else DataTree(self.schema)
        running.validate(config_only=True)
        self.trees["running"] = running
        self.versions["running"] = self.versions.get("running", 0) + 1
        self.trees["candidate"] = running.copy()
        if self.startup_store and self.startup_store.exists():
            self.trees["startup"] = self.startup_store.load()
        else:
            self.trees["startup"] = running.copy()
            if self.startup_store:
                self.startup_store.save(running)
        if self.running_store and not self.running_store.exists():
            self.running_store.snapshot(running)

    # ------------------------------------------------------------------ reading
    def get_config(self, name: str) -> DataTree:
        self._check_name(name)
        return self._candidate() if name == "candidate" else self.trees[name]

    def _candidate(self) -> DataTree:
        """The candidate follows running until it is edited itself, so a later commit cannot undo what
        was written to running meanwhile. Brought up to date lazily: writes to running stay cheap."""
        if self._candidate_stale and not self.candidate_modified:
            self.trees["candidate"] = self.trees["running"].copy()
        self._candidate_stale = False
        return self.trees["candidate"]

    def operational(self) -> DataTree:
        """Running merged with what the devices report."""
        tree = self.trees["running"].copy()
        for driver in self.drivers:
            state = driver.read_state()
            if state:
                try:
                    tree.merge(DataTree.from_python(state, schema=self.schema, validate=False))
                except InvalidData as exc:
                    log.warning("driver %s returned invalid state: %s", driver.name, exc)
        return tree

    # ------------------------------------------------------------------ locks
    def lock(self, name: str, session_id: int) -> None:
        self._check_name(name)
        holder = self.locks.get(name)
        if holder is not None:
            raise DatastoreError("lock-denied", f"the {name} datastore is locked by session {holder}",
                                 info={"session-id": str(holder)})
        if name == "candidate" and self.candidate_modified:
            raise DatastoreError("lock-denied", "the candidate has uncommitted changes; discard or commit them first",
                                 info={"session-id": "0"})
        if self._write[name].locked():
            raise DatastoreError("in-use", f"a transaction on {name} is in progress")
        self.locks[name] = session_id

    def unlock(self, name: str, session_id: int) -> None:
        self._check_name(name)
        holder = self.locks.get(name)
        if holder is None:
            raise DatastoreError("operation-failed", f"the {name} datastore is not locked")
        if holder != session_id:
            raise DatastoreError("lock-denied", f"the {name} lock is held by session {holder}",
                                 info={"session-id": str(holder)})
        del self.locks[name]

    def release_session(self, session_id: int) -> None:
        """A session ended: drop its locks (and the candidate changes it locked, per RFC 6241)."""
        for name, holder in list(self.locks.items()):
            if holder == session_id:
                del self.locks[name]
                if name == "candidate":
                    self.discard_changes()
        if self.pending and self.pending.persist is None and self.pending.session_id == session_id:
            asyncio.get_event_loop().create_task(self._rollback_pending("confirming session ended"))

    def _check_write(self, name: str, session: SessionInfo) -> None:
        holder = self.locks.get(name)
        if holder is not None and holder != session.session_id:
            raise DatastoreError("in-use", f"the {name} datastore is locked by session {holder}",
                                 info={"session-id": str(holder)})

    def _check_name(self, name: str) -> None:
        if name not in DATASTORES:
            raise DatastoreError("invalid-value", f"unknown datastore {name!r}")

    # ------------------------------------------------------------------ writing
    async def edit(self, name: str, edit: DataTree, session: SessionInfo, *,
                   default_operation: Operation = "merge", test_option: str = "test-then-set",
                   error_option: str = "stop-on-error", removals: Sequence[tuple[str, str]] = ()) -> list[Change]:
        """edit-config. Atomic for stop-on-error and rollback-on-error (the datastore is never left
        half-changed); continue-on-error applies what it can and reports the rest."""
        self._check_name(name)
        self._check_write(name, session)
        edited = edit_units(edit, default_operation)
        units = edited + [(path, True) for path, _ in removals]
        errors: list[EditError] = []

        def remove_leaves(work: DataTree) -> None:
            for path, op in removals:
                node = _find(work, path)
                if node != ffi.NULL:
                    _free(work, node)
                elif op == "delete":
                    exc = EditError("data-missing", "the data does not exist; cannot delete it", path)
                    if error_option != "continue-on-error":
                        raise exc
                    errors.append(exc)

        def mutate(work: DataTree) -> None:
            if error_option == "continue-on-error":
                for path, _removes in edited:
                    node = _find(edit, path)
                    part = DataTree(self.schema)
                    insert_copy_keep_meta(part, node)
                    before = work.copy()
                    try:
                        apply_edit(work, part, default_operation)
                    except EditError as exc:
                        errors.append(exc)
                        # undo this unit only: the copy taken before it becomes the work tree
                        work._root[0], before._root[0] = before._root[0], work._root[0]  # noqa: SLF001
            else:
                apply_edit(work, edit, default_operation)
            remove_leaves(work)

        changes = await self._transaction(name, units, mutate, session, test_only=test_option == "test-only")
        if errors:
            first = errors[0]
            raise DatastoreError(first.tag, first.message, first.path,
                                 issues=[DataIssue(e.message, e.path) for e in errors])
        return changes

    async def replace(self, name: str, new: DataTree, session: SessionInfo) -> list[Change]:
        """copy-config into `name` (also used by commit and rollbacks)."""
        self._check_name(name)
        self._check_write(name, session)
        source = new.copy()

        def mutate(work: DataTree) -> None:
            work._root[0], source._root[0] = source._root[0], work._root[0]  # noqa: SLF001

        return await self._transaction(name, None, mutate, session)

    async def delete_config(self, name: str, session: SessionInfo) -> None:
        if name == "running":
            raise DatastoreError("operation-not-supported", "delete-config of running is not allowed")
        await self.replace(name, DataTree(self.schema), session)

    def discard_changes(self) -> None:
        self.trees["candidate"] = self.trees["running"].copy()
        self.candidate_modified = False
        self._candidate_stale = False

    def validate_datastore(self, name: str) -> None:
        tree = self.get_config(name).copy()
        try:
            tree.validate(config_only=True)
        except InvalidData as exc:
            raise error_from_invalid(exc) from None

    async def commit(self, session: SessionInfo, *, confirmed: bool = False, timeout: float = 600.0,
                     persist: str | None = None, persist_id: str | None = None) -> list[Change]:
        """Candidate -> running, with RFC 6241 s8.4 confirmed-commit semantics."""
        if self.pending is not None:
            if self.pending.persist is not None:
                if persist_id != self.pending.persist:
                    raise DatastoreError("invalid-value", "persist-id does not match the pending confirmed commit",
                                         path="/ietf-netconf:persist-id")
            elif self.pending.session_id != session.session_id and persist_id is None:
                raise DatastoreError("in-use", "a confirmed commit of another session is pending")
        elif persist_id is not None:
            raise DatastoreError("invalid-value", "no confirmed commit is pending for that persist-id")
        rollback = self.trees["running"].copy() if self.pending is None else self.pending.rollback
        changes = await self.replace("running", self._candidate(), session)
        self.candidate_modified = False
        if self.pending and self.pending.timer:
            self.pending.timer.cancel()
        self.pending = None
        if confirmed:
            loop = asyncio.get_running_loop()
            self.pending = _Pending(rollback, session.session_id, persist)
            self.pending.timer = loop.call_later(
                timeout, lambda: loop.create_task(self._rollback_pending("confirm timeout")))
        return changes

    async def cancel_commit(self, session: SessionInfo, persist_id: str | None = None) -> None:
        if self.pending is None:
            raise DatastoreError("operation-failed", "no confirmed commit is pending")
        if self.pending.persist is not None and persist_id != self.pending.persist:
            raise DatastoreError("invalid-value", "persist-id does not match the pending confirmed commit")
        if self.pending.persist is None and self.pending.session_id != session.session_id:
            raise DatastoreError("operation-failed", "the pending confirmed commit belongs to another session")
        await self._rollback_pending("cancel-commit")

    async def _rollback_pending(self, why: str) -> None:
        pending, self.pending = self.pending, None
        if pending is None:
            return
        if pending.timer:
            pending.timer.cancel()
        log.info("rolling back confirmed commit: %s", why)
        await self.replace("running", pending.rollback, SessionInfo())
        self.discard_changes()

    # ------------------------------------------------------------------ the one write path
    async def _transaction(self, name: str, units: list[tuple[str, bool]] | None,
                           mutate: Callable[[DataTree], None], session: SessionInfo, *,
                           test_only: bool = False) -> list[Change]:
        async with self._write[name]:
            target = self._candidate() if name == "candidate" else self.trees[name]
            use_slice = bool(units) and all(
                self.locality.slice_ok(schema_path_of(path), removes) for path, removes in units)
            work = self._slice(target, [p for p, _ in units]) if use_slice else target.copy()
            before = work.copy()
            try:
                mutate(work)
                work.validate(config_only=True)
                if name == "running":  # startup may be emptied by delete-config (RFC 6241 s7.4)
                    self._check_vanished_tops(before, work)
            except EditError as exc:
                raise DatastoreError(exc.tag, exc.message, exc.path) from None
            except InvalidData as exc:
                raise error_from_invalid(exc) from None
            changes = before.diff(work)
            if session.authorize is not None and changes:
                session.authorize(changes)
            if test_only or not changes:
                return changes
            txn = None
            if name == "running" and self.drivers:
                txn = ConfigTransaction(tuple(changes), lambda: target.to_python(),
                                        lambda: self._merged(target, work, units if use_slice else None))
                await self._prepare(txn)
            record = self._install(name, work, [p for p, _ in units] if use_slice else None, changes)
            if name == "running" and not self.candidate_modified:
                self._candidate_stale = True
            if name == "running" and self.running_store is not None:
                self.running_store.append(record, self.trees["running"])
            elif name == "startup" and self.startup_store is not None:
                self.startup_store.save(self.trees["startup"])
            elif name == "candidate":
                self.candidate_modified = True
            if txn is not None:
                for driver in self.drivers:
                    try:
                        await driver.commit(txn)
                    except Exception:  # a driver must not fail here; keep serving
                        log.exception("driver %s failed to commit a prepared transaction", driver.name)
        event = CommitEvent(name, tuple(changes), session.session_id, session.username)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.exception("change listener failed")
        return changes

    async def _prepare(self, txn: ConfigTransaction) -> None:
        prepared: list[DeviceDriver] = []
        try:
            for driver in self.drivers:
                await driver.prepare(txn)
                prepared.append(driver)
        except DeviceRefusal as exc:
            for driver in prepared:
                await driver.abort(txn)
            raise DatastoreError("operation-failed", f"{driver.name}: {exc.message}", exc.path) from None

    def _slice(self, target: DataTree, units: list[str]) -> DataTree:
        """The touched subtrees of `target` plus their ancestors' leaves (for mandatory/when)."""
        piece = DataTree(self.schema)
        seen: set[str] = set()
        for path in units:
            node = _find(target, path)
            if node != ffi.NULL:
                insert_copy(piece, node)
            for ancestor in _parent_paths(path):
                if ancestor in seen:
                    continue
                seen.add(ancestor)
                anc = _find(target, ancestor)
                if anc == ffi.NULL:
                    break
                for name, is_list in self._term_children(anc.schema):
                    if is_list:
                        for node in target.find(f"{ancestor}/{name}"):
                            insert_copy(piece, node.cdata)
                    else:
                        leaf = _find(target, f"{ancestor}/{name}")
                        if leaf != ffi.NULL:
                            insert_copy(piece, leaf)
        return piece

    def _term_children(self, snode) -> list[tuple[str, bool]]:
        """(name, is leaf-list) of an inner schema node's leaf children; cached per schema node.
        Looked up by name so a container with 10,000 list entries costs nothing here."""
        key = int(ffi.cast("uintptr_t", snode))
        cached = self._term_cache.get(key)
        if cached is None:
            cached = []
            parent_mod = ffi.string(snode.module.name).decode()
            child = lib.lysc_node_child(snode)
            while child != ffi.NULL:
                if child.nodetype in (lib.LYS_LEAF, lib.LYS_LEAFLIST) and not child.flags & lib.LYS_CONFIG_R:
                    mod = ffi.string(child.module.name).decode()
                    name = ffi.string(child.name).decode()
                    cached.append((name if mod == parent_mod else f"{mod}:{name}", child.nodetype == lib.LYS_LEAFLIST))
                child = child.next
            self._term_cache[key] = cached
        return cached

    def _merged(self, target: DataTree, work: DataTree, units) -> dict:
        if units is None:
            return work.to_python()
        tree = target.copy()
        for path, _ in units:
            tree.delete(path)
        tree.merge(work)
        return tree.to_python()

    def _check_vanished_tops(self, before: DataTree, after: DataTree) -> None:
        """libyang validates only modules that have data, so deleting a whole non-presence top
        container (e.g. `qkd_node`, whose `qkdn_id` is mandatory) would pass: re-create it empty
        in a probe and validate that, so its mandatory nodes are checked."""
        gone = {_member(n) for n in before.top_nodes()} - {_member(n) for n in after.top_nodes()}
        if not gone:
            return
        probe = after.copy()
        for member in gone:
            nodes = list(self.schema.ctx.find_path("/" + member))
            if nodes and nodes[0].nodetype() == libyang.SNode.CONTAINER and not nodes[0].presence():
                probe.set("/" + member)
        probe.validate(config_only=True)

    def _install(self, name: str, work: DataTree, units: list[str] | None,
                 changes: Sequence[Change] = ()) -> dict:
        """Make `work` visible (no awaits here: readers see all or nothing). Returns the journal
        record: the touched units and their new content, so its size follows the change, not the
        configuration, even when the transaction validated a whole copy."""
        self.versions[name] = self.versions.get(name, 0) + 1
        if units is None:
            self.trees[name] = work
            changed = sorted({_unit_of(c.path) for c in changes})
            if not changed or "/" in changed:
                return {"full": work.to_python()}
            return {"units": changed, "data": self._slice(work, changed).to_python()}
        target = self.trees[name]
        for path in units:
            node = _find(target, path)
            if node != ffi.NULL:
                _free(target, node)
        target.merge(work)
        return {"units": units, "data": work.to_python()}


def _member(node) -> str:
    return f"{node.module().name()}:{node.name()}"


def _unit_of(path: str) -> str:
    """The journal unit of a changed path: its outermost list entry, else the path itself."""
    try:
        segments = _split_segments(path)
    except PathSyntaxError:
        return "/"
    for i, seg in enumerate(segments):
        if "[" in seg:
            return "/" + "/".join(segments[: i + 1])
    return path


def insert_copy_keep_meta(tree: DataTree, node) -> None:
    """Copy an edit node with its parents and operation attributes into an empty edit tree."""
    out = ffi.new("struct lyd_node **")
    flags = lib.LYD_DUP_RECURSIVE | lib.LYD_DUP_WITH_PARENTS
    if lib.lyd_dup_single(node, ffi.NULL, flags, out) != lib.LY_SUCCESS:
        raise EditError("operation-failed", "cannot copy edit data")
    top = out[0]
    while top.parent != ffi.NULL:
        top = ffi.cast("struct lyd_node *", top.parent)
    tree._root[0] = top  # noqa: SLF001


