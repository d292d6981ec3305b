"""The one operational read every front end uses, and the changes it hands to subscribers.

Front ends read what the core hands them, never the device: NETCONF's <get>, gNMI's Get and
Subscribe and RESTCONF's GET all come here (the way an SDN application reads the controller's
view, not the switch's ASIC). The API is small on purpose:

- `Datastore.read_operational()` -> `Operational`: ``data`` is running (printed with defaults,
  so a leaf back at its default is still a value) merged with the devices' state and the
  agent's own (its KME's), as one JSON-IETF (RFC 7951) dict; ``time_ns`` is when those values
  were produced, on the wall clock (gNMI 2.1: when the data was collected from its source): the
  later of the device's last settled state and the last commit. ``data`` is shared by every
  reader until running or the state changes: never modify it. ``config_only=True`` reads
  running alone (printed with defaults, cached per commit).
- `Datastore.operational()` -> the same as a `DataTree` (NETCONF renders XML from trees).
- `Datastore.watch_operational(callback)` -> unsubscribe: `callback(OperationalChange)` is
  called (synchronously; only record, never block) with what changed, once per burst of
  commits and device announcements: leaf paths with their new values, and the paths of nodes
  that are gone (a list entry, a container, a leaf without a default).

Caching: the devices' state is read once per device tick (`DeviceClock.settled_ns`) and again
after anything announces a state change (a `DeviceEvent` "state", a commit to running: the KME's
figures follow the configuration); running is printed once per commit. A commit's change is
computed from the changed subtrees of running alone, so a commit never costs a print of the
whole configuration.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from qstrata.agents.events import CommitEvent, DeviceEvent
from qstrata.bindings.diff import Change
from qstrata.bindings.jsontree import (
    Operational,
    OperationalChange,
    compare_under,
    leaves_at,
    merge,
)
from qstrata.bindings.paths import split_data_path
from qstrata.bindings.schema_index import SchemaNode, schema_index
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import InvalidData

if TYPE_CHECKING:
    from .store import Datastore

__all__ = ["Operational", "OperationalChange", "OperationalRead"]

log = logging.getLogger("qstrata.datastore")

PRINT_WHOLE_AFTER = 64
"""A commit that changed more subtrees than this has its change read from one print of running
instead of one print per subtree."""


class OperationalRead:
    """The core's read side (see the module docstring); `Datastore` holds one."""

    def __init__(self, datastore: Datastore) -> None:
        self.datastore = datastore
        self.index = schema_index(datastore.schema)
        self._config: tuple[int, dict] | None = None
        self._state: tuple[object, dict] | None = None
        self._state_generation = 0
        self._snapshot: tuple[tuple, dict] | None = None
        self._watchers: list[Callable[[OperationalChange], None]] = []
        self._commits: list[Change] = []
        self._state_dirty: dict[str, None] = {}
        self._dirty: dict[str, int] = {}
        self._handed_state: dict | None = None
        self._scheduled = False
        datastore.bus.subscribe(self._on_event, CommitEvent, DeviceEvent)

    # ---------------------------------------------------------------- reads
    def read(self, *, config_only: bool = False) -> Operational:
        cached = self._config
        config = cached[1] if cached is not None and cached[0] == self.datastore.versions.get("running", 0) \
            else self.config()
        if config_only:
            return Operational(config, self.datastore.installed_ns.get("running", 0) or time.time_ns())
        state = self.state()
        if not state:
            return Operational(config, self.time_ns())
        key = (self.datastore.versions.get("running", 0), self._state_generation)
        if self._snapshot is None or self._snapshot[0] != key:
            self._snapshot = (key, merge(self.index, config, state))
        return Operational(self._snapshot[1], self.time_ns())

    def time_ns(self) -> int:
        """When the values read now were produced (wall clock): the later of the devices' last
        settled state and the last commit; values do not change in between."""
        latest = 0
        for driver in self.datastore.drivers:
            wall = driver.clock.settled_wall_ns
            if not wall:  # not settled yet
                return time.time_ns()
            latest = wall if wall > latest else latest
        if not latest:
            return time.time_ns()
        installed = self.datastore.installed_ns.get("running", 0)
        return latest if latest > installed else installed

    def config(self) -> dict:
        """Running as JSON-IETF with defaults, printed once per commit."""
        version = self.datastore.versions.get("running", 0)
        if self._config is None or self._config[0] != version:
            self._config = (version, _print(self.datastore.get_config("running")))
        return self._config[1]

    def state(self) -> dict:
        """The devices' state, then the agent's own sources merged over it; one read per tick."""
        drivers = self.datastore.drivers
        tick = drivers[0].clock.settled_ns if len(drivers) == 1 else tuple(d.clock.settled_ns for d in drivers)
        cached = self._state
        if cached is not None and cached[0] == tick:
            return cached[1]
        state: dict = {}
        for driver in drivers:
            extra = driver.read_state()
            if extra:
                state = merge(self.index, state, extra) if state else extra
        for source in self.datastore.state_sources:  # the agent's own (its KME's): after the devices'
            extra = source()
            if extra:
                state = merge(self.index, state, extra) if state else extra
        self._state_generation += 1
        self._state = (tick, state)
        return state

    def tree(self) -> DataTree:
        """The read as a libyang tree (running copied, the state merged in)."""
        tree = self.datastore.get_config("running").copy()
        state = self.state()
        if state:
            try:
                tree.merge(DataTree.from_python(state, schema=self.datastore.schema, validate=False))
            except InvalidData as exc:
                log.warning("the devices returned invalid state: %s", exc)
        return tree

    # ---------------------------------------------------------------- changes
    def watch(self, callback: Callable[[OperationalChange], None]) -> Callable[[], None]:
        """Call `callback` with every change from now on; returns the unsubscribe."""
        if not self._watchers:
            self._handed_state = self.state()
        self._watchers.append(callback)

        def unwatch() -> None:
            if callback in self._watchers:
                self._watchers.remove(callback)

        return unwatch

    def _on_event(self, event: CommitEvent | DeviceEvent) -> None:
        if isinstance(event, CommitEvent):
            if event.datastore != "running":
                return
            paths = [c.path for c in event.changes]
        elif event.kind == "state":
            paths = list(event.paths)
        else:
            return
        # state read before an announced change is stale, even within one device tick: the
        # agent's own state (its KME) changes between ticks and follows the configuration
        self._state = None
        if not self._watchers:
            return
        if isinstance(event, CommitEvent):
            self._commits += event.changes
        for path in paths:
            self._dirty[path] = self._dirty.get(path, 0) + 1
            if isinstance(event, DeviceEvent):
                self._state_dirty[path] = None
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._hand_out)

    def _hand_out(self) -> None:
        """Compute one change for every announcement since the last, and hand it out."""
        self._scheduled = False
        commits, self._commits = self._commits, []
        state_dirty, self._state_dirty = self._state_dirty, {}
        counts, self._dirty = self._dirty, {}
        if not self._watchers:
            return
        change = OperationalChange(self.time_ns(), counts=counts)
        if commits:
            self._config_change(commits, change)
        if state_dirty:  # a commit alone reads no state: what it changed is in running
            state = self.state()
            self._state_change(list(state_dirty), self._handed_state or {}, state, change)
            self._handed_state = state
        change.settle()
        if change.updates or change.deletes:
            for watcher in list(self._watchers):
                try:
                    watcher(change)
                except Exception:
                    log.exception("operational watcher %r failed", watcher)

    def _config_change(self, commits: list[Change], change: OperationalChange) -> None:
        """Each change of running as leaves, read from running as it is now (with defaults: a
        leaf removed back to its default is an update, an entry created brings its defaults):
        the leaves at a change's path are updates; a path with nothing left is a delete. A
        change names the leaf or the entry that changed (`bindings.tree.diff_trees`), so no
        narrowing is needed; reading running now also folds a burst of commits into its result."""
        running = self.datastore.get_config("running")
        whole = self.config() if len(commits) > PRINT_WHOLE_AFTER else None
        printed: dict[str, dict] = {}
        entries: dict = {}  # list indexes of the whole print, built once
        for c in commits:
            path = _leaf_list(c.path)
            if self._node(path) is None:
                continue
            if path not in printed:
                printed[path] = whole if whole is not None else _print(running.select(path))
            now = leaves_at(self.index, printed[path], path, entries if whole is not None else None)
            if not now:
                change.delete(path)
            for leaf, (leaf_node, value) in now.items():
                change.update(leaf, leaf_node, value)

    def _node(self, path: str) -> SchemaNode | None:
        steps, module = [], None
        for name, _ in split_data_path(path):
            prefix, _, local = name.rpartition(":")
            module = prefix or module
            steps.append((module or "", local))
        return self.index.node(steps)

    def _state_change(self, paths: list[str], before: dict, after: dict, change: OperationalChange) -> None:
        running = self.datastore.get_config("running")
        compare_under(self.index, paths, before, after, change, kept=running.exists)


def _print(tree: DataTree) -> dict:
    text = "" if tree.is_empty() else tree.print("json", with_defaults="report-all")
    return json.loads(text) if text else {}


def _leaf_list(path: str) -> str:
    """A leaf-list entry's path (``/a/b[.='x']``) as the leaf-list's: gNMI sends it whole."""
    if path.endswith("]"):
        cut = path.rfind("[.=")
        if cut > path.rfind("/"):
            return path[:cut]
    return path

