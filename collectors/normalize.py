"""Agent data -> the qstrata-telemetry model: one table, one loop, no I/O.

`RULES` says where each known leaf of the agents' models goes in qstrata-telemetry (ETSI GS QKD
015 link status, key rates and QBER; qstrata-ss key stores and service units; qstrata-qfs
entanglement links and memories; optical-switch port power), and which list keys it takes from
the agent's path or from the node's identity (its ETSI ``qkdn_id``, KME ``kme-id`` or QFS
``uuid``). Everything else is passed through as a raw series under the agent's own path: unknown
data is kept, never dropped. Paths already in qstrata-telemetry map to themselves, so
normalizing twice changes nothing (a collector reading another collector's NATS stream
re-normalizes for free).

A few telemetry leaves are derived from readings rather than copied (`Rule.convert`, `rate`,
`per`): the ETSI 014 key delivery figures of the KMEs become per application keys and bits
delivered per second (from the counters' last two readings and their timestamps) and the mean
request latency in seconds (from the KME's latency sum and request count); leaf-lists (slave SAEs,
the route) become one space-separated string, one value per series.

The hot path is one dict lookup per update: the route of a (target, path) is resolved once and
cached as the `Series` itself, or as a small handler object for the few leaves with side
effects (identities, service-unit states, derived leaves). The normalizer keeps per-target state
(identities, routes, unit counts, previous readings) but does no I/O and reads no clock: the same
updates give the same series.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from qstrata.bindings.generated import etsi_qkd_sdn_node as etsi
from qstrata.bindings.generated import optical_switch as opsw
from qstrata.bindings.generated import qstrata_qfs as qfs
from qstrata.bindings.generated import qstrata_ss as ss
from qstrata.bindings.generated import qstrata_telemetry as qtel
from qstrata.bindings.leafinfo import leaf_info
from qstrata.bindings.paths import PathSyntaxError, join_data_path, split_data_path

from . import aggregates
from .aggregates import PairTracker, WindowCounter, short_lived
from .model import Batch, Series, TargetStatus, Update, Value
from .naming import series_labels, series_name

log = logging.getLogger("qstrata.collectors.normalize")

TEL = qtel.telemetry.PATH
TEL_PREFIX = TEL + "/"
NODE = "@node"
"""Key source: the reporting node's identity (learned from its identity leaf)."""
TARGET = "@target"
"""Key source: the target (agent) name."""

Elements = list[tuple[str, dict[str, str]]]
NS_PER_S = 1_000_000_000
LABEL_CACHE = 500_000
"""Entries kept for sharing label tuples and resource paths between series; cleared when full (it
only saves memory, and keys of deleted entities would otherwise pile up)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One agent leaf with a place in qstrata-telemetry."""

    source: str
    """Schema path in the agent's model."""
    entry: str
    """Schema path of the qstrata-telemetry list the value goes to."""
    leaf: str
    """Leaf name in that list entry."""
    keys: tuple[tuple[str, str], ...]
    """(telemetry key, where from): `NODE`, `TARGET`, or the name of a key in the agent's path."""
    resource: str
    """Name of the list in the agent's path that is the alarm's resource (the path is cut there)."""
    when: tuple[str, str] | None = None
    """(agent key, value) that must match: phys_perf holds QBER among other measures."""
    convert: Callable[[Value], Value] | None = None
    """The telemetry value from the agent's (the agent's leaf is then also kept raw)."""
    rate: tuple[str, int] | None = None
    """(telemetry leaf, decimals): a counter whose readings also give its rate per second there."""
    per: tuple[str, float] | None = None
    """(agent counter, scale): the telemetry leaf is d(this) / d(that counter) x scale over the
    readings between two timestamps (a mean per event); the agent's leaf is kept raw."""


def id_list(value: Value) -> Value:
    """A leaf-list as the gNMI input gives it (JSON text) -> identifiers separated by spaces."""
    if not isinstance(value, str) or not value.startswith("["):
        return value
    try:
        return " ".join(str(v) for v in json.loads(value))
    except ValueError:
        return value


_link = etsi.qkd_node.qkd_links.qkd_link
_perf = _link.qkdl_performance
_store = ss.service_stratum.kme.key_stores.key_store
_elink = qfs.qfs_node.entanglement_links.link
_memory = qfs.qfs_node.memories.memory
_app = etsi.qkd_node.qkd_applications.qkd_app
_delivery = ss.key_delivery
_hop = ss.service_stratum.kme.key_relay.hop
_bucket = ss.service_stratum.kme.sessions.session
_swaps = qfs.qfs_node.swap_statistics
_t = qtel.telemetry
_APP_KEYS = (("node", NODE), ("app-id", "app_id"))
_HOP_KEYS = (("node", NODE), ("link-id", "qkdl-id"))
_BUCKET_KEYS = (("node", NODE), ("session-id", "session-id"))

