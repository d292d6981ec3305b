"""Key-management entity of a QKD node, serving `qstrata-ss` (the service stratum).

Part of `QkdTwin` (its `kme`), because a KME draws on the key stores of that node's QKD links.
A KEY service unit configured on its source KME goes through:

  requested    accepted; at the next tick (which also routes it) the originating application's token bucket
               (qkd_app/ss-session-id -> kme/sessions/session) must hold `size` tokens,
               else failed ("rejected by token bucket");
  routing      hop by hop by the longest `urn-prefix` matching the destination URN without its
               q-component; a KME with no matching route is the destination (the source KME
               needs one: else failed "no route to ..."); next hops are followed through the
               KMEs hosted in this world (one that is not is taken as the destination);
  establishing `size` bits are taken from every hop's QKD link key store at once, retried every
               tick while a store is short;
  ready        key-ids assigned (one per 256-bit block);
  consumed     `consume(unit_id)` (the key-delivery API's call) or expired / failed.

Expiry: the lifecycle URN's `valid-until` is POSIX seconds of the world's clock (sim time mapped
to dates by the world's epoch; `epoch_unix_ns="wall"` makes it wall time), checked every tick in
any non-terminal state. Every state change emits `service-unit-state-change`. ENTANGLED-STATE
units fail here: a KME has no memories (the QFS serves them).

kme-id defaults to the node's qkdn_id. Key stores are reported for every link of the node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from . import qkd_config as cfg
from . import qkd_link
from .base import DeviceEvent, DeviceRefusal, JsonTree
from .config_model import Staged
from .yangjson import bare_identity

if TYPE_CHECKING:
    from .qkd_config import NodeConfig
    from .qkd_twin import QkdTwin

SS = "qstrata-ss"
TOP = f"{SS}:service-stratum"
ROOT = f"/{TOP}"
NS = 1_000_000_000
KEY_BLOCK_BITS = 256
MAX_HOPS = 16
TERMINAL = ("consumed", "expired", "failed")
ROUTES = (TOP, "kme", "forwarding-table", "route")
SESSIONS = (TOP, "kme", "sessions", "session")
UNITS = (TOP, "service-units", "service-unit")
WATCH = {ROUTES: ("urn-prefix",), SESSIONS: ("session-id",), UNITS: ("unit-id",)}
"""The KME lists the QKD twin keeps from change lists (`config_model.ConfigModel`)."""
KME_ID = (TOP, "kme", "kme-id")
_UNSET: Any = object()


@dataclass(slots=True)
class KmeDelta:
    """The KME entries a transaction touched, as JSON-IETF (None: deleted), and kme-id when the
    kme container changed."""

    routes: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    units: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    kme_id: Any = _UNSET


def lifecycle(urn: str) -> dict[str, str]:
    """The q-component parameters of a lifecycle URN: size, valid-until, fidelity."""
    _, _, query = urn.partition("?=")
    return dict(parse_qsl(query.split("#", 1)[0], keep_blank_values=True))


def strip_components(urn: str) -> str:
    """URN without r-, q- and f-components (what routes match)."""
    for mark in ("?+", "?=", "#"):
        urn = urn.split(mark, 1)[0]
    return urn


def _unit_path(unit_id: str, leaf: str = "") -> str:
    base = f"{ROOT}/service-units/service-unit[unit-id='{unit_id}']"
    return f"{base}/{leaf}" if leaf else base


@dataclass(slots=True)
class Bucket:
    rate: float
    burst: float
    tokens: float
    admitted: int = 0
    rejected: int = 0
    since_ns: int = 0


@dataclass(slots=True)
class Unit:
    unit_id: str
    source_urn: str
    destination_urn: str
    lifecycle_urn: str
    kind: str
    originator: str | None
    size: int
    valid_until_unix: int
    created_ns: int
    state: str = "requested"
    route: list[str] = field(default_factory=list)
    hops: list[tuple[str, str]] = field(default_factory=list)
    """(node, qkdl_id) of every relay hop."""
    key_ids: list[str] = field(default_factory=list)
    reason: str | None = None


class KmeService:
    modules = (SS, "etsi-qkd-node-types")

    def __init__(self, twin: QkdTwin) -> None:
        self.twin = twin
        self.world = twin.world
        self.kme_id = twin.qkdn_id
        self.routes: dict[str, tuple[str, str | None]] = {}
        self.buckets: dict[str, Bucket] = {}
        self.units: dict[str, Unit] = {}
        self.transit: dict[str, Unit] = {}
        self.app_sessions: dict[str, str] = {}

    def inventory_config(self) -> JsonTree:
        return {TOP: {"kme": {"kme-id": self.kme_id}}}

    # -- configuration -----------------------------------------------------------------------

    def stage(self, staged: Staged) -> KmeDelta:
        """The KME entries a change list touched, read back from the node's configuration copy."""
        delta = KmeDelta()
        model = staged.model
        for prefix in staged.touched(ROUTES, self.routes):
            delta.routes[prefix] = model.entry(ROUTES, (prefix,))
        for sid in staged.touched(SESSIONS, self.buckets):
            delta.sessions[sid] = model.entry(SESSIONS, (sid,))
        for unit_id in staged.touched(UNITS, self.units):
            delta.units[unit_id] = model.entry(UNITS, (unit_id,))
        if staged.changed((TOP, "kme")):
            delta.kme_id = model.get(KME_ID)
        return delta

    def prepare(self, delta: KmeDelta, node: NodeConfig, node_delta: cfg.Delta) -> None:
        def has_link(qkdl_id: str) -> bool:
            if qkdl_id in node_delta.links:
                return node_delta.links[qkdl_id] is not None
            return qkdl_id in node.links

        routes = {k: v for k, v in delta.routes.items() if v is not None}
        if any(v is None for v in node_delta.links.values()):  # a deleted link may carry routes
            routes.update((prefix, {"urn-prefix": prefix, "qkd-link": link}) for prefix, (_, link) in self.routes.items()
                          if prefix not in delta.routes and link is not None)
        for prefix, route in routes.items():
            link = route.get("qkd-link")
            if link is not None and not has_link(str(link)):
                raise DeviceRefusal(
                    f"route {prefix}: qkd-link {link} is not a link of this node",
                    f"{ROOT}/kme/forwarding-table/route[urn-prefix='{prefix}']/qkd-link",
                )
        for unit_id, raw in delta.units.items():
            if raw is None:
                continue
            params = lifecycle(str(raw.get("lifecycle-urn", "")))
            try:
                int(params["size"]), int(params["valid-until"])
            except (KeyError, ValueError):
                raise DeviceRefusal(
                    "the lifecycle URN needs size=<bits> and valid-until=<POSIX seconds>",
                    _unit_path(unit_id, "lifecycle-urn"),
                ) from None

    def commit(self, delta: KmeDelta, node: NodeConfig, node_delta: cfg.Delta,
               old_apps: dict[str, cfg.App | None]) -> None:
        """Apply a prepared delta; `node` is the node's configuration after it."""
        if delta.kme_id is not _UNSET:
            if delta.kme_id:
                self.kme_id = str(delta.kme_id)
        for prefix, route in delta.routes.items():
            if route is None:
                self.routes.pop(prefix, None)
            else:
                self.routes[prefix] = (str(route["next-hop-kme"]), route.get("qkd-link"))
        now = self.world.now_ns
        for sid, raw in delta.sessions.items():
            if raw is None:
                self.buckets.pop(sid, None)
                continue
            rate, burst = float(raw["rate"]), float(raw["burst"])
            old = self.buckets.get(sid)
            self.buckets[sid] = Bucket(rate, burst, min(old.tokens, burst) if old else burst,
                                       old.admitted if old else 0, old.rejected if old else 0,
                                       old.since_ns if old else now)
        for app_id in node_delta.apps:
            app = node.apps.get(app_id)
            if app is not None and app.ss_session_id:
                self.app_sessions[app_id] = app.ss_session_id
            else:
                self.app_sessions.pop(app_id, None)
        for unit_id, raw in delta.units.items():
            if raw is None:
                self.units.pop(unit_id, None)
                continue
            if unit_id in self.units:
                continue
            params = lifecycle(str(raw["lifecycle-urn"]))
            unit = Unit(
                unit_id=unit_id, source_urn=str(raw["source-urn"]), destination_urn=str(raw["destination-urn"]),
                lifecycle_urn=str(raw["lifecycle-urn"]), kind=bare_identity(raw.get("kind")) or "KEY",
                originator=raw.get("originator"), size=int(params["size"]),
                valid_until_unix=int(params["valid-until"]), created_ns=now,
            )
            self.units[unit_id] = unit
            self._notify(unit, None)

    # -- the key-delivery side ---------------------------------------------------------------

    def consume(self, unit_id: str) -> list[str]:
        """An application retrieved a ready unit: its key ids; the unit becomes consumed."""
        unit = self.units.get(unit_id)
        if unit is None or unit.state != "ready":
            raise KeyError(f"service unit {unit_id} is not ready")
        self._move(unit, "consumed")
        return list(unit.key_ids)

    # -- per tick ----------------------------------------------------------------------------

    def on_tick(self, now_ns: int, dt_ns: int) -> None:
        for bucket in self.buckets.values():
            bucket.tokens = min(bucket.burst, bucket.tokens + bucket.rate * dt_ns / NS)
        for unit in list(self.units.values()):
            if unit.state in TERMINAL:
                continue
            if self.world.unix_ns() >= unit.valid_until_unix * NS:
                self._move(unit, "expired", f"valid-until {unit.valid_until_unix} passed")
                continue
            if unit.state == "requested":
                self._admit(unit)
                if unit.state == "routing":
                    self._route(unit)
            elif unit.state == "routing":
                self._route(unit)
            elif unit.state == "establishing":
                self._establish(unit)

    def _admit(self, unit: Unit) -> None:
        if unit.kind != "KEY":
            self._move(unit, "failed", "this KME delivers KEY units; entangled states come from the QFS")
            return
        session_id = self.app_sessions.get(unit.originator or "")
        bucket = self.buckets.get(session_id or "")
        if bucket is not None:
            if bucket.tokens < unit.size:
                bucket.rejected += 1
                self._move(unit, "failed", f"rejected by token bucket of session {session_id}")
                return
            bucket.tokens -= unit.size
            bucket.admitted += 1
        self._move(unit, "routing")

    def _route(self, unit: Unit) -> None:
        target = strip_components(unit.destination_urn).lower()
        here: KmeService | None = self
        route = [self.kme_id]
        hops: list[tuple[str, str]] = []
        for _ in range(MAX_HOPS):
            match = here._longest_prefix(target)
            if match is None:
                break
            next_kme, link_id = match
            link_id = link_id or here._active_link_to(next_kme)
            if link_id is None:
                self._move(unit, "failed", f"no QKD link from {here.twin.name} to KME {next_kme}")
                return
            hops.append((here.twin.name, link_id))
            route.append(next_kme)
            if next_kme in route[:-1]:
                self._move(unit, "failed", f"routing loop at KME {next_kme}")
                return
            here = self._hosted_kme(next_kme)
            if here is None:
                break
        if not hops:
            self._move(unit, "failed", f"no route to {strip_components(unit.destination_urn)}")
            return
        unit.route, unit.hops = route, hops
        for kme_id in route[1:]:
            other = self._hosted_kme(kme_id)
            if other is not None:
                other.transit[unit.unit_id] = unit
        self._move(unit, "establishing")
        self._establish(unit)

    def _establish(self, unit: Unit) -> None:
        table = qkd_link.sessions(self.world)
        stores = [table.get(link_id) for _, link_id in unit.hops]
        if any(s is None or s.store.bits < unit.size or s.compromise is not None for s in stores):
            return  # a compromised link's store gives nothing until a clean block (qkd_link)
        for session in stores:
            session.store.take(unit.size)
        blocks = max(1, math.ceil(unit.size / KEY_BLOCK_BITS))
        unit.key_ids = [self.world.derived_uuid("key", unit.unit_id, str(i)) for i in range(blocks)]
        self._move(unit, "ready")

    def _longest_prefix(self, target: str) -> tuple[str, str | None] | None:
        best = None
        for prefix, hop in self.routes.items():
            if target.startswith(prefix.lower()) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, hop)
        return best[1] if best else None

    def _active_link_to(self, kme_id: str) -> str | None:
        peer = self._node_of_kme(kme_id)
        table = qkd_link.sessions(self.world)
        for link in self.twin.config.links.values():
            session = table.get(link.qkdl_id)
            if session is not None and session.status == "ACTIVE" and peer is not None and (
                self.world.node_by_uuid(link.remote_qkdn_id) == peer
            ):
                return link.qkdl_id
        return None

    def _node_of_kme(self, kme_id: str) -> str | None:
        for name, driver in self.world.hosted.items():
            kme = getattr(driver, "kme", None)
            if kme is not None and kme.kme_id.lower() == kme_id.lower():
                return name
        return self.world.node_by_uuid(kme_id)

    def _hosted_kme(self, kme_id: str) -> KmeService | None:
        name = self._node_of_kme(kme_id)
        driver = self.world.hosted.get(name or "")
        return getattr(driver, "kme", None)

    def _move(self, unit: Unit, state: str, reason: str | None = None) -> None:
        old, unit.state, unit.reason = unit.state, state, reason
        self._notify(unit, old)

    def _notify(self, unit: Unit, old: str | None) -> None:
        body: dict[str, Any] = {
            "unit-id": unit.unit_id, "source-urn": unit.source_urn, "destination-urn": unit.destination_urn,
            "lifecycle-urn": unit.lifecycle_urn, "new-state": unit.state,
        }
        if old is not None:
            body["old-state"] = old
        if unit.reason:
            body["reason"] = unit.reason
        now = self.world.now_ns
        self.twin.hub.publish(DeviceEvent("notification", {f"{SS}:service-unit-state-change": body}, (), now))
        self.twin.hub.publish(DeviceEvent("state", {}, (_unit_path(unit.unit_id, "state"),), now))

    # -- state -------------------------------------------------------------------------------

    def app_units(self, app_id: str) -> list[str]:
        return [u.unit_id for u in self.units.values() if u.originator == app_id and u.state not in TERMINAL]

    def read_state(self) -> JsonTree:
        units = []
        for unit in [*self.units.values(), *(u for k, u in self.transit.items() if k not in self.units)]:
            entry: dict[str, Any] = {
                "unit-id": unit.unit_id,
                "state": unit.state,
                "created-time": self.world.date_and_time(unit.created_ns),
                "valid-until": self.world.date_and_time(unit.valid_until_unix * NS - self.world.epoch_unix_ns),
            }
            if unit.unit_id not in self.units:
                entry.update({"source-urn": unit.source_urn, "destination-urn": unit.destination_urn,
                              "lifecycle-urn": unit.lifecycle_urn, "kind": f"{SS}:{unit.kind}"})
            if unit.route:
                entry["route"] = list(unit.route)
            if unit.key_ids and unit.state == "ready":
                entry["content"] = {"key-id": list(unit.key_ids)}
            units.append(entry)
        table = qkd_link.sessions(self.world)
        stores = []
        for link_id in self.twin.config.links:
            session = table.get(link_id)
            if session is not None:
                store = session.store
                stores.append({"qkdl-id": link_id, "stored-bits": str(int(store.bits)),
                               "capacity-bits": str(int(store.capacity_bits)),
                               "filled-bits": str(int(store.produced_bits)),
                               "drained-bits": str(int(store.consumed_bits)),
                               "discarded-bits": str(int(store.discarded_bits)),
                               "discarded-blocks": str(store.discarded_blocks),
                               "discontinuity-time": self.world.date_and_time(session.created_ns)})
                if session.compromise is not None:
                    stores[-1]["compromised-since"] = self.world.date_and_time(session.compromise.since_ns)
        sessions = [
            {"session-id": sid, "tokens": str(int(b.tokens)), "admitted": str(b.admitted),
             "rejected": str(b.rejected), "discontinuity-time": self.world.date_and_time(b.since_ns)}
            for sid, b in self.buckets.items()
        ]
        return {TOP: {
            "service-units": {"service-unit": units},
            "kme": {"sessions": {"session": sessions}, "key-stores": {"key-store": stores}},
        }}
