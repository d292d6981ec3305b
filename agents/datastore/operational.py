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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qstrata.agents.events import CommitEvent, DeviceEvent
from qstrata.bindings.jsontree import Json, leaves_at, merge, vanished
from qstrata.bindings.paths import split_data_path
from qstrata.bindings.schema_index import SchemaNode, schema_index
from qstrata.bindings.tree import DataTree
from qstrata.bindings.validate import InvalidData

if TYPE_CHECKING:
    from .store import Datastore

log = logging.getLogger("qstrata.datastore")

PRINT_WHOLE_AFTER = 64
"""A commit that changed more subtrees than this has its change read from one print of running
instead of one print per subtree."""


@dataclass(frozen=True, slots=True)
class Operational:
    """One operational read: `data` (JSON-IETF, shared: never modify it) produced at `time_ns`
    (Unix ns)."""

    data: dict
    time_ns: int


@dataclass(slots=True)
class OperationalChange:
    """What changed since the last change handed out.

    `updates`: leaf (or leaf-list) data path -> (schema node, new JSON-IETF value).
    `deletes`: data paths of nodes no longer there, the highest that went (a list entry rather
    than each of its leaves). `counts`: how many announcements named each announced path (a
    path announced more than once before this change was computed; gNMI's duplicates)."""

    time_ns: int
    updates: dict[str, tuple[SchemaNode, Json]] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class OperationalRead:
    """The core's read side (see the module docstring); `Datastore` holds one."""

    def __init__(self, datastore: Datastore) -> None:
        self.datastore = datastore
        self.index = schema_index(datastore.schema)
        self._config: tuple[int, dict] | None = None
        self._state: tuple[tuple, dict] | None = None
        self._state_generation = 0
        self._snapshot: tuple[tuple, dict] | None = None
        self._watchers: list[Callable[[OperationalChange], None]] = []
        self._config_dirty: dict[str, int] = {}
        self._state_dirty: dict[str, int] = {}
        self._handed_state: dict | None = None
        self._scheduled = False
        datastore.bus.subscribe(self._on_event, CommitEvent, DeviceEvent)

    # ---------------------------------------------------------------- reads
    def read(self, *, config_only: bool = False) -> Operational:
        config = self.config()
        if config_only:
            return Operational(config, self.datastore.installed_ns.get("running", 0) or time.time_ns())
        state = self.state()
        key = (self.datastore.versions.get("running", 0), self._state_generation)
        if self._snapshot is None or self._snapshot[0] != key:
            self._snapshot = (key, merge(self.index, config, state) if state else config)
        return Operational(self._snapshot[1], self.time_ns())

    def time_ns(self) -> int:
        """When the values read now were produced (wall clock): the later of the devices' last
        settled state and the last commit; values do not change in between."""
        settled = [driver.clock.settled_wall_ns for driver in self.datastore.drivers]
        if not settled or not all(settled):
            return time.time_ns()
        return max(max(settled), self.datastore.installed_ns.get("running", 0))

    def config(self) -> dict:
        """Running as JSON-IETF with defaults, printed once per commit."""
        version = self.datastore.versions.get("running", 0)
        if self._config is None or self._config[0] != version:
            self._config = (version, _print(self.datastore.get_config("running")))
        return self._config[1]

    def state(self) -> dict:
        """The devices' state, then the agent's own sources merged over it; one read per tick."""
        key = (self._state_generation, *(driver.clock.settled_ns for driver in self.datastore.drivers))
        if self._state is not None and self._state[0] == key:
            return self._state[1]
        state: dict = {}
        for read in [driver.read_state for driver in self.datastore.drivers] + list(self.datastore.state_sources):
            extra = read()
            if extra:
                state = merge(self.index, state, extra) if state else extra
        self._state_generation += 1
        key = (self._state_generation, *key[1:])
        self._state = (key, state)
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
            paths, dirty = [c.path for c in event.changes], self._config_dirty
        elif event.kind == "state":
            paths, dirty = list(event.paths), self._state_dirty
        else:
            return
        # state read before an announced change is stale, even within one device tick: the
        # agent's own state (its KME) changes between ticks and follows the configuration
        self._state = None
        if not self._watchers:
            return
        for path in paths:
            dirty[path] = dirty.get(path, 0) + 1
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._hand_out)

    def _hand_out(self) -> None:
        """Compute one change for every announcement since the last, and hand it out."""
        self._scheduled = False
        config_dirty, self._config_dirty = self._config_dirty, {}
        state_dirty, self._state_dirty = self._state_dirty, {}
        if not self._watchers:
            return
        change = OperationalChange(self.time_ns(), counts={**state_dirty, **config_dirty})
        if config_dirty:
            self._config_change(list(config_dirty), change)
        state = self.state()
        if state_dirty:
            self._state_change(list(state_dirty), self._handed_state or {}, state, change)
        self._handed_state = state
        if change.updates or change.deletes:
            for watcher in list(self._watchers):
                try:
                    watcher(change)
                except Exception:
                    log.exception("operational watcher %r failed", watcher)

    def _config_change(self, paths: list[str], change: OperationalChange) -> None:
        """New values under each changed path of running; a path with nothing left is a delete."""
        running = self.datastore.get_config("running")
        whole = self.config() if len(paths) > PRINT_WHOLE_AFTER else None
        for path in _outermost(paths):
            tree = whole if whole is not None else _print(running.select(path))
            found = leaves_at(self.index, tree, path)
            if found:
                change.updates.update(found)
            else:
                change.deletes.append(path)

    def _state_change(self, paths: list[str], before: dict, after: dict, change: OperationalChange) -> None:
        """Leaves under each announced path that differ between the last state handed out and
        now; what went is deleted at the highest node gone (one delete per list entry), unless
        running still holds that node (its state leaves went, its configuration stays)."""
        running = self.datastore.get_config("running")
        for path in _outermost(paths):
            old, new = leaves_at(self.index, before, path), leaves_at(self.index, after, path)
            for leaf, (node, value) in new.items():
                was = old.get(leaf)
                if was is None or was[1] != value:
                    change.updates[leaf] = (node, value)
            gone = [leaf for leaf in old if leaf not in new]
            for anchor in vanished(gone, set(new), len(split_data_path(path))):
                if anchor in old or not running.exists(anchor):
                    change.deletes.append(anchor)
                else:
                    change.deletes += [leaf for leaf in gone if leaf.startswith(anchor + "/")]


def _print(tree: DataTree) -> dict:
    text = "" if tree.is_empty() else tree.print("json", with_defaults="report-all")
    return json.loads(text) if text else {}


def _outermost(paths: list[str]) -> list[str]:
    """The paths that are not below another of them (each subtree is read once)."""
    kept: set[str] = set()
    out: list[str] = []
    for path in sorted(set(paths), key=len):
        if not any(path[:i] in kept for i, ch in enumerate(path) if ch == "/" and i):
            kept.add(path)
            out.append(path)
    return out
