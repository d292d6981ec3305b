"""The datastores every protocol front end shares: running, candidate, startup, operational.

One write path: every change is a transaction of protocol-neutral `EditOperation`s that works on
a slice (or, when constraints reach further, a copy) of the target, validates it with libyang,
checks access on the computed change list, lets device drivers veto, then installs it without
awaiting, persists it, and tells the event bus. Readers read the installed trees directly and
never wait behind a write; writes are serialized per datastore.

Work that grows with the request (a 16 MiB edit of 200,000 list entries, a commit that copies a
large configuration) runs in a worker thread while the event loop keeps serving other sessions:
libyang releases the GIL, the trees it reads are only replaced (never modified) while a worker
reads them, and the result is installed on the loop in one step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qstrata.agents.devices.base import ConfigTransaction, DeviceDriver, DeviceRefusal
from qstrata.agents.events import CommitEvent, ConfirmedCommitEvent, EventBus
from qstrata.bindings.diff import Change
from qstrata.bindings.edit import EditError, EditOperation, Unit, apply_operation, operation_units
from qstrata.bindings.locality import Reference, locality_of, schema_path_of
from qstrata.bindings.schema import Schema, get_schema
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import DataIssue, InvalidData

from .errors import DatastoreError, ErrorKind, from_invalid
from .operational import Operational, OperationalChange, OperationalRead
from .persist import PendingCommitStore, RunningStore, StartupStore, journal_record

log = logging.getLogger("qstrata.datastore")

DATASTORES = ("running", "candidate", "startup")
MAX_CONFIRM_TIMEOUT = 4_294_967_295
"""confirm-timeout is a uint32 number of seconds (ietf-netconf, RFC 6241 s8.4.5.1)."""
OFFLOAD_UNITS = 256
FOLD_IDLE_S = 0.2
"""A due journal fold waits for this long a pause in commits to running (see `_fold_when_idle`)."""
"""Transactions touching more subtrees than this are computed in a worker thread."""


@dataclass
class SessionInfo:
    """Who is writing: for locks, access control and change notifications."""

    session_id: int | None = None
    username: str | None = None
    authorize: Callable[[Sequence[Change]], None] | None = None
    """Raises DatastoreError(ACCESS_DENIED) for a change list the user may not make (NACM)."""
    system: bool = False
    """The server itself (confirmed-commit rollback, restart replay): no locks apply."""


SYSTEM = SessionInfo(system=True)


@dataclass
class PendingCommit:
    """A confirmed commit awaiting confirmation (RFC 6241 s8.4)."""

    rollback: DataTree
    session_id: int | None
    username: str | None
    persist: str | None
    deadline: float
    """Wall-clock time (time.time()) of the rollback."""
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


@dataclass
class _Work:
    """What a transaction computed before anything is installed."""

    work: DataTree
    units: list[str] | None
    """Paths of the slice's subtrees; None when `work` is a whole copy of the target."""
    present: list[str] | None
    """The units the target had before (to be replaced on install)."""
    changes: list[Change]
    full: DataTree | None = None
    """For large slices: the whole new tree, built off the loop, installed by swapping."""
    record: dict | None = None
    weight: int | None = None
    """The new tree's printed size when it was measured (whole copies), else None."""
    delta: int = 0
    """Estimated change of the printed size (slices)."""


def _finish_fold(finish: Callable[[], None]) -> None:
    """A snapshot that cannot be written is not a failed commit: the journal still holds
    every record (recovery replays it), and the next fold tries again."""
    try:
        finish()
    except OSError as exc:
        log.error("writing the running snapshot failed: %s (the journal keeps every commit)", exc)


