"""Entangled-state service units of a quantum-memory node (`qstrata-ss` ENTANGLED-STATE).

Part of `MemoryTwin` (its `service`), as the KME is part of a QKD twin: the node an application
asks is the unit's source, and the QFS of the nodes on the route fulfils it. A unit configured on
its source node goes through:

  requested    accepted; admitted at the next tick, or failed with the link-layer error
               (Dahlberg et al., SIGCOMM 2019) that says why:
                 REJECTED  no route: no memory node's URN (`qfs-node/urn`) is the destination
                           URN without components (or a leading part of it up to a ':' or '/'),
                           or no chain of entanglement links reaches it;
                 UNSUPP    fidelity unreachable: fresh pairs of the route's links, swapped
                           together (F_s = F1*F2 + (1-F1)*(1-F2)/3 per repeater), stay below
                           the lifecycle URN's `fidelity` before any storage; or a KEY unit;
                 NORES     no free slot: an end memory holds fewer slots than pairs asked that
                           are not delivered to other units, or a repeater fewer than two;
                 NOTIME    `valid-until` passed before admission;
  routing      the route: at each node, its forwarding-table entry for the unit's URN or for
               the destination's uuid, else the first hop of a fewest-hops path over the
               configured entanglement links;
  establishing every tick, at each repeater from the source outwards, the best free pair joining
               the source to it is swapped with its best free pair to the next node (when the
               result would still reach `fidelity`: a swap never raises fidelity, so pairs
               below it are discarded as useless); then free pairs joining the two ends at or
               above `fidelity` are delivered, best first: they belong to the unit (no swap, no
               cut-off) and their halves hold their slots until the unit ends;
  ready        `size` pairs delivered;
  consumed     the unit's entry was deleted from the configuration while ready: the application
               used the pairs; their slots are freed;
  expired      `valid-until` passed: TIMEOUT while establishing, EXPIRE while ready (the pairs
               are discarded).

Each delivery is a link-layer OK: sequence number, Bell state, fidelity estimate with the time it
holds for (the delivery), and the pair age at use (since the heralding of the oldest elementary
pair it was swapped from). Units of a higher lifecycle `priority` take pairs first. Per node:
units admitted, rejected at admission, expired, pairs delivered, failures by reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .base import DeviceRefusal, JsonTree
from .config_model import Staged
from .entanglement import BELL_STATES, Pair
from .physics import memory as mem
from .ss_twin import SS, TERMINAL, TOP, UNITS, Unit, announce, lifecycle, move, strip_components, unit_path
from .yangjson import bare_identity, decimal64

if TYPE_CHECKING:
    from .memory_twin import MemoryTwin

NS = 1_000_000_000
MAX_HOPS = 16
WATCH = {UNITS: ("unit-id",)}
"""The qstrata-ss list a memory twin keeps from change lists."""
ADMISSION_ERRORS = ("UNSUPP", "NOTIME", "NORES", "REJECTED")
ENTANGLED = "ENTANGLED-STATE"
TICK_PIECE = 32
"""Units per piece of the sliced tick."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One pair handed to the applications (a link-layer OK)."""

    sequence: int
    pair_id: str
    bell: int
    fidelity: float
    at_ns: int
    age_ns: int


@dataclass(slots=True)
class PairUnit(Unit):
    """An ENTANGLED-STATE unit: the request and what was delivered."""

    min_fidelity: float = 0.0
    priority: int = 0
    error: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    """The delivered pairs the unit holds."""
    nodes: list[str] = field(default_factory=list)
    """The route as node names (`route` holds their uuids)."""


def _parameters(raw: dict[str, Any]) -> tuple[int, int, float | None, int]:
    """(size, valid-until, fidelity, priority) of a unit's lifecycle URN; ValueError names what
    is wrong."""
    params = lifecycle(str(raw.get("lifecycle-urn", "")))
    try:
        size, valid_until = int(params["size"]), int(params["valid-until"])
    except (KeyError, ValueError):
        raise ValueError("the lifecycle URN needs size=<pairs> and valid-until=<POSIX seconds>") from None
    fidelity = None
    if "fidelity" in params:
        try:
            fidelity = float(params["fidelity"])
        except ValueError:
            fidelity = -1.0
        if not 0.0 <= fidelity <= 1.0:
            raise ValueError(f"fidelity={params['fidelity']} is not a fraction 0..1")
    try:
        priority = int(params.get("priority", "0"))
    except ValueError:
        priority = -1
    if not 0 <= priority <= 255:
        raise ValueError(f"priority={params.get('priority')} is not an integer 0..255")
    return size, valid_until, fidelity, priority