RULES: dict[str, Rule] = {r.source: r for r in (
    Rule(_link.qkdl_status, _t.qkd_links.qkd_link.PATH, "status", (("node", NODE), ("link-id", "qkdl_id")), "qkd_link"),
    Rule(_perf.skr, _t.qkd_links.qkd_link.PATH, "secret-key-rate", (("node", NODE), ("link-id", "qkdl_id")), "qkd_link"),
    Rule(_perf.eskr, _t.qkd_links.qkd_link.PATH, "effective-key-rate", (("node", NODE), ("link-id", "qkdl_id")),
         "qkd_link"),
    Rule(_perf.expected_consumption, _t.qkd_links.qkd_link.PATH, "consumption-rate",
         (("node", NODE), ("link-id", "qkdl_id")), "qkd_link"),
    Rule(_perf.phys_perf.value, _t.qkd_links.qkd_link.PATH, "qber", (("node", NODE), ("link-id", "qkdl_id")),
         "qkd_link", when=("perf_type", "etsi-qkd-node-types:QBER")),
    Rule(_store.stored_bits, _t.qkd_links.qkd_link.PATH, "key-available", (("node", NODE), ("link-id", "qkdl-id")),
         "key-store"),
    Rule(_store.capacity_bits, _t.qkd_links.qkd_link.PATH, "store-capacity", (("node", NODE), ("link-id", "qkdl-id")),
         "key-store"),
    Rule(_elink.status, _t.qfs_links.qfs_link.PATH, "status", (("node", NODE), ("link-id", "link-id")), "link"),
    Rule(_elink.generation_rate, _t.qfs_links.qfs_link.PATH, "generation-rate", (("node", NODE), ("link-id", "link-id")),
         "link"),
    Rule(_elink.delivered_fidelity, _t.qfs_links.qfs_link.PATH, "fidelity", (("node", NODE), ("link-id", "link-id")),
         "link"),
    Rule(_memory.occupancy, _t.memories.memory.PATH, "occupancy", (("node", NODE), ("memory-id", "memory-id")), "memory"),
    Rule(_memory.capacity, _t.memories.memory.PATH, "capacity", (("node", NODE), ("memory-id", "memory-id")), "memory"),
    Rule(_memory.capacity_unit, _t.memories.memory.PATH, "capacity-unit", (("node", NODE), ("memory-id", "memory-id")),
         "memory"),
    Rule(opsw.opm_power.port.power, _t.switch_ports.switch_port.PATH, "optical-power",
         (("device", TARGET), ("port-id", "port-id")), "port"),
    Rule(_store.filled_bits, _t.qkd_links.qkd_link.PATH, "store-filled-bits", (("node", NODE), ("link-id", "qkdl-id")),
         "key-store"),
    Rule(_store.drained_bits, _t.qkd_links.qkd_link.PATH, "store-drained-bits",
         (("node", NODE), ("link-id", "qkdl-id")), "key-store"),
    Rule(_app.server_app_id, _t.key_delivery.application.PATH, "master-sae", _APP_KEYS, "qkd_app"),
    Rule(_app.client_app_id, _t.key_delivery.application.PATH, "slave-saes", _APP_KEYS, "qkd_app", convert=id_list),
    Rule(_delivery.route, _t.key_delivery.application.PATH, "route", _APP_KEYS, "qkd_app", convert=id_list),
    Rule(_delivery.requests, _t.key_delivery.application.PATH, "requests", _APP_KEYS, "qkd_app"),
    Rule(_delivery.keys_delivered, _t.key_delivery.application.PATH, "delivered-keys", _APP_KEYS, "qkd_app",
         rate=("delivered-keys-per-second", 3)),
    Rule(_delivery.bits_delivered, _t.key_delivery.application.PATH, "delivered-bits", _APP_KEYS, "qkd_app",
         rate=("delivered-bits-per-second", 0)),
    Rule(_delivery.latency_sum, _t.key_delivery.application.PATH, "latency-seconds", _APP_KEYS, "qkd_app",
         per=(_delivery.requests, 1e-6)),
    Rule(_delivery.refused.count, _t.key_delivery.refused.PATH, "requests", (*_APP_KEYS, ("reason", "reason")),
         "qkd_app"),
    Rule(_hop.next_hop_kme, _t.key_relay.hop.PATH, "next-hop", _HOP_KEYS, "hop"),
    Rule(_hop.keys, _t.key_relay.hop.PATH, "relayed-keys", _HOP_KEYS, "hop"),
    Rule(_hop.consumed_bits, _t.key_relay.hop.PATH, "consumed-bits", _HOP_KEYS, "hop"),
    *(Rule(getattr(_bucket, leaf), _t.key_delivery.token_bucket.PATH, leaf, _BUCKET_KEYS, "session")
      for leaf in ("rate", "burst", "tokens", "admitted", "rejected")),
    Rule(_swaps.swaps_attempted, _t.swaps.swap_node.PATH, "attempted", (("node", NODE),), "swap-statistics"),
    Rule(_swaps.swaps_succeeded, _t.swaps.swap_node.PATH, "succeeded", (("node", NODE),), "swap-statistics"),
    Rule(_swaps.last_swap_fidelity, _t.swaps.swap_node.PATH, "last-fidelity", (("node", NODE),), "swap-statistics"),
)}

