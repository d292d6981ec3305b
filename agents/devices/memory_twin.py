"""Digital twin of a quantum-memory node serving `qstrata-qfs` (the quantum forwarding stratum).

Memories come from the topology (technology, capacity; T1/T2 and efficiency from the platform
presets of physics.memory unless given). Heralded generation runs in the world's `QfsFabric`
per entanglement link (shared with the peer node); this twin, as the node's controller, swaps
pairs by its forwarding table every tick: for an entry (destination D -> next hop N), a pair
whose far end is neither D nor N is swapped with the oldest pair to N (both at least the
entry's min-fidelity), F_s = F1*F2 + (1-F1)*(1-F2)/3, success with probability `swap_success`.

Fidelities are evaluated lazily from creation time (F(t) under both memories' T1/T2); pairs are
discarded at their link's cutoff-time. Notifications:
- `qfs-link-down` when a link leaves ACTIVE for OFF or PENDING (reason);
- `qfs-fidelity-below-threshold` when a link's delivered fidelity falls below target-fidelity;
- `qfs-memory-full` when a memory's occupancy reaches its capacity;
- DeviceEvent(kind="state") on link status, memory occupancy and stored pairs changes (a pair that
  comes or goes).

The node serves `qstrata-ss` too: ENTANGLED-STATE service units requested at this node are
fulfilled by the fabric along their route (pair_service.py); pairs delivered to a unit are not
swapped by the forwarding table.

prepare() refuses memories the node does not have (or more capacity than it has, or another
technology), generation schemes the memory technology cannot run, and switch ports that do not
exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from qstrata.bindings.generated import qstrata_qfs as qfs_paths

from . import entanglement as ent
from . import pair_service
from .base import ConfigTransaction, DeviceClock, DeviceEvent, DeviceRefusal, Inventory, JsonTree
from .config_model import ChangeTracker, Staged, update_records
from .events import EventHub
from .physics import memory as mem
from .topology import Endpoint
from .topology_keys import MEMORY, MEMORY_NODE
from .world import DEVICE_ORDER, NS, World
from .yangjson import as_bool, as_float, bare_identity, decimal64

QFS = "qstrata-qfs"
TOP = f"{QFS}:qfs-node"
ROOT = f"/{TOP}"
PLATFORM_OF = {
    "NV-CENTRE": mem.NV, "TRAPPED-ION": mem.ION, "RARE-EARTH-ENSEMBLE": mem.REE,
    "COLD-ATOM-ENSEMBLE": mem.RB, "SUPERCONDUCTING": mem.SC,
}
SCHEMES_OF = {
    "NV-CENTRE": {"SINGLE-CLICK", "BARRETT-KOK"},
    "TRAPPED-ION": {"SINGLE-CLICK", "BARRETT-KOK"},
    "SUPERCONDUCTING": {"SINGLE-CLICK", "BARRETT-KOK"},
    "RARE-EARTH-ENSEMBLE": {"SPDC-HERALDED"},
    "COLD-ATOM-ENSEMBLE": {"DLCZ", "SPDC-HERALDED"},
}


def _ns(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class MemorySpec:
    memory_id: str
    technology: str
    capacity: int
    t1_ns: int
    t2_ns: int
    efficiency: float
    capacity_unit: str = "qubits"


@dataclass(frozen=True, slots=True)
class LinkSpec:
    link_id: str
    local_memory: str
    remote_node: str
    remote_memory: str | None
    scheme: str
    attenuation_db: float | None
    switch_port: tuple[str, int] | None
    length_km: float | None
    target_fidelity: float | None
    cutoff_ns: int | None
    enabled: bool
    urn: str | None


@dataclass(frozen=True, slots=True)
class Route:
    destination: str
    next_hop_node: str | None
    next_hop_link: str | None
    min_fidelity: float


_link_path = qfs_paths.qfs_node.entanglement_links.link.entry
_memory_path = qfs_paths.qfs_node.memories.memory.entry


MEMORIES = (TOP, "memories", "memory")
LINKS = (TOP, "entanglement-links", "link")
ROUTES = (TOP, "forwarding-table", "entry")
WATCH = {MEMORIES: ("memory-id",), LINKS: ("link-id",), ROUTES: ("destination",)}
"""The lists the twin keeps records of, with their keys (for `config_model.ConfigModel`)."""
UUID = (TOP, "uuid")
_KEEP: Any = object()


def parse_memory(raw: dict[str, Any]) -> MemorySpec:
    tech = bare_identity(raw.get("technology")) or "NV-CENTRE"
    platform = PLATFORM_OF.get(tech, mem.NV)
    return MemorySpec(
        memory_id=str(raw["memory-id"]),
        technology=tech,
        capacity=int(raw.get("capacity", 1)),
        t1_ns=_ns(raw.get("t1")) or int(platform.t1_s * NS),
        t2_ns=_ns(raw.get("t2")) or int(platform.t2_s * NS),
        efficiency=as_float(raw.get("efficiency")) or 1.0,
        capacity_unit=str(raw.get("capacity-unit", "qubits")),
    )


def parse_link(raw: dict[str, Any]) -> LinkSpec:
    port = raw.get("switch-port")
    return LinkSpec(
        link_id=str(raw["link-id"]),
        local_memory=str(raw.get("local-memory")),
        remote_node=str(raw.get("remote-node")),
        remote_memory=raw.get("remote-memory"),
        scheme=bare_identity(raw.get("generation-scheme")) or "BARRETT-KOK",
        attenuation_db=as_float(raw.get("attenuation")),
        switch_port=(str(port["device"]), int(port["port"])) if port else None,
        length_km=as_float(raw.get("length")),
        target_fidelity=as_float(raw.get("target-fidelity")),
        cutoff_ns=_ns(raw.get("cutoff-time")),
        enabled=as_bool(raw.get("enabled"), True),
        urn=raw.get("urn"),
    )


def parse_route(raw: dict[str, Any]) -> Route:
    return Route(str(raw["destination"]), raw.get("next-hop-node"), raw.get("next-hop-link"),
                 as_float(raw.get("min-fidelity")) or 0.0)


@dataclass(slots=True)
class _Delta:
    """The entries a transaction touched, as records (None: deleted), and the node's uuid when
    it changed."""

    memories: dict[str, MemorySpec | None] = field(default_factory=dict)
    links: dict[str, LinkSpec | None] = field(default_factory=dict)
    routes: dict[str, Route | None] = field(default_factory=dict)
    units: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    uuid: Any = _KEEP
    urn: Any = _KEEP


class MemoryTwin:
    """DeviceDriver of one quantum-memory node in a `World`."""

    tick_order = DEVICE_ORDER

    def __init__(self, world: World, name: str, *, swap_success: float = 1.0, **options: Any) -> None:
        self.name = name
        self.world = world
        self.clock: DeviceClock = world
        node = world.topology.nodes.get(name)
        self.options = {**(node.options if node else {}), **options}
        self.swap_success = swap_success
        self.uuid = world.node_uuid(name)
        self.hardware = self._hardware_memories()
        self.memories: dict[str, MemorySpec] = dict(self.hardware)
        self.links: dict[str, LinkSpec] = {}
        self.routes: dict[str, Route] = {}
        """Forwarding-table entries by destination."""
        self.tracker = ChangeTracker(name, (TOP, pair_service.TOP), {**WATCH, **pair_service.WATCH})
        """The configuration as the datastore has it, kept from change lists."""
        self.fabric = ent.fabric(world)
        self.urn: str | None = MEMORY_NODE.get(self.options, "urn")
        """The node's name in the service stratum (qfs-node/urn): what a unit's destination names."""
        self.service = pair_service.PairService(self)
        self.hub = EventHub()
        self.swaps_attempted = 0
        self.swaps_succeeded = 0
        self.last_swap: tuple[float, int] | None = None
        self.started_ns = world.now_ns
        self._link_status: dict[str, str] = {}
        self._below: dict[str, bool] = {}
        self._occupancy: dict[str, int] = {}
        self._stored: dict[str, tuple[str, ...]] = {}
        """Pair ids held per memory at the last tick: a pair that comes or goes is announced. A
        tuple of strings, which the garbage collector stops tracking (a frozenset it would
        traverse in every full collection)."""

    def _hardware_memories(self) -> dict[str, MemorySpec]:
        found = {}
        for raw in MEMORY_NODE.get(self.options, "memories") or [{"id": "mem0", "technology": "NV-CENTRE", "capacity": 2}]:
            tech = str(MEMORY.get(raw, "technology", "NV-CENTRE"))
            platform = PLATFORM_OF.get(tech, mem.NV)
            memory_id = str(MEMORY.get(raw, "id"))
            found[memory_id] = MemorySpec(
                memory_id=memory_id, technology=tech, capacity=int(MEMORY.get(raw, "capacity", 2)),
                t1_ns=int(float(MEMORY.get(raw, "t1_s", platform.t1_s)) * NS),
                t2_ns=int(float(MEMORY.get(raw, "t2_s", platform.t2_s)) * NS),
                efficiency=float(MEMORY.get(raw, "efficiency", 1.0)),
                capacity_unit="modes" if platform.modes > 1 else "qubits",
            )
        return found

    def inventory_config(self) -> JsonTree:
        node: dict[str, Any] = {"uuid": self.uuid}
        urn = MEMORY_NODE.get(self.options, "urn")
        if urn:
            node["urn"] = str(urn)
        node["memories"] = {"memory": [
            {
                "memory-id": m.memory_id,
                "technology": f"{QFS}:{m.technology}",
                "capacity": m.capacity,
                "capacity-unit": m.capacity_unit,
                "t1": str(m.t1_ns),
                "t2": str(m.t2_ns),
                "efficiency": decimal64(m.efficiency, 4),
            }
            for m in self.hardware.values()
        ]}
        return {TOP: node}

    # -- DeviceDriver ------------------------------------------------------------------------

    async def start(self) -> Inventory:
        self.world.host(self.name, self)
        self.world.attach(self)
        self._apply_memories()
        self.started_ns = self.world.now_ns
        config = self.inventory_config()
        self.tracker.seed(config)
        return Inventory(modules=(QFS, "etsi-qkd-node-types", *self.service.modules), config=config)

    async def prepare(self, txn: ConfigTransaction) -> None:
        delta = self._stage(txn).result
        try:
            self._check(delta)
            self.service.prepare(delta.units)
        except DeviceRefusal:
            self.tracker.refused()
            raise

    def _stage(self, txn: ConfigTransaction) -> Staged:
        """Apply the change list to the configuration copy; read back the entries it touched."""
        staged = self.tracker.stage(txn)
        model, delta = staged.model, _Delta()
        for key in staged.touched(MEMORIES, self.memories):
            raw = model.entry(MEMORIES, (key,))
            delta.memories[key] = None if raw is None else parse_memory(raw)
        for key in staged.touched(LINKS, self.links):
            raw = model.entry(LINKS, (key,))
            delta.links[key] = None if raw is None else parse_link(raw)
        for key in staged.touched(ROUTES, self.routes):
            raw = model.entry(ROUTES, (key,))
            delta.routes[key] = None if raw is None else parse_route(raw)
        if staged.changed((TOP,)):
            delta.uuid = model.get(UUID)
            delta.urn = model.get((TOP, "urn"))
        delta.units = self.service.stage(staged)
        staged.result = delta
        return staged

    def _check(self, delta: _Delta) -> None:
        """Refuse what the node cannot do: the touched memories, the touched links and the links
        on a touched memory (a scan of the links, only when memories change)."""
        for memory_id, spec in delta.memories.items():
            if spec is None:
                continue
            hw = self.hardware.get(memory_id)
            if hw is None:
                raise DeviceRefusal(
                    f"memory {memory_id} does not exist in {self.name} (it has {', '.join(self.hardware)})",
                    _memory_path(memory_id),
                )
            if spec.technology != hw.technology:
                raise DeviceRefusal(
                    f"memory {memory_id} is a {hw.technology} memory, not {spec.technology}",
                    _memory_path(memory_id, below="technology"),
                )
            if spec.capacity > hw.capacity:
                raise DeviceRefusal(
                    f"memory {memory_id} has {hw.capacity} {hw.capacity_unit}, not {spec.capacity}",
                    _memory_path(memory_id, below="capacity"),
                )
        links = {k: v for k, v in delta.links.items() if v is not None}
        if delta.memories:
            links.update((k, v) for k, v in self.links.items() if k not in delta.links and v.local_memory in delta.memories)
        for link in links.values():
            memory = delta.memories[link.local_memory] if link.local_memory in delta.memories \
                else self.memories.get(link.local_memory)
            if memory is None:
                raise DeviceRefusal(
                    f"link {link.link_id}: local-memory {link.local_memory} is not configured",
                    _link_path(link.link_id, below="local-memory"),
                )
            if link.scheme not in SCHEMES_OF.get(memory.technology, set()):
                raise DeviceRefusal(
                    f"link {link.link_id}: a {memory.technology} memory cannot run {link.scheme} "
                    f"(it supports {', '.join(sorted(SCHEMES_OF.get(memory.technology, ())))})",
                    _link_path(link.link_id, below="generation-scheme"),
                )
            if link.switch_port is not None:
                device, port = link.switch_port
                fabric = self.world.plant.switches.get(device)
                if fabric is None or port not in fabric.port_ids:
                    raise DeviceRefusal(
                        f"link {link.link_id}: switch port {device}/{port} does not exist",
                        _link_path(link.link_id, below="switch-port"),
                    )

    async def commit(self, txn: ConfigTransaction) -> None:
        staged = self.tracker.staged(txn) or self._stage(txn)
        self.tracker.committed()
        delta: _Delta = staged.result
        if delta.uuid is not _KEEP and delta.uuid and delta.uuid != self.uuid:
            self.uuid = delta.uuid
            self.world.set_node_uuid(self.name, delta.uuid)
        if delta.urn is not _KEEP:
            self.urn = delta.urn
            self.fabric.version += 1
        if delta.memories:
            update_records(self.memories, delta.memories)
            self._apply_memories()
        for link_id, link in delta.links.items():
            if link is None:
                if self.links.pop(link_id, None) is not None:
                    self.fabric.release(link_id, self.name)
                continue
            self.links[link_id] = link
            self.fabric.set_end(link_id, self._link_end(link))
        update_records(self.routes, delta.routes)
        self.service.commit(delta.units)

    async def abort(self, txn: ConfigTransaction) -> None:
        """Another participant refused: forget what prepare applied to the configuration copy."""
        self.tracker.aborted(txn)

    def events(self) -> AsyncIterator[DeviceEvent]:
        return self.hub.subscribe()

    async def stop(self) -> None:
        for link_id in self.links:
            self.fabric.release(link_id, self.name)
        self.world.detach(self)
        self.world.unhost(self.name)
        self.hub.close()

    # -- helpers -----------------------------------------------------------------------------

    def _apply_memories(self) -> None:
        records = []
        for spec in self.memories.values():
            platform = PLATFORM_OF.get(spec.technology, mem.NV)
            records.append(ent.Memory(
                node=self.name, memory_id=spec.memory_id, capacity=spec.capacity,
                t1_s=spec.t1_ns / NS, t2_s=spec.t2_ns / NS, efficiency=spec.efficiency,
                eta_c=platform.eta_c, f0=platform.f0, modes=platform.modes,
                attempt_overhead_s=platform.attempt_overhead_s,
            ))
        self.fabric.set_memories(self.name, records)

    def _link_end(self, link: LinkSpec) -> ent.LinkEnd:
        start = None
        if link.switch_port is not None:
            # Light leaves this node's port cabled to that switch port; without such a cable in
            # the topology it enters the switch at that port directly.
            at_switch = Endpoint(*link.switch_port)
            fibre = self.world.topology.fibre_at(at_switch)
            far = fibre.other_end(at_switch) if fibre is not None else None
            start = far if far is not None and far.device == self.name else at_switch
        return ent.LinkEnd(
            node=self.name, memory=link.local_memory,
            remote_node=self.world.node_by_uuid(link.remote_node), remote_memory=link.remote_memory,
            scheme=link.scheme, enabled=link.enabled, start=start, attenuation_db=link.attenuation_db,
            length_km=link.length_km, target_fidelity=link.target_fidelity, cutoff_ns=link.cutoff_ns,
        )

    def _node_uuid(self, node: str) -> str:
        return self.world.node_uuid(node)

    def delivered_fidelity(self, link_id: str) -> float | None:
        """Mean fidelity now of this link's pairs held here (not those delivered to a service unit:
        they are the application's); else F0 of its last herald."""
        values = [
            self.fabric.fidelity(p) for p in self.fabric.pairs_at(self.name) if p.link_id == link_id and p.unit is None
        ]
        if values:
            return sum(values) / len(values)
        link = self.fabric.links.get(link_id)
        return link.last_f0 if link is not None else None

    def read_state(self) -> JsonTree:
        memories = []
        pairs = self.fabric.pairs_at(self.name)
        for spec in self.memories.values():
            record = self.fabric.memory(self.name, spec.memory_id)
            stored = []
            for pair in pairs:
                half = pair.half_at(self.name)
                if half is None or half.memory != spec.memory_id:
                    continue
                far = pair.other(self.name)
                entry: dict[str, Any] = {
                    "pair-id": pair.pair_id,
                    "slot": half.slot,
                    "remote-node": self._node_uuid(far.node),
                    "remote-memory": far.memory,
                    "creation-time": self.world.date_and_time(pair.created_ns),
                    "fidelity": decimal64(self.fabric.fidelity(pair), 4),
                }
                if pair.link_id is not None and pair.link_id in self.links:
                    entry["link-id"] = pair.link_id
                if pair.expiry_ns is not None:
                    entry["expiry-time"] = self.world.date_and_time(pair.expiry_ns)
                if pair.unit is not None:
                    entry["service-unit"] = pair.unit
                stored.append(entry)
            memories.append({
                "memory-id": spec.memory_id,
                "occupancy": record.occupancy if record else 0,
                "stored-pairs": {"pair": stored},
            })
        links = []
        for link_id in self.links:
            session = self.fabric.links.get(link_id)
            entry = {
                "link-id": link_id,
                "status": f"etsi-qkd-node-types:{session.status if session else 'OFF'}",
                "generation-rate": decimal64(min(session.rate_hz if session else 0.0, 1e9), 4),
                "attempts": str(session.attempts if session else 0),
                "successes": str(session.successes if session else 0),
                "discontinuity-time": self.world.date_and_time(self.started_ns),
            }
            fidelity = self.delivered_fidelity(link_id)
            if fidelity is not None:
                entry["delivered-fidelity"] = decimal64(fidelity, 4)
            links.append(entry)
        swaps: dict[str, Any] = {
            "swaps-attempted": str(self.swaps_attempted),
            "swaps-succeeded": str(self.swaps_succeeded),
            "discontinuity-time": self.world.date_and_time(self.started_ns),
        }
        if self.last_swap is not None:
            swaps["last-swap-fidelity"] = decimal64(self.last_swap[0], 4)
            swaps["last-swap-time"] = self.world.date_and_time(self.last_swap[1])
        return {TOP: {
            "memories": {"memory": memories},
            "entanglement-links": {"link": links},
            "swap-statistics": swaps,
        }, **self.service.read_state()}

    # -- per tick ----------------------------------------------------------------------------

    def on_tick(self, now_ns: int, dt_ns: int) -> None:
        for _ in self.tick_steps(now_ns, dt_ns):
            pass

    def tick_steps(self, now_ns: int, dt_ns: int) -> Iterator[None]:
        """One tick a piece at a time (`World.advance_sliced` yields between pieces): swaps by the
        forwarding table, the service units, then what changed since the last tick."""
        self._swap_by_forwarding_table()
        yield
        yield from self.service.tick_steps(now_ns)
        self._report(now_ns)

    def _report(self, now_ns: int) -> None:
        changed: list[str] = []
        for link_id, spec in self.links.items():
            session = self.fabric.links.get(link_id)
            status = session.status if session else "OFF"
            before = self._link_status.get(link_id)
            if status != before:
                self._link_status[link_id] = status
                changed.append(_link_path(link_id, below="status"))
                if before == "ACTIVE" and status in ("OFF", "PENDING"):
                    self._notify("qfs-link-down", {"link-id": link_id, "reason": session.reason if session else "removed"})
            fidelity = self.delivered_fidelity(link_id)
            below = fidelity is not None and spec.target_fidelity is not None and fidelity < spec.target_fidelity
            if below and not self._below.get(link_id):
                self._notify("qfs-fidelity-below-threshold", {
                    "link-id": link_id, "fidelity": decimal64(fidelity, 4),
                    "threshold": decimal64(spec.target_fidelity, 4),
                })
            self._below[link_id] = below
        held: dict[str, set[str]] = {memory_id: set() for memory_id in self.memories}
        for pair in self.fabric.pairs_at(self.name):
            half = pair.half_at(self.name)
            if half is not None and half.memory in held:
                held[half.memory].add(pair.pair_id)
        for memory_id, pair_ids in held.items():
            stored = self._stored.get(memory_id, ())
            if len(pair_ids) != len(stored) or not pair_ids.issuperset(stored):
                self._stored[memory_id] = tuple(pair_ids)
                changed.append(_memory_path(memory_id, below="stored-pairs"))
        for spec in self.memories.values():
            record = self.fabric.memory(self.name, spec.memory_id)
            occupancy = record.occupancy if record else 0
            before = self._occupancy.get(spec.memory_id, 0)
            if occupancy != before:
                self._occupancy[spec.memory_id] = occupancy
                changed.append(_memory_path(spec.memory_id, below="occupancy"))
                if occupancy >= spec.capacity > before:
                    self._notify("qfs-memory-full", {
                        "memory-id": spec.memory_id, "capacity": spec.capacity, "capacity-unit": spec.capacity_unit,
                    })
        if changed:
            self.hub.publish(DeviceEvent("state", {}, tuple(changed), now_ns))

    def _notify(self, name: str, body: dict[str, Any]) -> None:
        self.hub.publish(DeviceEvent("notification", {f"{QFS}:{name}": body}, (), self.world.now_ns))

    def next_hop(self, route: Route) -> str | None:
        """The node a forwarding entry extends pairs to."""
        if route.next_hop_link and route.next_hop_link in self.links:
            return self.world.node_by_uuid(self.links[route.next_hop_link].remote_node)
        return self.world.node_by_uuid(route.next_hop_node)

    def _swap_by_forwarding_table(self) -> None:
        rng = self.world.rng(f"swap/{self.name}")
        for route in self.routes.values():
            destination = self.world.node_by_uuid(route.destination)
            next_hop = self.next_hop(route)
            if destination is None or next_hop is None:
                continue
            while True:
                held = sorted(self.fabric.pairs_at(self.name), key=lambda p: p.created_ns)
                good = [p for p in held if p.unit is None and self.fabric.fidelity(p) >= route.min_fidelity]
                outgoing = [p for p in good if p.other(self.name).node == next_hop]
                incoming = [p for p in good if p.other(self.name).node not in (next_hop, destination, self.name)]
                if not outgoing or not incoming:
                    break
                success = self.world.deterministic or rng.random() < self.swap_success
                if self.world.deterministic:
                    success = self.swap_success >= 0.5
                self.swaps_attempted += 1
                result = self.fabric.swap(self.name, incoming[0], outgoing[0], success)
                if result is not None:
                    self.swaps_succeeded += 1
                    self.last_swap = (result.f0, self.world.now_ns)