class Datastore:
    def __init__(self, schema: Schema | None = None, state_dir: Path | None = None,
                 drivers: Iterable[DeviceDriver] = (), *, snapshot_every: int = 1000,
                 bus: EventBus | None = None) -> None:
        self.schema = schema or get_schema()
        self.locality = locality_of(self.schema)
        self.drivers = list(drivers)
        self.state_sources: list[Callable[[], dict]] = []
        """More operational state besides the drivers' (JSON-IETF, merged after theirs): the parts of
        the agent that are no device, e.g. its KME's figures."""
        self.bus = bus or EventBus()
        self.running_store = RunningStore(state_dir, self.schema, snapshot_every=snapshot_every) if state_dir else None
        self.startup_store = StartupStore(state_dir, self.schema) if state_dir else None
        self.pending_store = PendingCommitStore(state_dir, self.schema) if state_dir else None
        self.trees: dict[str, DataTree] = {name: DataTree(self.schema) for name in DATASTORES}
        self.candidate_modified = False
        self._candidate_stale = False  # running changed while the candidate held no changes of its own
        self.versions: dict[str, int] = {}
        """Bumped on every install: a reader may cache what it printed of a datastore version."""
        self.installed_ns: dict[str, int] = {}
        """Wall-clock time (Unix ns) of each datastore's last install: when its values were made."""
        self.locks: dict[str, int] = {}
        self.weights: dict[str, int] = {}
        """Approximate printed size of each datastore (bytes): tells readers when printing or
        filtering it is big enough to leave the event loop."""
        self._write = {name: asyncio.Lock() for name in DATASTORES}
        self._folding: asyncio.Future | None = None
        self._idle_fold: asyncio.Future | None = None
        self._last_write = 0.0
        """The snapshot being written off the write path (see `persist.RunningStore.begin_fold`)."""
        self.pending: PendingCommit | None = None
        self._operational = OperationalRead(self)

    # ------------------------------------------------------------------ start
    def load(self, initial: DataTree | None = None) -> None:
        """Running from its journal, else from startup, else `initial` (device inventory). A
        confirmed commit that was pending when the agent stopped is restored (persist) or rolled
        back (no persist), per RFC 6241 s8.4: call `restore_pending` once the loop runs."""
        running = None
        if self.running_store and self.running_store.exists():
            running = self.running_store.load()
        elif self.startup_store and self.startup_store.exists():
            running = self.startup_store.load()
        if running is None:
            running = initial.copy() if initial is not None else DataTree(self.schema)
        running.validate(config_only=True)
        self.trees["running"] = running
        self._bump("running")
        self.trees["candidate"] = running.copy()
        if self.startup_store and self.startup_store.exists():
            self.trees["startup"] = self.startup_store.load()
        else:
            self.trees["startup"] = running.copy()
            if self.startup_store:
                self.startup_store.save(running)
        if self.running_store and not self.running_store.exists():
            self.running_store.snapshot(running)
        for name in DATASTORES:
            self.weights[name] = len(self.trees[name].print("json"))

    def weight(self, name: str) -> int:
        """Approximate printed size of a datastore in bytes (operational: running's)."""
        return self.weights.get("running" if name == "operational" else name, 0)

    async def restore_pending(self) -> None:
        """Bring back the confirmed commit that was pending at the last stop (see `load`)."""
        if self.pending_store is None:
            return
        saved = self.pending_store.load()
        if saved is None:
            return
        rollback, persist, deadline, session_id, username = saved
        self.pending = PendingCommit(rollback, session_id, username, persist, deadline)
        if persist is None:
            await self._rollback_pending("the agent restarted before the commit was confirmed", "cancel")
            return
        log.info("restored pending confirmed commit (persist-id %s), %.0f s left", persist, deadline - time.time())
        self._arm_timer()

    # ------------------------------------------------------------------ reading
    def get_config(self, name: str) -> DataTree:
        self._check_name(name)
        return self._candidate() if name == "candidate" else self.trees[name]

    def _candidate(self, *, writer: bool = False) -> DataTree:
        """The candidate follows running until it is edited itself, so a later commit cannot undo what
        was written to running meanwhile. Brought up to date lazily: writes to running stay cheap.
        Readers never replace it while a candidate transaction (the `writer`) works on it."""
        if self._candidate_stale and not self.candidate_modified and (writer or not self._write["candidate"].locked()):
            self.trees["candidate"] = self.trees["running"].copy()
            self.weights["candidate"] = self.weights.get("running", 0)
            self._candidate_stale = False
        return self.trees["candidate"]

    def read_operational(self, *, config_only: bool = False) -> Operational:
        """The one operational read every front end uses: running with defaults merged with the
        devices' state, as JSON-IETF, with the time it was produced (see `operational.py`)."""
        return self._operational.read(config_only=config_only)

    def operational(self) -> DataTree:
        """The same read as a libyang tree (NETCONF renders from trees)."""
        return self._operational.tree()

    def watch_operational(self, callback: Callable[[OperationalChange], None]) -> Callable[[], None]:
        """Hand `callback` what changes in the operational data (paths, new values, deletes);
        returns the unsubscribe."""
        return self._operational.watch(callback)

    # ------------------------------------------------------------------ locks
    def lock(self, name: str, session_id: int) -> None:
        self._check_name(name)
        holder = self.locks.get(name)
        if holder is not None:
            raise DatastoreError(ErrorKind.LOCK_DENIED, f"the {name} datastore is locked by session {holder}",
                                 info={"session-id": str(holder)})
        if name == "candidate" and self.candidate_modified:
            raise DatastoreError(ErrorKind.LOCK_DENIED,
                                 "the candidate has uncommitted changes; discard or commit them first",
                                 info={"session-id": "0"})
        if self._write[name].locked():
            raise DatastoreError(ErrorKind.IN_PROGRESS, f"a transaction on {name} is in progress")
        self.locks[name] = session_id

    def unlock(self, name: str, session_id: int) -> None:
        self._check_name(name)
        holder = self.locks.get(name)
        if holder is None:
            raise DatastoreError(ErrorKind.NOT_LOCKED, f"the {name} datastore is not locked")
        if holder != session_id:
            raise DatastoreError(ErrorKind.LOCK_DENIED, f"the {name} lock is held by session {holder}",
                                 info={"session-id": str(holder)})
        del self.locks[name]

    def release_session(self, session_id: int) -> None:
        """A session ended: drop its locks (and the candidate changes it locked, per RFC 6241),
        and roll back its unconfirmed, non-persistent confirmed commit."""
        for name, holder in list(self.locks.items()):
            if holder == session_id:
                del self.locks[name]
                if name == "candidate":
                    self._discard()
        if self.pending and self.pending.persist is None and self.pending.session_id == session_id:
            asyncio.get_running_loop().create_task(
                self._rollback_pending("the confirming session ended", "cancel"))

    def _check_write(self, name: str, session: SessionInfo) -> None:
        holder = self.locks.get(name)
        if holder is not None and holder != session.session_id and not session.system:
            raise DatastoreError(ErrorKind.LOCKED, f"the {name} datastore is locked by session {holder}",
                                 info={"session-id": str(holder)})

    def _check_name(self, name: str) -> None:
        if name not in DATASTORES:
            raise DatastoreError(ErrorKind.BAD_REQUEST, f"unknown datastore {name!r}")

    # ------------------------------------------------------------------ writing
    async def edit(self, name: str, operations: Sequence[EditOperation], session: SessionInfo, *,
                   test_only: bool = False, error_option: str = "stop-on-error", big: bool = False,
                   precondition: Callable[[], None] | None = None) -> list[Change]:
        """Apply `operations` as one transaction. stop-on-error and rollback-on-error are atomic
        (the datastore is never left half-changed); continue-on-error applies every operation
        that can be applied, then reports the others (and still refuses an invalid result).

        `big` (the request was large) moves all the work off the event loop from the start; the
        operations' values are consumed (freed in the worker). `precondition` runs once the
        transaction holds the datastore, before anything is computed, and refuses it by raising:
        no other commit can come between its check and the edit (RESTCONF's If-Match)."""
        self._check_name(name)
        self._check_write(name, session)

        def units_of() -> list[Unit]:
            return [u for op in operations for u in operation_units(op)]

        units = await asyncio.to_thread(units_of) if big else units_of()
        failures: list[EditError] = []

        def mutate(work: DataTree) -> None:
            for op in operations:
                try:
                    apply_operation(work, op)
                except EditError as exc:  # a failing operation has changed nothing
                    if error_option != "continue-on-error":
                        raise
                    failures.append(exc)

        try:
            changes = await self._transaction(name, units, mutate, session, test_only=test_only, big=big,
                                              precondition=precondition)
        finally:
            if big:
                await asyncio.to_thread(_release, [op.value for op in operations if op.value is not None])
        if failures:
            first = failures[0]
            raise DatastoreError(ErrorKind(first.kind.value), first.message, first.path,
                                 issues=[DataIssue(e.message, e.path, kind=e.kind) for e in failures])
        return changes

    async def replace(self, name: str, new: DataTree, session: SessionInfo) -> list[Change]:
        """copy-config into `name` (also used by commit and rollbacks)."""
        self._check_name(name)
        self._check_write(name, session)
        return await self._transaction(name, None, lambda work: work.take(new.copy()), session)

    async def delete_config(self, name: str, session: SessionInfo) -> None:
        if name == "running":
            raise DatastoreError(ErrorKind.NOT_SUPPORTED, "delete-config of running is not allowed")
        await self.replace(name, DataTree(self.schema), session)

    async def discard_changes(self, session: SessionInfo) -> None:
        """Reset the candidate to running; refused while another session holds the candidate lock
        (RFC 6241 s7.5: a lock stops every change but the holder's)."""
        self._check_write("candidate", session)
        async with self._write["candidate"]:
            self._discard()

    def _discard(self) -> None:
        self.trees["candidate"] = self.trees["running"].copy()
        self.weights["candidate"] = self.weights.get("running", 0)
        self._bump("candidate")
        self.candidate_modified = False
        self._candidate_stale = False

    def validate_datastore(self, name: str) -> None:
        tree = self.get_config(name).copy()
        try:
            tree.validate(config_only=True)
        except InvalidData as exc:
            raise from_invalid(exc) from None

    async def commit(self, session: SessionInfo, *, confirmed: bool = False, timeout: int = 600,
                     persist: str | None = None) -> list[Change]:
        """Candidate -> running. With `confirmed`, the previous running is kept to roll back to
        after `timeout` seconds unless a later commit confirms it (RFC 6241 s8.4); a commit while
        one is pending confirms it (or, confirmed again, extends it). Who may do that is the
        front end's to check (`agents/netconf/rfc6241_confirmed.py`), before calling this.

        A commit publishes the candidate, so it is refused while another session holds the
        candidate lock (its edits are unfinished) or the running lock."""
        if confirmed and not 1 <= timeout <= MAX_CONFIRM_TIMEOUT:
            raise DatastoreError(ErrorKind.INVALID_VALUE, f"a confirmed commit's timeout must be 1..{MAX_CONFIRM_TIMEOUT} s")
        self._check_write("candidate", session)
        self._check_write("running", session)
        pending = self.pending
        rollback = self.trees["running"].copy() if pending is None else pending.rollback
        if confirmed and self.pending_store is not None:
            # durable before running changes: after a crash in between, a rollback is harmless
            self.pending_store.save(rollback, persist, time.time() + timeout, session.session_id, session.username)
        try:
            changes = await self.replace("running", self._candidate(), session)
        except BaseException:
            if confirmed and self.pending_store is not None:  # put back what was durable before
                if pending is None:
                    self.pending_store.clear()
                else:
                    self.pending_store.save(pending.rollback, pending.persist, pending.deadline,
                                            pending.session_id, pending.username)
            raise
        self.candidate_modified = False
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()
        self.pending = None
        if confirmed:
            self.pending = PendingCommit(rollback, session.session_id, session.username, persist, time.time() + timeout)
            self._arm_timer()
            self.bus.publish(ConfirmedCommitEvent("extend" if pending else "start", session.session_id,
                                                  session.username, timeout, persist))
        elif pending is not None:
            if self.pending_store is not None:
                self.pending_store.clear()
            self.bus.publish(ConfirmedCommitEvent("complete", session.session_id, session.username,
                                                  persist_id=pending.persist))
        return changes

    def _arm_timer(self) -> None:
        assert self.pending is not None
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.pending.deadline - time.time())
        self.pending.timer = loop.call_later(
            delay, lambda: loop.create_task(self._rollback_pending("confirm timeout", "timeout")))

    async def cancel_commit(self, session: SessionInfo) -> None:
        """Roll the pending confirmed commit back now (RFC 6241 s8.4.4.1); the front end checks
        who may."""
        if self.pending is None:
            raise DatastoreError(ErrorKind.FAILED, "no confirmed commit is pending")
        await self._rollback_pending("cancel-commit", "cancel", session)

    async def _rollback_pending(self, why: str, kind: str, session: SessionInfo | None = None) -> None:
        """Restore the configuration from before the confirmed commit. The server does this, so no
        lock (not even the committing session's own) can stop it."""
        pending, self.pending = self.pending, None
        if pending is None:
            return
        if pending.timer:
            pending.timer.cancel()
        log.info("rolling back confirmed commit: %s", why)
        try:
            await self.replace("running", pending.rollback, SYSTEM)
        except DatastoreError as exc:  # e.g. a device refused: keep trying rather than forget it
            log.error("rollback of the confirmed commit failed (%s); retrying in 5 s", exc.message)
            self.pending = pending
            pending.deadline = time.time() + 5
            self._arm_timer()
            return
        if self.pending_store is not None:
            self.pending_store.clear()
        self._discard()
        who = session or SessionInfo(pending.session_id, pending.username)
        self.bus.publish(ConfirmedCommitEvent(kind, who.session_id, who.username,  # type: ignore[arg-type]
                                              persist_id=pending.persist))

    # ------------------------------------------------------------------ the one write path
    async def _transaction(self, name: str, units: list[Unit] | None, mutate: Callable[[DataTree], None],
                           session: SessionInfo, *, test_only: bool = False, big: bool = False,
                           precondition: Callable[[], None] | None = None) -> list[Change]:
        async with self._write[name]:
            if precondition is not None:
                precondition()
            if units is not None and not units:
                return []  # operations that touch nothing (a merge of empty containers) change nothing
            target = self._candidate(writer=True) if name == "candidate" else self.trees[name]
            plans = [self.locality.plan(schema_path_of(u.path), u.removes) for u in units or ()]
            use_slice = bool(units) and all(plan is not None for plan in plans)
            references = tuple(dict.fromkeys(r for plan in plans for r in plan.deferred)) if use_slice else ()  # type: ignore[union-attr]
            guards = tuple((r, u.path) for u, plan in zip(units or (), plans, strict=True)
                           for r in plan.guards) if use_slice else ()  # type: ignore[union-attr]
            slice_units = list(units or ()) if use_slice else None
            slice_paths = [u.path for u in units or ()] if use_slice else None
            journal = name == "running" and self.running_store is not None
            heavy = big or slice_paths is None or len(slice_paths) > OFFLOAD_UNITS

            def compute() -> _Work:
                return self._compute(name, target, slice_units, mutate, journal, whole=heavy,
                                     references=references, guards=guards)

            result = await asyncio.to_thread(compute) if heavy else compute()
            changes = result.changes
            if session.authorize is not None and changes:
                session.authorize(changes)
            if test_only or not changes:
                return changes
            txn = None
            if name == "running" and self.drivers:
                txn = ConfigTransaction(tuple(changes), lambda: target.to_python(),
                                        lambda: self._merged(target, result))
                await self._prepare(txn)
            if journal:
                record = result.record if result.record is not None else journal_record(result.work, slice_paths,
                                                                                           changes)
                if heavy:
                    await asyncio.to_thread(self.running_store.append, record)  # type: ignore[union-attr]
                else:
                    self.running_store.append(record)  # type: ignore[union-attr]
            self._install(name, target, result)
            if name == "running" and not self.candidate_modified:
                self._candidate_stale = True
            elif name == "candidate":
                self.candidate_modified = True
            if journal:
                self._last_write = time.monotonic()
                if self.running_store.snapshot_urgent():  # type: ignore[union-attr]
                    await self._fold()
                elif self.running_store.snapshot_due() and self._idle_fold is None:  # type: ignore[union-attr]
                    self._idle_fold = asyncio.ensure_future(self._fold_when_idle())
            elif name == "startup" and self.startup_store is not None:
                await asyncio.to_thread(self.startup_store.save, self.trees["startup"])
            if txn is not None:
                for driver in self.drivers:
                    try:
                        await driver.commit(txn)
                    except Exception:  # a driver must not fail here; keep serving
                        log.exception("driver %s failed to commit a prepared transaction", driver.name)
        self.bus.publish(CommitEvent(name, tuple(changes), session.session_id, session.username, time.time_ns()))
        return changes

    async def _fold(self) -> None:
        """Fold the journal into a snapshot (caller holds the running write lock): writers wait
        while the configuration is printed; the snapshot is written in the background."""
        if self._folding is not None:
            await self._folding  # the last snapshot is still being written
        finish = await asyncio.to_thread(self.running_store.begin_fold, self.trees["running"])  # type: ignore[union-attr]
        self._folding = asyncio.ensure_future(asyncio.to_thread(_finish_fold, finish))

    async def _fold_when_idle(self) -> None:
        """A due fold waits for a pause in commits (FOLD_IDLE_S without one), as databases
        compact in the background, so a burst of edits is not stopped while 10,000 links are
        printed; a journal that keeps growing is folded anyway (`snapshot_urgent`)."""
        try:
            while True:
                quiet = time.monotonic() - self._last_write
                if quiet >= FOLD_IDLE_S:
                    async with self._write["running"]:
                        if self.running_store is not None and self.running_store.snapshot_due():
                            await self._fold()
                    return
                await asyncio.sleep(FOLD_IDLE_S - quiet)
        finally:
            self._idle_fold = None

    def _compute(self, name: str, target: DataTree, units: list[Unit] | None,
                 mutate: Callable[[DataTree], None], journal: bool, *, whole: bool,
                 references: tuple[Reference, ...] = (), guards: tuple[tuple[Reference, str], ...] = ()) -> _Work:
        """Apply, validate and diff, touching nothing installed (safe in a worker thread).
        `references`: the slice's leafrefs checked by lookup in `target`; `guards`: leafrefs that
        may name an entry the slice deletes, with the entry's path (see `locality.Plan`)."""
        slice_paths = [u.path for u in units] if units is not None else None
        if units is not None:
            work, present = target.extract(units)
        else:
            work, present = target.copy(), None
        before = work.copy()
        try:
            mutate(work)
            work.validate(config_only=True, keep_tops=before if name == "running" else None,
                          deferred=references, outside=target, replaced=present or (), guards=guards)
        except InvalidData as exc:
            raise from_invalid(exc) from None
        changes = before.diff(work)
        result = _Work(work, slice_paths, present, changes)
        if changes and whole and present is not None:
            full = target.copy()
            full.replace_subtrees(present, work)
            result.full = full
        if changes and journal and whole:
            result.record = journal_record(work, slice_paths, changes)
        if changes and units is None and whole:
            result.weight = len(work.print("json"))
        else:
            result.delta = sum(_weight(c.new) - _weight(c.old) for c in changes)
        if result.full is not None:
            _release([before, work])  # installed through `full` (journaled already); free them off the loop
        else:
            before.clear()
        return result

    async def _prepare(self, txn: ConfigTransaction) -> None:
        prepared: list[DeviceDriver] = []
        try:
            for driver in self.drivers:
                await driver.prepare(txn)
                prepared.append(driver)
        except DeviceRefusal as exc:
            for driver in prepared:
                await driver.abort(txn)
            raise DatastoreError(ErrorKind.DEVICE_REFUSED, f"{driver.name}: {exc.message}", exc.path) from None

    def _merged(self, target: DataTree, result: _Work) -> dict:
        if result.full is not None:
            return result.full.to_python()
        if result.units is None:
            return result.work.to_python()
        tree = target.copy()
        tree.replace_subtrees(result.present or [], result.work)
        return tree.to_python()

    def _install(self, name: str, target: DataTree, result: _Work) -> None:
        """Make the result visible (no awaits here: readers see all or nothing)."""
        if result.weight is not None:
            self.weights[name] = result.weight
        else:
            self.weights[name] = max(0, self.weights.get(name, 0) + result.delta)
        if result.units is None:
            self.trees[name] = result.work
        elif result.full is not None:
            self.trees[name] = result.full
        else:
            target.replace_subtrees(result.present or [], result.work)
        self._bump(name)

    def _bump(self, name: str) -> None:
        self.versions[name] = self.versions.get(name, 0) + 1
        self.installed_ns[name] = time.time_ns()


def _release(trees: Sequence[DataTree]) -> None:
    for tree in trees:
        tree.clear()


def _weight(value: object) -> int:
    """Rough printed size of a change's value (a leaf's string, a subtree's JSON-IETF dict)."""
    if value is None:
        return 0
    return len(value) + 16 if isinstance(value, str) else len(repr(value))