MEAN_OF: dict[str, Rule] = {r.per[0]: r for r in RULES.values() if r.per is not None}
"""Agent counter -> the rule of the mean it is the denominator of (requests -> latency)."""


def _gates() -> dict[str, str]:
    """Each telemetry leaf normalized from the same agent list entry as a `status` leaf -> that
    status leaf (schema paths)."""
    status = {(r.entry, r.resource): f"{r.entry}/{r.leaf}" for r in RULES.values() if r.leaf == "status"}
    return {f"{r.entry}/{r.leaf}": status[(r.entry, r.resource)] for r in RULES.values()
            if r.leaf != "status" and (r.entry, r.resource) in status}


GATES: dict[str, str] = _gates()
"""Telemetry leaf -> the link status leaf that says whether its value is a measurement. Derived
from `RULES`: a leaf read from the same agent list entry as a link's status (ETSI `qkd_link`:
secret-key-rate, effective-key-rate, consumption-rate, qber; QFS `link`: generation-rate,
fidelity) describes that link, and a link that is not up reports placeholders (QBER 0 while
PENDING); a leaf from another resource (the key store's key-available) does not depend on it."""


IDENTITY_LEAVES: frozenset[str] = frozenset({etsi.qkd_node.qkdn_id, ss.service_stratum.kme.kme_id, qfs.qfs_node.uuid})
"""Leaves that name the reporting node; their value is the `NODE` key of its telemetry."""

UNIT_STATE = ss.service_stratum.service_units.service_unit.state
UNIT_COUNT_ENTRY = _t.service_units.service_unit_state.PATH
AGENT_ENTRY = _t.agents.agent.PATH


@functools.lru_cache(maxsize=256)
def _entry_parts(entry: str) -> tuple[tuple[tuple[str, dict[str, str]], ...], str, str]:
    """(parent elements, parent path, list name) of a telemetry list's schema path."""
    elements = tuple(split_data_path(entry))
    return elements[:-1], entry[: entry.rfind("/")], elements[-1][0]


def _predicates(keys: list[tuple[str, str]]) -> str:
    return "".join(f"[{k}='{v}']" if "'" not in v else f'[{k}="{v}"]' for k, v in keys)


def telemetry_leaf(entry: str, keys: list[tuple[str, str]], leaf: str) -> tuple[str, Elements]:
    """Data path and elements of one qstrata-telemetry leaf: ``entry[k='v']...`` + ``/leaf``."""
    parent, parent_path, name = _entry_parts(entry)
    return f"{parent_path}/{name}{_predicates(keys)}/{leaf}", [*parent, (name, dict(keys)), (leaf, {})]


def telemetry_path(entry: str, keys: list[tuple[str, str]], leaf: str) -> str:
    return telemetry_leaf(entry, keys, leaf)[0]


def resource_path(elements: Elements, list_name: str) -> str:
    """The agent's data path cut after the list entry `list_name` (the faulty resource)."""
    for i in range(len(elements) - 1, -1, -1):
        if elements[i][0].rsplit(":", 1)[-1] == list_name and elements[i][1]:
            return join_data_path(elements[: i + 1])
    return join_data_path(elements[:-1])