class PairService:
    """The service stratum of one memory node."""

    modules = (SS,)

    def __init__(self, twin: MemoryTwin) -> None:
        self.twin = twin
        self.world = twin.world
        self.fabric = twin.fabric
        self.units: dict[str, PairUnit] = {}
        self.transit: dict[str, PairUnit] = {}
        """Units whose other end is this node (listed here too)."""
        self.admitted = 0
        self.rejected = 0
        self.expired = 0
        self.pairs_delivered = 0
        self.fidelity_sum = 0.0
        self.last: Delivery | None = None
        self.failures: Counter[str] = Counter()
        self.since_ns = self.world.now_ns

    # -- configuration -----------------------------------------------------------------------

    def stage(self, staged: Staged) -> dict[str, dict[str, Any] | None]:
        """The units a change list touched, read back from the node's configuration copy."""
        return {unit_id: staged.model.entry(UNITS, (unit_id,)) for unit_id in staged.touched(UNITS, self.units)}

    def prepare(self, delta: dict[str, dict[str, Any] | None]) -> None:
        for unit_id, raw in delta.items():
            if raw is None:
                continue
            try:
                _parameters(raw)
            except ValueError as exc:
                raise DeviceRefusal(str(exc), unit_path(unit_id, "lifecycle-urn")) from None

    def commit(self, delta: dict[str, dict[str, Any] | None]) -> None:
        now = self.world.now_ns
        for unit_id, raw in delta.items():
            if raw is None:
                unit = self.units.pop(unit_id, None)
                if unit is not None:
                    if unit.state == "ready":
                        self._move(unit, "consumed")
                    self._release(unit)
                continue
            if unit_id in self.units:
                continue
            size, valid_until, fidelity, priority = _parameters(raw)
            unit = PairUnit(
                unit_id=unit_id, source_urn=str(raw["source-urn"]), destination_urn=str(raw["destination-urn"]),
                lifecycle_urn=str(raw["lifecycle-urn"]), kind=bare_identity(raw.get("kind")) or ENTANGLED,
                originator=raw.get("originator"), size=size, valid_until_unix=valid_until, created_ns=now,
                min_fidelity=fidelity or 0.0, priority=priority,
            )
            self.units[unit_id] = unit
            announce(unit, None, self.twin.hub, now)

    # -- per tick ----------------------------------------------------------------------------

    def tick_steps(self, now_ns: int) -> Iterator[None]:
        """The units' work of one tick, `TICK_PIECE` units at a time (the twin's sliced tick
        yields to the event loop between pieces); a unit deleted meanwhile is skipped."""
        if not self.units:
            return
        unix_now = self.world.unix_ns()
        live = [u for u in self.units.values() if u.state not in TERMINAL]
        live.sort(key=lambda u: (-u.priority, u.created_ns))
        if any(u.state == "requested" for u in live):
            # Admission reads views of every hosted node and link (1-1.5 ms each with 1,000
            # links): rebuilt after a change, each in a piece of its own, not all in one unit's.
            for name, compute in (("urns", self._urn_index), ("adjacency", self._adjacency),
                                  ("links", self._link_index)):
                if self._view_stale(name):
                    self._view(name, compute)
                    yield
        for n, unit in enumerate(live, 1):
            if self.units.get(unit.unit_id) is unit:
                self._tick_unit(unit, unix_now, now_ns)
            if n % TICK_PIECE == 0:
                yield

    def _tick_unit(self, unit: PairUnit, unix_now: int, now_ns: int) -> None:
        if unix_now >= unit.valid_until_unix * NS:
            if unit.state == "requested":
                self._fail(unit, "NOTIME", f"valid-until {unit.valid_until_unix} passed before admission")
            else:
                error = "EXPIRE" if unit.state == "ready" else "TIMEOUT"
                self._end(unit, "expired", error, f"valid-until {unit.valid_until_unix} passed with "
                          f"{len(unit.deliveries)} of {unit.size} pairs delivered"
                          + (", not consumed" if error == "EXPIRE" else ""))
            return
        if unit.state == "requested":
            self._admit(unit)
        if unit.state == "establishing":
            self._establish(unit, now_ns)
        elif unit.state == "ready" and any(p.pair_id not in self.fabric.pairs for p in unit.pairs):
            self._end(unit, "expired", "EXPIRE", "a delivered pair was lost from its memory before use")

    # -- admission ---------------------------------------------------------------------------

    def _admit(self, unit: PairUnit) -> None:
        if unit.kind != ENTANGLED:
            self._fail(unit, "UNSUPP", "a memory node delivers ENTANGLED-STATE units; keys come from a KME")
            return
        target = strip_components(unit.destination_urn)
        destination = self._node_of_urn(target)
        if destination is None or destination == self.twin.name:
            self._fail(unit, "REJECTED", f"no route to {target}: no other memory node has that URN")
            return
        self._move(unit, "routing")
        nodes = self._route(unit, destination)
        if nodes is None:
            self._fail(unit, "REJECTED", f"no route from {self.twin.name} to {destination} over entanglement links")
            return
        unit.nodes = nodes
        unit.route = [self.world.node_uuid(n) for n in nodes]
        links = [self._link_between(x, y) for x, y in zip(nodes, nodes[1:], strict=False)]
        best = None
        for link in links:
            f0 = self._fresh_fidelity(link)
            best = f0 if best is None else mem.swap_fidelity(best, f0)
        if best is None or best < unit.min_fidelity:
            self._fail(unit, "UNSUPP", f"fidelity {unit.min_fidelity:.4f} unreachable with these memories: "
                       f"fresh pairs swapped along {'-'.join(nodes)} reach {best or 0.0:.4f}")
            return
        short = self._short_of_slots(unit, links)
        if short:
            self._fail(unit, "NORES", short)
            return
        self.admitted += 1
        other = self._service_of(destination)
        if other is not None:
            other.transit[unit.unit_id] = unit
        self._move(unit, "establishing")

    def _node_of_urn(self, target: str) -> str | None:
        """The hosted memory node whose URN is `target` or its longest leading part ending at a
        ':' or '/'."""
        target = target.lower()
        urns: dict[str, str] = self._view("urns", self._urn_index)
        found = urns.get(target)
        for i in range(len(target) - 1, 6, -1):  # the longest leading part ending before a ':' or '/'
            if found is not None:
                break
            if target[i] in ":/":
                found = urns.get(target[:i])
        return found

    def _urn_index(self) -> dict[str, str]:
        """Lower-case URN -> name of every hosted memory node that serves units."""
        return {str(d.urn).lower(): name for name, d in self.world.hosted.items()
                if getattr(d, "urn", None) and getattr(d, "service", None) is not None}

    def _adjacency(self) -> dict[str, list[str]]:
        """Node -> the nodes its configured links reach (configured at both ends; a disabled
        link is down, not gone)."""
        adjacent: dict[str, list[str]] = {}
        for link in self.fabric.links.values():
            if len(link.ends) == 2:
                x, y = link.ends
                adjacent.setdefault(x, []).append(y)
                adjacent.setdefault(y, []).append(x)
        return adjacent

    def _view_key(self) -> tuple[int, int]:
        return self.fabric.version, len(self.world.hosted)

    def _view_stale(self, name: str) -> bool:
        cached = self.fabric.views.get(name)
        return cached is None or cached[0] != self._view_key()

    def _view(self, name: str, compute):
        """A view of the fabric's links and nodes, recomputed only when they changed."""
        if self._view_stale(name):
            self.fabric.views[name] = (self._view_key(), compute())
        return self.fabric.views[name][1]

    def _route(self, unit: PairUnit, destination: str) -> list[str] | None:
        adjacent: dict[str, list[str]] = self._view("adjacency", self._adjacency)
        dest_uuid = self.world.node_uuid(destination).lower()
        path = [self.twin.name]
        while path[-1] != destination and len(path) <= MAX_HOPS:
            here = path[-1]
            step = self._forwarding_hop(here, strip_components(unit.destination_urn), dest_uuid)
            step = step or _first_hop(adjacent, here, destination)
            if step is None or step in path or step not in adjacent.get(here, ()):
                return None
            path.append(step)
        return path if path[-1] == destination else None

    def _forwarding_hop(self, node: str, urn: str, dest_uuid: str) -> str | None:
        """The next hop of `node`'s forwarding table for the unit's URN or the destination."""
        twin = self.world.hosted.get(node)
        routes = getattr(twin, "routes", None)
        if not routes:
            return None
        for key, route in routes.items():
            if key.lower() in (urn.lower(), dest_uuid):
                return twin.next_hop(route)
        return None

    def _link_between(self, x: str, y: str):
        return self._view("links", self._link_index).get(frozenset((x, y)))

    def _link_index(self) -> dict[frozenset[str], Any]:
        """The first configured link joining each two nodes."""
        index: dict[frozenset[str], Any] = {}
        for link in self.fabric.links.values():
            if len(link.ends) == 2:
                index.setdefault(frozenset(link.ends), link)
        return index

    def _fresh_fidelity(self, link) -> float:
        pair = link.memories() if link is not None else None
        if pair is None:
            return 0.0
        return link.success_probability(*pair, 0.0)[1]

    def _short_of_slots(self, unit: PairUnit, links: list) -> str | None:
        """Why the route's memories cannot hold the unit's pairs, or None."""
        nodes = unit.nodes
        for i, node in enumerate(nodes):
            used = [links[j].ends[node].memory for j in (i - 1, i) if 0 <= j < len(links) and node in links[j].ends]
            memories = [self.fabric.memory(node, m) for m in dict.fromkeys(used)]
            free = sum(m.capacity - sum(1 for pid in m.slots.values() if self._held(pid)) for m in memories if m)
            need = unit.size if i in (0, len(nodes) - 1) else 2
            if free < need:
                where = "repeater" if 0 < i < len(nodes) - 1 else "end"
                return (f"no free slot: {where} {node} has {max(free, 0)} slots not held by other units, "
                        f"{need} needed")
        return None

    def _held(self, pair_id: str) -> bool:
        pair = self.fabric.pairs.get(pair_id)
        return pair is not None and pair.unit is not None

    def _service_of(self, node: str) -> PairService | None:
        return getattr(self.world.hosted.get(node), "service", None)

    # -- establishing ------------------------------------------------------------------------

    def _establish(self, unit: PairUnit, now_ns: int) -> None:
        nodes, source, floor = unit.nodes, unit.nodes[0], unit.min_fidelity
        for i in range(1, len(nodes) - 1):
            repeater, following = nodes[i], nodes[i + 1]
            left = self._best(source, repeater, floor)
            right = self._best(repeater, following, floor)
            if left is None or right is None:
                continue
            f_left, f_right = self.fabric.fidelity(left), self.fabric.fidelity(right)
            if mem.swap_fidelity(f_left, f_right) < floor:
                self.fabric.discard((left if f_left < f_right else right).pair_id)
                continue
            twin = self.world.hosted.get(repeater)
            rng = self.world.rng(f"swap/{repeater}")
            success = getattr(twin, "swap_success", 1.0)
            ok = success >= 0.5 if self.world.deterministic else rng.random() < success
            outcome = 0 if self.world.deterministic else rng.getrandbits(2)
            if twin is not None:
                twin.swaps_attempted += 1
            made = self.fabric.swap(repeater, left, right, ok, outcome)
            if made is not None and twin is not None:
                twin.swaps_succeeded += 1
                twin.last_swap = (made.f0, now_ns)
        destination = nodes[-1]
        while len(unit.deliveries) < unit.size:
            pair = self._best(source, destination, floor)
            if pair is None:
                break
            self._deliver(unit, pair, now_ns)
        if len(unit.deliveries) >= unit.size:
            self._move(unit, "ready")

    def _best(self, node: str, other: str, floor: float) -> Pair | None:
        """The free pair joining `node` and `other` with the highest fidelity now; free pairs of
        theirs below `floor` are discarded (no swap can lift them to it)."""
        best, best_f = None, -1.0
        for pair in self.fabric.pairs_between(node, other):
            f = self.fabric.fidelity(pair)
            if f < floor:
                self.fabric.discard(pair.pair_id)
            elif f > best_f:
                best, best_f = pair, f
        return best

    def _deliver(self, unit: PairUnit, pair: Pair, now_ns: int) -> None:
        pair.unit, pair.expiry_ns = unit.unit_id, None
        unit.pairs.append(pair)
        self.last = Delivery(len(unit.deliveries) + 1, pair.pair_id, pair.bell, self.fabric.fidelity(pair, now_ns),
                             now_ns, now_ns - pair.born_ns)
        unit.deliveries.append(self.last)
        self.pairs_delivered += 1
        self.fidelity_sum += self.last.fidelity

    # -- endings -----------------------------------------------------------------------------

    def _fail(self, unit: PairUnit, error: str, reason: str) -> None:
        self._end(unit, "failed", error, reason)

    def _end(self, unit: PairUnit, state: str, error: str, reason: str) -> None:
        unit.error = error
        self.failures[error] += 1
        if error in ADMISSION_ERRORS:
            self.rejected += 1
        else:
            self.expired += 1
        self._release(unit)
        self._move(unit, state, f"{error}: {reason}")

    def _release(self, unit: PairUnit) -> None:
        """The unit's pairs leave their memories; the other end forgets the unit once it ended."""
        for pair in unit.pairs:
            self.fabric.discard(pair.pair_id)
        unit.pairs = []
        if unit.nodes and unit.unit_id not in self.units:
            other = self._service_of(unit.nodes[-1])
            if other is not None:
                other.transit.pop(unit.unit_id, None)

    def _move(self, unit: PairUnit, state: str, reason: str | None = None) -> None:
        move(unit, state, reason, self.twin.hub, self.world.now_ns)

    # -- state -------------------------------------------------------------------------------

    def read_state(self) -> JsonTree:
        units = [self._unit_state(u, u.unit_id not in self.units)
                 for u in [*self.units.values(), *(u for k, u in self.transit.items() if k not in self.units)]]
        counters: dict[str, Any] = {
            "admitted": str(self.admitted), "rejected": str(self.rejected), "expired": str(self.expired),
            "pairs-delivered": str(self.pairs_delivered),
            "failure": [{"reason": r, "count": str(n)} for r, n in sorted(self.failures.items())],
            "discontinuity-time": self.world.date_and_time(self.since_ns),
        }
        if self.last is not None:
            counters.update({"fidelity-mean": decimal64(self.fidelity_sum / self.pairs_delivered, 4),
                             "last-fidelity": decimal64(self.last.fidelity, 4),
                             "last-delivery-time": self.world.date_and_time(self.last.at_ns)})
        return {TOP: {"service-units": {"service-unit": units}, "entanglement-requests": counters}}

    def _unit_state(self, unit: PairUnit, transit: bool) -> dict[str, Any]:
        w = self.world
        entry: dict[str, Any] = {
            "unit-id": unit.unit_id,
            "state": unit.state,
            "created-time": w.date_and_time(unit.created_ns),
            "valid-until": w.date_and_time(unit.valid_until_unix * NS - w.epoch_unix_ns),
        }
        if transit:
            entry.update({"source-urn": unit.source_urn, "destination-urn": unit.destination_urn,
                          "lifecycle-urn": unit.lifecycle_urn, "kind": f"{SS}:{unit.kind}"})
        if unit.route:
            entry["route"] = list(unit.route)
        if unit.kind != ENTANGLED:
            return entry
        if unit.state == "ready":
            entry["content"] = {"memory-slot": [
                {"node": w.node_uuid(h.node), "memory": h.memory, "slot": h.slot, "pair-id": p.pair_id}
                for p in unit.pairs for h in (p.a, p.b)]}
        request = {"min-fidelity": decimal64(unit.min_fidelity, 4),
                   "max-time": str(max(unit.valid_until_unix * NS - w.epoch_unix_ns - unit.created_ns, 0)),
                   "number": unit.size, "priority": unit.priority}
        ent: dict[str, Any] = {"request": request, "pairs-delivered": len(unit.deliveries)}
        if unit.error:
            ent["failure"] = unit.error
        if unit.deliveries:
            ds = unit.deliveries
            ent["time-to-first-pair"] = str(ds[0].at_ns - unit.created_ns)
            ent["fidelity-mean"] = decimal64(sum(d.fidelity for d in ds) / len(ds), 4)
            ent["age-max"] = str(max(d.age_ns for d in ds))
            ent["delivered-pair"] = [
                {"sequence-number": d.sequence, "pair-id": d.pair_id, "bell-state": BELL_STATES[d.bell],
                 "fidelity": decimal64(d.fidelity, 4), "fidelity-time": w.date_and_time(d.at_ns),
                 "age": str(d.age_ns)} for d in ds]
        entry["entanglement"] = ent
        return entry


def _first_hop(adjacent: dict[str, list[str]], source: str, destination: str) -> str | None:
    """The first hop of a fewest-hops path (breadth first, links in configuration order)."""
    first: dict[str, str] = {}
    frontier = [(n, n) for n in adjacent.get(source, [])]
    seen = {source}
    while frontier:
        following = []
        for node, hop in frontier:
            if node in seen:
                continue
            seen.add(node)
            first[node] = hop
            if node == destination:
                return hop
            following += [(n, hop) for n in adjacent.get(node, [])]
        frontier = following
    return None
