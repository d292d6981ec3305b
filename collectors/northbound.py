"""The collector as one gNMI target: the aggregated qstrata-telemetry tree, built from the series
registry (latest value of every normalized series) and the active alarms.

`TelemetryTarget` has the shape `agents/gnmi`'s `GnmiService` and `SubscribeSession` expect of
an agent's `GnmiTarget` (name, index, encoder, read(), watch(), unrestricted(), authenticate(),
guard, users, datastore.schema), so the collector reuses the agents' gNMI server -- Get, Subscribe
(STREAM sample / on-change / target-defined, ONCE, POLL), encodings, TLS, users and login
limits -- instead of carrying a second one. Set is refused (`TelemetryService`): telemetry is
read-only, configuration goes to the agents.

On-change: every batch the pipeline writes bumps the tree's version; the list entries it touched
are compared with what was handed out last (`compare_under`, the agents' core does the same with
a device's announced state) and watchers get what changed, deletes included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import grpc
from qstrata.agents.access.guard import GuardOptions, LoginGuard
from qstrata.agents.access.users import UserStore
from qstrata.agents.events import EventBus
from qstrata.agents.gnmi.auth import Authenticator, Principal
from qstrata.agents.gnmi.errors import GnmiError
from qstrata.agents.gnmi.service import GnmiService
from qstrata.bindings.jsontree import Operational, OperationalChange, compare_under
from qstrata.bindings.paths import PathSyntaxError, split_data_path
from qstrata.bindings.schema import Schema, get_schema
from qstrata.bindings.schema_index import schema_index
from qstrata.bindings.wire.gnmi_encoding import Encoder

from .model import Alarm, Series
from .timefmt import date_and_time

MODULE = "qstrata-telemetry"
TOP = f"{MODULE}:telemetry"
PREFIX = f"/{TOP}/"
CONFIG = 1
WITH_AGENT = frozenset({"qkd-link", "qfs-link", "memory", "switch-port", "service-unit-state", "application", "refused",
                        "hop", "swap-node", "token-bucket"})
"""Lists of qstrata-telemetry with `agent` and `last-update` leaves."""

_Shape = tuple[str, str, tuple[tuple[str, str], ...], tuple[tuple[str, tuple[tuple[str, str], ...]], ...]] | None
"""(container, list, keys, the elements below the list entry down to the leaf, with their keys:
``(("pair-age-at-use", ()), ("bucket", (("le", "0.5"),)), ("count", ()))``) of a telemetry leaf
path; None: not a leaf under a list entry."""


def _shape(path: str) -> _Shape:
    try:
        elements = split_data_path(path)
    except PathSyntaxError:
        return None
    if len(elements) < 4 or not elements[2][1]:
        return None
    return (elements[1][0], elements[2][0], tuple(elements[2][1].items()),
            tuple((name, tuple(keys.items())) for name, keys in elements[3:]))


class TelemetryTree:
    """JSON-IETF of /qstrata-telemetry:telemetry from the registry; rebuilt once per version."""

    def __init__(self) -> None:
        self.version = 0
        self._built = (-1, {})
        self._shapes: dict[str, _Shape] = {}

    def changed(self) -> None:
        self.version += 1

    def get(self, series: Iterable[Series], alarms: Iterable[Alarm]) -> dict[str, Any]:
        if self._built[0] != self.version:
            self._built = (self.version, self.build(series, alarms))
        return self._built[1]

    def build(self, series: Iterable[Series], alarms: Iterable[Alarm]) -> dict[str, Any]:
        shapes = self._shapes
        entries: dict[tuple[str, str, tuple], dict[str, Any]] = {}
        stamps: dict[tuple[str, str, tuple], int] = {}
        for s in series:
            path = s.path
            if not path.startswith(PREFIX) or s.value is None:
                continue
            shape = shapes.get(path, False)
            if shape is False:
                shape = shapes[path] = _shape(path)
            if shape is None:
                continue
            container, lst, keys, below = shape
            ident = (container, lst, keys)
            entry = entries.get(ident)
            if entry is None:
                entry = entries[ident] = dict(keys)
                if lst in WITH_AGENT and s.target:
                    entry["agent"] = s.target
            node = entry
            for name, inner in below[:-1]:  # a container (a histogram) or a list entry (its bucket)
                if not inner:
                    node = node.setdefault(name, {})
                    continue
                items = node.setdefault(name, [])
                found = next((i for i in items if all(i.get(k) == v for k, v in inner)), None)
                if found is None:
                    found = dict(inner)
                    items.append(found)
                node = found
            node[below[-1][0]] = s.value
            if s.ts > stamps.get(ident, 0):
                stamps[ident] = s.ts
        body: dict[str, Any] = {}
        for (container, lst, _keys), entry in entries.items():
            if lst in WITH_AGENT:
                entry["last-update"] = date_and_time(stamps[(container, lst, _keys)])
            body.setdefault(container, {}).setdefault(lst, []).append(entry)
        active = [a.to_yang() for a in alarms]
        if active:
            body["alarms"] = {"alarm": active}
        return {TOP: body} if body else {}


class _Schema:
    """What `GnmiService.capabilities` reads of an agent's datastore."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema


class TelemetryTarget:
    """The collector's telemetry as a gNMI target (see the module docstring)."""

    def __init__(self, name: str, pipeline: Any, state_dir: Path, guard: GuardOptions | None = None) -> None:
        schema = get_schema((MODULE,))
        self.name = name
        self.pipeline = pipeline
        self.datastore = _Schema(schema)
        self.index = schema_index(schema)
        self.encoder = Encoder(schema)
        self.bus = EventBus()
        self.users = UserStore(state_dir)
        self.guard = LoginGuard(guard or GuardOptions())
        self.auth = Authenticator(self.users, self.guard)
        self.tree = TelemetryTree()
        self._watchers: list[Callable[[OperationalChange], None]] = []
        self._handed: dict = {}

    def read(self, data_type: int, principal: Principal | None = None) -> Operational:
        return Operational(self.data(data_type, principal), time.time_ns())

    def unrestricted(self, principal: Principal) -> bool:
        return True  # see `data`

    def watch(self, callback: Callable[[OperationalChange], None]) -> Callable[[], None]:
        """Hand `callback` what changes (on-change subscribers); returns the unsubscribe."""
        if not self._watchers:
            self._handed = self.data(0)
        self._watchers.append(callback)
        return lambda: self._watchers.remove(callback) if callback in self._watchers else None

    def data(self, data_type: int, principal: Principal | None = None) -> dict:
        """Every user of the collector reads all of its telemetry (no NACM here: the collector
        holds no configuration of the agents, only what they published)."""
        if data_type == CONFIG:
            return {}
        p = self.pipeline
        return self.tree.get(p.registry, p.active_alarms.values())

    async def authenticate(self, metadata: tuple | None, peer: str) -> Principal:
        return await self.auth.authenticate(metadata, peer)

    def changed(self, paths: tuple[str, ...]) -> None:
        """New values under `paths` (list entries): on-change subscribers look again."""
        self.tree.changed()
        if not paths or not self._watchers:
            return
        after = self.data(0)
        change = OperationalChange(time.time_ns(), counts=dict.fromkeys(paths, 1))
        compare_under(self.index, list(paths), self._handed, after, change)
        self._handed = after
        change.settle()
        if change:
            for watcher in list(self._watchers):
                watcher(change)


class TelemetryService(GnmiService):
    """The agents' gNMI service over the collector's one target, Set refused."""

    async def set(self, request, context):  # noqa: ANN001 (grpc types)
        raise GnmiError(grpc.StatusCode.UNIMPLEMENTED,
                        "the collector's telemetry is read-only: send Set to the agent itself")