class SeriesRegistry:
    """Every live series by target and path; listeners hear of new ones (alarm rules attach)."""

    def __init__(self) -> None:
        self._next_id = 1
        self.by_target: dict[str, dict[str, Series]] = {}
        self._shapes: dict[str, tuple[str, str, tuple[str, ...], bool, bool]] = {}
        self._labels: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}
        self.listeners: list[Callable[[Series], None]] = []

    def get_or_create(self, target: str, path: str, elements: Elements, resource: str) -> Series:
        paths = self.by_target.get(target)
        if paths is None:
            paths = self.by_target[target] = {}
        series = paths.get(path)
        if series is not None:
            return series
        schema_path = "/".join(name for name, _ in elements)
        shape = self._shapes.get(schema_path)
        if shape is None:  # name, label names and type are the same for every series of a schema node
            info = leaf_info("/" + schema_path)
            names = tuple(sys.intern(k) for k, _ in series_labels(elements))
            shape = self._shapes[schema_path] = (sys.intern("/" + schema_path), sys.intern(series_name(elements)),
                                                 names, bool(info and info.counter), bool(info and info.numeric))
        full_schema_path, name, label_names, counter, numeric = shape
        labels = tuple(zip(label_names, (v for _, keys in elements for v in keys.values()), strict=True))
        shared = self._labels.get(labels)  # the leaves of one entity (a link's rates, QBER...) share a tuple
        if shared is None:
            if len(self._labels) >= LABEL_CACHE:  # keys of deleted entities (service units come and go)
                self._labels.clear()
            shared = tuple((k, sys.intern(v)) for k, v in labels)
            self._labels[shared] = shared  # keyed by itself: one tuple per entity, not two
        series = Series(self._next_id, target, path, full_schema_path, name, shared, counter=counter, numeric=numeric,
                        resource=resource)
        self._next_id += 1
        paths[path] = series
        for listener in self.listeners:
            listener(series)
        return series

    def remove(self, series: Series) -> None:
        paths = self.by_target.get(series.target)
        if paths is not None and paths.get(series.path) is series:
            del paths[series.path]

    def drop_target(self, target: str) -> list[Series]:
        return list(self.by_target.pop(target, {}).values())

    def __iter__(self) -> Iterator[Series]:
        for paths in list(self.by_target.values()):
            yield from list(paths.values())

    def __len__(self) -> int:
        return sum(len(paths) for paths in self.by_target.values())


class _Handler:
    """A cached route with side effects; plain series routes are the `Series` itself."""

    __slots__ = ("raw",)

    def __init__(self, raw: Series | None) -> None:
        self.raw = raw
        """The agent's leaf as a series of its own; None for leaves of short-lived entries."""

    def apply(self, norm: Normalizer, view: _TargetView, value: Value, ts: int, batch: Batch) -> None:
        raise NotImplementedError

    def delete(self, norm: Normalizer, view: _TargetView, ts: int, batch: Batch) -> None:
        pass

    def derived(self) -> tuple[Series, ...]:
        """Telemetry series this handler computes (besides `raw`)."""
        return ()


def _emit(series: Series, value: Value, ts: int, batch: Batch) -> None:
    series.value = value
    series.ts = ts
    batch.add(series, value, ts)


class _Converted(_Handler):
    """An agent leaf, kept raw, whose telemetry leaf is a function of its value (`Rule.convert`)."""

    __slots__ = ("out", "convert")

    def __init__(self, raw: Series, out: Series, convert: Callable[[Value], Value]) -> None:
        super().__init__(raw)
        self.out = out
        self.convert = convert

    def apply(self, norm: Normalizer, view: _TargetView, value: Value, ts: int, batch: Batch) -> None:
        if value is None:
            norm.drop(self.out, ts, batch)
        else:
            _emit(self.out, self.convert(value), ts, batch)

    def delete(self, norm: Normalizer, view: _TargetView, ts: int, batch: Batch) -> None:
        self.apply(norm, view, None, ts, batch)

    def derived(self) -> tuple[Series, ...]:
        return (self.out,)


class _PerSecond(_Handler):
    """A normalized counter whose readings also give its rate (`Rule.rate`): the increase between
    the two last readings over the time between their timestamps. A reading with the timestamp of
    the previous one gives no interval (the older reading stays the base); a counter that went
    down restarted (the KME's discontinuity): its next reading is the new base."""

    __slots__ = ("out", "digits", "last")

    def __init__(self, raw: Series, out: Series, digits: int) -> None:
        super().__init__(raw)
        self.out = out
        self.digits = digits
        self.last: tuple[float, int] | None = None

    def apply(self, norm: Normalizer, view: _TargetView, value: Value, ts: int, batch: Batch) -> None:
        if value is None:
            norm.drop(self.out, ts, batch)
            return
        if value.__class__ not in (int, float):
            return
        last = self.last
        if last is None or value < last[0]:
            self.last = (value, ts)  # type: ignore[assignment]
            return
        if ts <= last[1]:
            return
        self.last = (value, ts)  # type: ignore[assignment]
        rate = (value - last[0]) * NS_PER_S / (ts - last[1])  # type: ignore[operator]
        _emit(self.out, round(rate, self.digits) if self.digits else round(rate), ts, batch)

    def delete(self, norm: Normalizer, view: _TargetView, ts: int, batch: Batch) -> None:
        self.apply(norm, view, None, ts, batch)

    def derived(self) -> tuple[Series, ...]:
        return (self.out,)


class _Mean:
    """d(sum) / d(count) x scale between readings of both taken at one timestamp (`Rule.per`):
    the mean latency of the requests answered between two readings. No request in between: no
    new value (the last one stays); either counter going down (a restarted KME): a new base."""

    __slots__ = ("out", "scale", "sum", "count", "base")

    def __init__(self, out: Series, scale: float) -> None:
        self.out = out
        self.scale = scale
        self.sum: tuple[float, int] | None = None
        self.count: tuple[float, int] | None = None
        self.base: tuple[float, float, int] | None = None

    def feed(self, role: str, value: float, ts: int, batch: Batch) -> None:
        if role == "sum":
            self.sum = (value, ts)
        else:
            self.count = (value, ts)
        if self.sum is None or self.count is None or self.sum[1] != self.count[1]:
            return
        total, count, base = self.sum[0], self.count[0], self.base
        if base is None or total < base[0] or count < base[1]:
            self.base = (total, count, ts)
            return
        if ts <= base[2] or count == base[1]:
            return
        self.base = (total, count, ts)
        _emit(self.out, round((total - base[0]) / (count - base[1]) * self.scale, 6), ts, batch)


class _Feed(_Handler):
    """A counter feeding a `_Mean` (the sum, kept raw, or the count, itself normalized)."""

    __slots__ = ("mean", "role")

    def __init__(self, raw: Series, mean: _Mean, role: str) -> None:
        super().__init__(raw)
        self.mean = mean
        self.role = role

    def apply(self, norm: Normalizer, view: _TargetView, value: Value, ts: int, batch: Batch) -> None:
        if value is None:
            view.means.pop(self.mean.out.path, None)
            norm.drop(self.mean.out, ts, batch)
        elif value.__class__ in (int, float):
            self.mean.feed(self.role, value, ts, batch)  # type: ignore[arg-type]

    def delete(self, norm: Normalizer, view: _TargetView, ts: int, batch: Batch) -> None:
        self.apply(norm, view, None, ts, batch)

    def derived(self) -> tuple[Series, ...]:
        return (self.mean.out,)


class _Identity(_Handler):
    __slots__ = ()

    def apply(self, norm: Normalizer, view: _TargetView, value: Value, ts: int, batch: Batch) -> None:
        if value is not None and view.node is not None and view.node != str(value):
            norm.forget_routes(view, keep=self)  # re-keyed node: telemetry series move to the new id
        if value is not None:
            view.node = str(value)


class _UnitState(_Handler):
    """qstrata-ss service-unit state -> counts per (node, state) in telemetry/service-units."""

    __slots__ = ("unit",)

    def __init__(self, raw: Series, unit: str) -> None:
        super().__init__(raw)
        self.unit = unit

    def apply(self, norm: Normalizer, view: _TargetView, value: Value, ts: int, batch: Batch) -> None:
        old = view.unit_states.get(self.unit)
        new = None if value is None else str(value)
        if old == new:
            return
        if old is not None:
            norm.count_units(view, old, -1, ts, batch)
        if new is None:
            view.unit_states.pop(self.unit, None)
        else:
            view.unit_states[self.unit] = new
            norm.count_units(view, new, +1, ts, batch)

    def delete(self, norm: Normalizer, view: _TargetView, ts: int, batch: Batch) -> None:
        self.apply(norm, view, None, ts, batch)


class _TargetView:
    __slots__ = ("name", "routes", "node", "unit_states", "unit_counts", "received", "resources", "means", "pairs",
                 "windows")

    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: dict[str, Series | _Handler] = {}
        self.node: str | None = None
        self.unit_states: dict[str, str] = {}
        self.unit_counts: dict[str, int] = {}
        self.received = 0
        self.resources: dict[tuple[str, ...], str] = {}
        self.means: dict[str, _Mean] = {}
        """Telemetry path of a derived mean -> its state (fed by two agent leaves)."""
        self.pairs: dict[str, PairTracker] = {}
        """memory-id -> its stored pairs (`aggregates`)."""
        self.windows: dict[str, WindowCounter] = {}
        """app_id -> its app_statistics windows (`aggregates`)."""


class Normalizer:
    """Turns lists of `Update`s into `Batch`es of series samples (see the module docstring)."""

    def __init__(self, registry: SeriesRegistry | None = None) -> None:
        self.registry = registry or SeriesRegistry()
        self._views: dict[str, _TargetView] = {}
        self.rejected = 0
        """Updates whose path could not be parsed (logged once per target)."""

    # ------------------------------------------------------------------ hot path
    def normalize(self, updates: list[Update], batch: Batch | None = None) -> Batch:
        batch = Batch() if batch is None else batch
        out_series, out_values, out_ts = batch.series, batch.values, batch.ts
        view: _TargetView | None = None
        routes: dict[str, Series | _Handler] = {}
        target = None
        for i, u in enumerate(updates):
            if u.target != target:
                target = u.target
                view = self._views.get(target)
                if view is None:
                    view = self._views[target] = _TargetView(target)
                routes = view.routes
            view.received += 1
            route = routes.get(u.path)
            value = u.value
            if route is None:
                if value is None:
                    self._delete_subtree(view, u.path, u.timestamp_ns, batch)
                    continue
                route = self._resolve(view, u, updates, i, batch)
                if route is None:
                    continue
            if route.__class__ is Series:
                route.value = value
                route.ts = u.timestamp_ns
                out_series.append(route)
                out_values.append(value)
                out_ts.append(u.timestamp_ns)
                if value is None:
                    self._forget(view, u.path, route)
            else:
                route.apply(self, view, value, u.timestamp_ns, batch)
                raw = route.raw
                if raw is not None:
                    raw.value = value
                    raw.ts = u.timestamp_ns
                    batch.add(raw, value, u.timestamp_ns)
                if value is None:
                    self._forget(view, u.path, raw)
        return batch

    # ------------------------------------------------------------------ routes
    def _resolve(self, view: _TargetView, u: Update, updates: list[Update], index: int,
                 batch: Batch) -> Series | _Handler | None:
        """The route of a path seen for the first time on this target (then cached); a leaf of a
        short-lived entry is aggregated here, uncached (its paths would pile up)."""
        try:
            elements = split_data_path(u.path)
        except PathSyntaxError as exc:
            if self.rejected == 0 or not view.routes:
                log.warning("target %s: unparsable path dropped: %s", view.name, exc)
            self.rejected += 1
            return None
        if not elements:
            self.rejected += 1
            return None
        schema_path = "/" + "/".join(name for name, _ in elements)
        reg = self.registry
        entry = short_lived(schema_path)
        if entry is not None and schema_path != UNIT_STATE:
            if view.node is None:
                self._prescan_identity(view, updates, index)
            self._aggregate(view, entry, elements, schema_path, u.value, u.timestamp_ns, batch)
            return None
        if u.path.startswith(TEL_PREFIX):
            route = reg.get_or_create(view.name, u.path, elements, resource="")
            view.routes[u.path] = route
            return route
        rule = RULES.get(schema_path)
        if rule is not None and (rule.when is None or _key(elements, rule.when[0]) == rule.when[1]):
            if view.node is None and any(k == NODE for _, k in rule.keys):
                self._prescan_identity(view, updates, index)
            keys = self._telemetry_keys(view, rule, elements)
            if keys is not None:
                rkey = (rule.resource, *(v for _, v in keys))
                resource = view.resources.get(rkey)
                if resource is None:  # shared by the leaves of one entity (a link's rates, QBER...)
                    if len(view.resources) >= LABEL_CACHE:
                        view.resources.clear()
                    resource = view.resources[rkey] = sys.intern(resource_path(elements, rule.resource))
                route = self._rule_route(view, rule, keys, resource, u.path, elements)
                view.routes[u.path] = route
                return route
            # The node's identity is not known yet: keep the value raw, uncached, so that the
            # normalized series is made once the identity arrives.
            return reg.get_or_create(view.name, u.path, elements, resource="")
        if schema_path == UNIT_STATE:  # counted, never a series of its own
            if view.node is None:
                self._prescan_identity(view, updates, index)
            view.routes[u.path] = route = _UnitState(None, _key(elements, "unit-id") or "")
            return route
        raw = reg.get_or_create(view.name, u.path, elements, resource="")
        route = _Identity(raw) if schema_path in IDENTITY_LEAVES else raw
        view.routes[u.path] = route
        return route

    def _rule_route(self, view: _TargetView, rule: Rule, keys: list[tuple[str, str]], resource: str, path: str,
                    elements: Elements) -> Series | _Handler:
        """The normalized series of a rule's leaf, or the handler that also derives from it."""
        reg = self.registry

        def telemetry(leaf: str) -> Series:
            tel_path, tel_elements = telemetry_leaf(rule.entry, keys, leaf)
            return reg.get_or_create(view.name, tel_path, tel_elements, resource=resource)

        if rule.convert is not None:
            return _Converted(reg.get_or_create(view.name, path, elements, resource=""), telemetry(rule.leaf),
                              rule.convert)
        if rule.per is not None:
            return _Feed(reg.get_or_create(view.name, path, elements, resource=""), self._mean(view, rule, telemetry),
                         "sum")
        series = telemetry(rule.leaf)
        if rule.rate is not None:
            return _PerSecond(series, telemetry(rule.rate[0]), rule.rate[1])
        mean = MEAN_OF.get(rule.source)
        if mean is not None:
            return _Feed(series, self._mean(view, mean, telemetry), "count")
        return series

    @staticmethod
    def _mean(view: _TargetView, rule: Rule, telemetry: Callable[[str], Series]) -> _Mean:
        out = telemetry(rule.leaf)
        mean = view.means.get(out.path)
        if mean is None:
            assert rule.per is not None
            mean = view.means[out.path] = _Mean(out, rule.per[1])
        return mean

    def drop(self, series: Series, ts: int, batch: Batch) -> None:
        """A derived series whose source is gone: deleted like a deleted leaf."""
        if series.value is not None:
            _emit(series, None, ts, batch)
        self.registry.remove(series)

    @staticmethod
    def _telemetry_keys(view: _TargetView, rule: Rule, elements: Elements) -> list[tuple[str, str]] | None:
        keys = []
        for name, source in rule.keys:
            if source == NODE:
                value = view.node
            elif source == TARGET:
                value = view.name
            else:
                value = _key(elements, source)
            if value is None:
                return None
            keys.append((name, value))
        return keys

    @staticmethod
    def _prescan_identity(view: _TargetView, updates: list[Update], index: int) -> None:
        """The identity leaf may come later in the same batch (gNMI gives no order guarantee)."""
        for u in updates[index:]:
            if u.target == view.name and u.path in IDENTITY_LEAVES and u.value is not None:
                view.node = str(u.value)
                return

    def forget_routes(self, view: _TargetView, keep: _Handler | None = None) -> None:
        """Resolve every path again (in place: the hot loop holds the dict); normalized series
        keyed by the old identity are dropped."""
        for path in [p for p, r in view.routes.items() if r is not keep]:
            route = view.routes.pop(path)
            series = route if route.__class__ is Series else route.raw
            if series is not None and series.path.startswith(TEL_PREFIX) and series.path != path:
                self.registry.remove(series)
            if route.__class__ is not Series:
                for derived in route.derived():
                    self.registry.remove(derived)
        view.means.clear()
        for tracker in [*view.pairs.values(), *view.windows.values()]:
            for series in tracker.series if isinstance(tracker, PairTracker) else (tracker.series,):
                self.registry.remove(series)
        view.pairs.clear()
        view.windows.clear()

    def _forget(self, view: _TargetView, path: str, series: Series | None) -> None:
        view.routes.pop(path, None)
        if series is not None:
            self.registry.remove(series)

    def _delete_subtree(self, view: _TargetView, prefix: str, ts: int, batch: Batch) -> None:
        """A deleted list entry or container: every leaf under it is deleted."""
        if view.pairs or view.windows:
            self._aggregate_delete(view, prefix, ts, batch)
        doomed = [p for p in view.routes if p.startswith(prefix) and p[len(prefix):len(prefix) + 1] in ("/", "[", "")]
        for path in doomed:
            route = view.routes[path]
            series = route if route.__class__ is Series else route.raw
            if route.__class__ is not Series:
                route.delete(self, view, ts, batch)
            if series is not None:
                series.value = None
                series.ts = ts
                batch.add(series, None, ts)
            self._forget(view, path, series)

    # ------------------------------------------------------------------ short-lived entries
    def _aggregate(self, view: _TargetView, entry: str, elements: Elements, schema_path: str, value: Value, ts: int,
                   batch: Batch) -> None:
        """A leaf of a stored pair or an app_statistics window into its aggregate (`aggregates`);
        the other leaves of short-lived entries (service units but their state) are dropped."""
        if view.node is None or value is None:
            return
        leaf = elements[-1][0]
        if entry == aggregates.PAIR:
            pair = _key(elements, "pair-id")
            tracker = self._tracker(view, view.pairs, elements, "memory-id", _t.memories.memory.PATH, "memory",
                                    PairTracker)
            if tracker is not None and pair is not None:
                tracker.reading(pair, leaf, value, ts)
        elif entry == aggregates.WINDOW and leaf == "consumed_bits":
            end = _key(elements, "end_time")
            counter = self._tracker(view, view.windows, elements, "app_id", _t.key_delivery.application.PATH,
                                    "qkd_app", WindowCounter)
            if counter is not None and end is not None:
                counter.reading(end, value, ts, batch)

    def _tracker(self, view: _TargetView, trackers: dict, elements: Elements, key: str, entry: str, resource: str,
                 kind: Callable[[aggregates.Make], PairTracker | WindowCounter]) -> Any:
        """The aggregate of the agent list entry named by `key` (a memory, an application), made
        on first use with series under the telemetry `entry` keyed by node and that key."""
        name = _key(elements, key)
        if name is None:
            return None
        found = trackers.get(name)
        if found is None:
            tel_key = "memory-id" if key == "memory-id" else "app-id"
            make = self._maker(view, entry, [("node", view.node or ""), (tel_key, name)], resource_path(elements, resource))
            found = trackers[name] = kind(make)
        return found

    def _maker(self, view: _TargetView, entry: str, keys: list[tuple[str, str]],
               resource: str) -> aggregates.Make:
        base = telemetry_leaf(entry, keys, "")[0][:-1]

        def make(rest: str) -> Series:
            path = f"{base}/{rest}"
            return self.registry.get_or_create(view.name, path, split_data_path(path), resource=resource)
        return make

    def _aggregate_delete(self, view: _TargetView, prefix: str, ts: int, batch: Batch) -> None:
        """A deleted pair has been used or expired, and so has every pair of a deleted
        ``stored-pairs`` container; only a deleted memory or application (or what holds it) ends
        its aggregates (their series are deleted with it)."""
        try:
            elements = split_data_path(prefix)
        except PathSyntaxError:
            return
        schema_path = "/" + "/".join(name for name, _ in elements)
        if short_lived(schema_path) == aggregates.PAIR:
            memory, pair = _key(elements, "memory-id"), _key(elements, "pair-id")
            tracker = view.pairs.get(memory or "")
            if tracker is not None and pair is not None:
                tracker.gone(pair, ts, batch)
            return
        for trackers, entry in ((view.pairs, aggregates.PAIR), (view.windows, aggregates.WINDOW)):
            if not entry.startswith(schema_path.rstrip("/") + "/"):
                continue
            owner, key = aggregates.OWNERS[entry]
            name = _key(elements, key)
            if schema_path != owner and schema_path.startswith(owner + "/"):  # below the owner: entries only
                tracker = trackers.get(name or "")
                if isinstance(tracker, PairTracker):
                    tracker.all_gone(ts, batch)
                continue  # a window counted stays counted
            for doomed in [k for k in trackers if name is None or k == name]:
                tracker = trackers.pop(doomed)
                for series in tracker.series if isinstance(tracker, PairTracker) else (tracker.series,):
                    self.drop(series, ts, batch)

    # ------------------------------------------------------------------ derived series
    def count_units(self, view: _TargetView, state: str, delta: int, ts: int, batch: Batch) -> None:
        if view.node is None:
            return
        count = view.unit_counts.get(state, 0) + delta
        view.unit_counts[state] = count
        path, elements = telemetry_leaf(UNIT_COUNT_ENTRY, [("node", view.node), ("state", state)], "count")
        series = self.registry.get_or_create(view.name, path, elements, resource=ss.service_stratum.service_units.PATH)
        series.value = count
        series.ts = ts
        batch.add(series, count, ts)

    def status(self, status: TargetStatus, batch: Batch) -> None:
        """A target's health as qstrata-telemetry agents/agent series (owned by the collector,
        target ""), so they stay visible while the agent itself is down."""
        base = [("name", status.target)]
        values: tuple[tuple[str, Value], ...] = (
            ("reachable", status.reachable),
            ("subscription-state", status.state),
            ("updates-received", self.received(status.target)),
        )
        for leaf, value in values:
            path, elements = telemetry_leaf(AGENT_ENTRY, base, leaf)
            series = self.registry.get_or_create("", path, elements, resource="")
            series.value = value
            series.ts = status.timestamp_ns
            batch.add(series, value, status.timestamp_ns)

    def received(self, target: str) -> int:
        view = self._views.get(target)
        return view.received if view is not None else 0

    def refresh_counters(self) -> None:
        """Copy per-target update counts into the agents' updates-received series (in place:
        read by the Prometheus endpoint; stored with the next status)."""
        for name, view in self._views.items():
            path = telemetry_path(AGENT_ENTRY, [("name", name)], "updates-received")
            series = self.registry.by_target.get("", {}).get(path)
            if series is not None:
                series.value = view.received

    def node_of(self, target: str) -> str | None:
        view = self._views.get(target)
        return view.node if view is not None else None

    def drop_target(self, target: str) -> list[Series]:
        """A target no longer collected here: forget its routes, its series and its agents/agent
        entry (kept by the collector while the target was down, not after)."""
        self._views.pop(target, None)
        prefix = telemetry_leaf(AGENT_ENTRY, [("name", target)], "")[0]
        own = self.registry.by_target.get("", {})
        for path in [p for p in own if p.startswith(prefix)]:
            del own[path]
        return self.registry.drop_target(target)


def resource_of(series: Series) -> str:
    """The agent data path an alarm on `series` names: the rule's list entry for normalized
    series, the parent of the leaf for raw ones (worked out on demand: raw series are many)."""
    if series.resource:
        return series.resource
    try:
        return join_data_path(split_data_path(series.path)[:-1])
    except PathSyntaxError:
        return series.path


def _key(elements: Elements, key: str) -> str | None:
    for _, keys in reversed(elements):
        if key in keys:
            return keys[key]
    return None
