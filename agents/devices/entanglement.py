"""Entangled pairs and heralded generation links as the world sees them (qstrata-qfs physics).

Pairs are shared objects: one record, two halves in two nodes' memories, fidelity evaluated
lazily from the creation time (as SeQUeNCe/NetSquid do). Generation links are shared by both
end nodes like QKD link sessions; each tick draws the heralded successes of the attempts that
fit in the tick and stores them while both memories have a free slot. Pairs are discarded at
their cut-off. Swaps (done by the repeater node's twin) replace two pairs by one.

A pair also carries its Bell state as a Pauli frame relative to phi+ (bit 0: X, bit 1: Z), so a
swap's state is the frames of its two pairs and of the Bell-state measurement's outcome XORed;
the time the first elementary pair it came from was heralded (its storage age); and the service
unit it was delivered to (`qstrata-ss` ENTANGLED-STATE, pair_service.py): a delivered pair is the
application's, no longer swapped nor discarded at the cut-off.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import optics
from .physics import memory as mem
from .physics.sampling import binomial
from .topology import Endpoint

if TYPE_CHECKING:
    from .world import World

NS = 1_000_000_000
BELL_STATES = ("phi-plus", "psi-plus", "phi-minus", "psi-minus")
"""qstrata-ss bell-state names by Pauli frame (bit 0: X, bit 1: Z)."""
PSI_PLUS = 1
TICK_PIECE = 4
"""Links or expired pairs per piece of the fabric's sliced tick (`QfsFabric.tick_steps`): about
0.2 ms with 1,000 links (8 were 0.4 ms, the longest pieces of a tick)."""
SCAN_PIECE = 512
"""Pairs looked at for their cut-off per piece of the fabric's sliced tick (4,500 pairs, the
whole scan in one piece, took 0.3-1.5 ms)."""


@dataclass(slots=True)
class Memory:
    node: str
    memory_id: str
    capacity: int
    t1_s: float
    t2_s: float
    efficiency: float = 1.0
    eta_c: float = 0.05
    f0: float = 0.9
    modes: int = 1
    attempt_overhead_s: float = 5e-6
    slots: dict[int, str] = field(default_factory=dict)
    """slot -> pair_id of the half stored there."""

    def free_slot(self) -> int | None:
        for slot in range(self.capacity):
            if slot not in self.slots:
                return slot
        return None

    @property
    def occupancy(self) -> int:
        return len(self.slots)


@dataclass(frozen=True, slots=True)
class Half:
    node: str
    memory: str
    slot: int


@dataclass(slots=True)
class Pair:
    pair_id: str
    a: Half
    b: Half
    created_ns: int
    f0: float
    expiry_ns: int | None
    link_id: str | None
    bell: int = PSI_PLUS
    """Pauli frame relative to phi+ (BELL_STATES)."""
    born_ns: int = -1
    """Heralding time of the oldest elementary pair it was swapped from (its created_ns if none)."""
    unit: str | None = None
    """The service unit it was delivered to; None while it is free."""

    def __post_init__(self) -> None:
        if self.born_ns < 0:
            self.born_ns = self.created_ns

    def half_at(self, node: str) -> Half | None:
        return self.a if self.a.node == node else self.b if self.b.node == node else None

    def other(self, node: str) -> Half:
        return self.b if self.a.node == node else self.a


@dataclass(slots=True)
class LinkEnd:
    node: str
    memory: str
    remote_node: str | None
    remote_memory: str | None
    scheme: str
    enabled: bool = True
    start: Endpoint | None = None
    attenuation_db: float | None = None
    length_km: float | None = None
    target_fidelity: float | None = None
    cutoff_ns: int | None = None


@dataclass(eq=False)
class GenerationLink:
    fabric: QfsFabric
    link_id: str
    ends: dict[str, LinkEnd] = field(default_factory=dict)
    status: str = "OFF"
    reason: str = "not configured"
    rate_hz: float = 0.0
    attempts: int = 0
    successes: int = 0
    last_f0: float | None = None
    loss_db: float = math.inf
    _carry: float = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.ends) and all(e.enabled for e in self.ends.values())

    def channel(self) -> tuple[str | None, float, float]:
        """(obstacle, loss dB, length km) of the optical channel between the two memories."""
        world = self.fabric.world
        for end in self.ends.values():
            if end.start is not None:
                path = world.trace(end.start)
                if path.end is None:
                    return f"no light: {path.broken}", math.inf, 0.0
                if end.remote_node and path.end.device != end.remote_node:
                    return f"light reaches {path.end.device}, not {end.remote_node}", math.inf, 0.0
                if optics.dark_until_ns(world.plant, path) > world.now_ns:
                    return "switch reconfiguring", math.inf, 0.0
                length = sum(
                    world.plant.fibres[h.fibre].spec.length_km for h in path.hops if isinstance(h, optics.FibreHop)
                )
                return None, optics.loss_db(world.plant, path), end.length_km or length
        for end in self.ends.values():
            if end.attenuation_db is not None or end.length_km is not None:
                length = end.length_km or 0.0
                loss = end.attenuation_db if end.attenuation_db is not None else 0.2 * length
                return None, loss, length
        return "no optical channel (no switch-port, attenuation or length)", math.inf, 0.0

    def memories(self) -> tuple[Memory, Memory] | None:
        ends = list(self.ends.values())
        first = ends[0]
        local = self.fabric.memory(first.node, first.memory)
        remote_node = first.remote_node
        remote_memory = first.remote_memory
        if len(ends) > 1:
            remote_node, remote_memory = ends[1].node, ends[1].memory
        remote = self.fabric.memory(remote_node, remote_memory) if remote_node and remote_memory else None
        if local is None or remote is None:
            return None
        return local, remote

    def on_tick(self, now_ns: int, dt_ns: int) -> None:
        world = self.fabric.world
        self.rate_hz = 0.0
        if not self.enabled:
            self.status, self.reason = "OFF", "disabled by configuration"
            return
        for end in self.ends.values():
            if end.remote_node and end.remote_node in world.hosted and end.remote_node not in self.ends:
                self.status, self.reason = "PENDING", f"waiting for peer {end.remote_node}"
                return
        obstacle, loss, length = self.channel()
        self.loss_db = loss
        pair = self.memories()
        if obstacle is None and pair is None:
            obstacle = "memory unknown at one end"
        if obstacle is not None:
            self.status, self.reason = "PENDING", obstacle
            return
        local, remote = pair
        if not self._room(local) or not self._room(remote):
            self.status, self.reason = "PASSIVE", "memory full"
            return
        self.status, self.reason = "ACTIVE", "generating"
        p, f0 = self.success_probability(local, remote, loss)
        period = mem.attempt_period_s(length, max(local.attempt_overhead_s, remote.attempt_overhead_s))
        modes = max(min(local.modes, remote.modes), 1)
        attempts = dt_ns / NS / period
        if world.deterministic:
            self._carry += attempts * modes * p
            successes = int(self._carry)
            self._carry -= successes
        else:
            successes = int(binomial(world.rng(f"qfs/{self.link_id}"), round(attempts * modes), p))
        self.attempts += int(round(attempts))
        stored = 0
        room = min(self._free(local), self._free(remote))
        for herald_ns in self._herald_times(successes, now_ns, dt_ns, room):
            if not self._store(local, remote, f0, herald_ns):
                break
            stored += 1
        self.successes += stored
        self.rate_hz = stored / (dt_ns / NS)
        self.last_f0 = f0

    def success_probability(self, local: Memory, remote: Memory, loss_db: float) -> tuple[float, float]:
        """Per attempt and mode: (p, F0 of a heralded pair), from the scheme (physics.md §2).
        Midpoint heralding: each arm carries half the channel loss."""
        first = next(iter(self.ends.values()))
        arm_a = local.eta_c * local.efficiency * 10.0 ** (-loss_db / 20.0)
        arm_b = remote.eta_c * remote.efficiency * 10.0 ** (-loss_db / 20.0)
        if first.scheme == "SINGLE-CLICK":
            bright = min(max(1.0 - (first.target_fidelity or 0.9), 0.01), 0.5)
            return mem.single_click_probability(bright, math.sqrt(arm_a * arm_b)), mem.single_click_fidelity(bright)
        return mem.barrett_kok_probability(arm_a, arm_b), min(local.f0, remote.f0)

    def _herald_times(self, successes: int, now_ns: int, dt_ns: int, room: int) -> list[int]:
        """When this tick's heralds happened (at most `room` of them: what the memories can take):
        all at its end with deterministic physics; else uniformly over the tick, so their ages
        (and fidelities) spread as a real link's do. With a cut-off the latest come first (the
        earlier ones would have been discarded by now, freeing their slots); without, the
        earliest (a full memory refuses the later ones). The first `room` order statistics of
        `successes` uniform times, drawn from one end (each is the previous times U^(1/m))."""
        count = min(successes, room)
        if self.fabric.world.deterministic or count <= 0:
            return [now_ns] * count
        rng = self.fabric.world.rng(f"qfs-herald/{self.link_id}")
        cutoffs = [e.cutoff_ns for e in self.ends.values() if e.cutoff_ns]
        times, edge = [], 1.0
        for m in range(successes, successes - count, -1):
            edge *= rng.random() ** (1.0 / m)  # the next extreme of m uniforms on [0, edge]
            times.append(edge)
        if cutoffs:  # fractions of the tick before its end, latest first
            return [t for f in times if (t := now_ns - int((1.0 - f) * dt_ns)) + min(cutoffs) > now_ns]
        return [now_ns - int(f * dt_ns) for f in times]  # from the tick's start, earliest first

    def _free(self, memory: Memory) -> int:
        """Slots of `memory` this link may still take (`_room`)."""
        quota = max(1, memory.capacity // max(self.fabric.users.get((memory.node, memory.memory_id), 1), 1))
        pairs = self.fabric.pairs
        mine = sum(1 for pid in memory.slots.values() if (p := pairs.get(pid)) is not None and p.link_id == self.link_id)
        return max(min(quota - mine, memory.capacity - memory.occupancy), 0)

    def _room(self, memory: Memory) -> bool:
        """A free slot this link may take: a memory shared by several links gives each an equal
        share of its slots (at least one), so a fast link never starves a repeater's other link."""
        return self._free(memory) > 0

    def _store(self, local: Memory, remote: Memory, f0: float, now_ns: int) -> bool:
        if not self._room(local) or not self._room(remote):
            return False
        slot_a, slot_b = local.free_slot(), remote.free_slot()
        if slot_a is None or slot_b is None:
            return False
        cutoffs = [e.cutoff_ns for e in self.ends.values() if e.cutoff_ns]
        world = self.fabric.world
        # Both schemes herald psi+ or psi- (which detector pattern clicked).
        bell = PSI_PLUS if world.deterministic else PSI_PLUS | (2 * world.rng(f"qfs-bell/{self.link_id}").getrandbits(1))
        pair = Pair(
            pair_id=self.fabric.pair_id(self.link_id),
            a=Half(local.node, local.memory_id, slot_a),
            b=Half(remote.node, remote.memory_id, slot_b),
            created_ns=now_ns,
            f0=f0,
            expiry_ns=now_ns + min(cutoffs) if cutoffs else None,
            link_id=self.link_id,
            bell=bell,
        )
        self.fabric.add(pair)
        return True


class QfsFabric:
    """All memories, pairs and generation links of the world."""

    tick_order = 10

    def __init__(self, world: World) -> None:
        self.world = world
        self.memories: dict[tuple[str, str], Memory] = {}
        self.pairs: dict[str, Pair] = {}
        self.links: dict[str, GenerationLink] = {}
        self.users: dict[tuple[str, str], int] = {}
        """Generation links per (node, memory) (`GenerationLink._room`), counted again at the start
        of a tick after the links changed."""
        self._users_version = -1
        self.by_node: dict[str, dict[str, Pair]] = {}
        """Pairs by the nodes holding a half (what `pairs_at` reads)."""
        self._serial = 0
        self._id_bases: dict[tuple[str, ...], int] = {}
        self.version = 0
        """Bumped when a link end is configured or released, or a node renamed (URN)."""
        self.views: dict[str, tuple[tuple[int, int], Any]] = {}
        """Views derived from the links and nodes (pair_service's adjacency and URN index), with
        the (version, hosted nodes) they were computed at."""
        world.attach(self)

    def next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def pair_id(self, *origin: str) -> str:
        """A reproducible pair id: the uuid derived once per origin (a link, a swapping node) with
        the fabric's serial number in its last 48 bits (a uuid5 per pair cost 40 us)."""
        base = self._id_bases.get(origin)
        if base is None:
            base = self._id_bases[origin] = uuid.UUID(self.world.derived_uuid("pair", *origin)).int & ~0xFFFFFFFFFFFF
        return str(uuid.UUID(int=base | (self.next_serial() & 0xFFFFFFFFFFFF)))

    def _count_users(self) -> dict[tuple[str, str], int]:
        """Generation links per (node, memory)."""
        users: dict[tuple[str, str], int] = {}
        for link in self.links.values():
            for end in link.ends.values():
                users[(end.node, end.memory)] = users.get((end.node, end.memory), 0) + 1
            if len(link.ends) == 1:  # the peer's end, not hosted here, uses its memory too
                end = next(iter(link.ends.values()))
                if end.remote_node and end.remote_memory:
                    key = (end.remote_node, end.remote_memory)
                    users[key] = users.get(key, 0) + 1
        return users

    def set_end(self, link_id: str, end: LinkEnd) -> None:
        """A node configured its end of a link (the routes over the links may change)."""
        self.link(link_id).ends[end.node] = end
        self.version += 1

    def memory(self, node: str, memory_id: str | None) -> Memory | None:
        return self.memories.get((node, memory_id or ""))

    def set_memories(self, node: str, memories: list[Memory]) -> None:
        keep = {m.memory_id for m in memories}
        for key in [k for k in self.memories if k[0] == node and k[1] not in keep]:
            for pair_id in list(self.memories[key].slots.values()):
                self.discard(pair_id)
            del self.memories[key]
        for new in memories:
            old = self.memories.get((node, new.memory_id))
            if old is not None:
                new.slots = {s: p for s, p in old.slots.items() if s < new.capacity}
                for slot, pair_id in old.slots.items():
                    if slot >= new.capacity:
                        self.discard(pair_id)
            self.memories[(node, new.memory_id)] = new

    def link(self, link_id: str) -> GenerationLink:
        found = self.links.get(link_id)
        if found is None:
            found = self.links[link_id] = GenerationLink(self, link_id)
        return found

    def release(self, link_id: str, node: str) -> None:
        found = self.links.get(link_id)
        if found is not None:
            found.ends.pop(node, None)
            self.version += 1
            if not found.ends:
                del self.links[link_id]

    def add(self, pair: Pair) -> None:
        self.pairs[pair.pair_id] = pair
        for half in (pair.a, pair.b):
            self.memories[(half.node, half.memory)].slots[half.slot] = pair.pair_id
            self.by_node.setdefault(half.node, {})[pair.pair_id] = pair

    def discard(self, pair_id: str) -> Pair | None:
        pair = self.pairs.pop(pair_id, None)
        if pair is not None:
            for half in (pair.a, pair.b):
                memory = self.memories.get((half.node, half.memory))
                if memory is not None and memory.slots.get(half.slot) == pair_id:
                    del memory.slots[half.slot]
                held = self.by_node.get(half.node)
                if held is not None:
                    held.pop(pair_id, None)
        return pair

    def fidelity(self, pair: Pair, now_ns: int | None = None) -> float:
        """F(t) of a pair now: its F0 through both memories' T1/T2 since creation."""
        now = self.world.now_ns if now_ns is None else now_ns
        age = max(now - pair.created_ns, 0) / NS
        ma = self.memories.get((pair.a.node, pair.a.memory))
        mb = self.memories.get((pair.b.node, pair.b.memory))
        if ma is None or mb is None:
            return 0.25
        return mem.through_channel(pair.f0, mem.t1t2_fidelity_two(age, ma.t1_s, ma.t2_s, mb.t1_s, mb.t2_s))

    def pairs_at(self, node: str) -> list[Pair]:
        """The pairs with a half at `node`, oldest first."""
        return list(self.by_node.get(node, {}).values())

    def pairs_between(self, node: str, other: str, *, free: bool = True) -> list[Pair]:
        """The pairs joining `node` and `other` (only those not delivered to a unit when `free`)."""
        return [p for p in self.by_node.get(node, {}).values()
                if p.other(node).node == other and not (free and p.unit is not None)]

    def swap(self, node: str, first: Pair, second: Pair, success: bool, outcome: int = 0) -> Pair | None:
        """Bell-state measurement at `node` on its halves of two pairs: F_s = swap(F1, F2) now; the
        new pair's Bell state is the two frames and the measurement's `outcome` (0..3) XORed."""
        f1, f2 = self.fidelity(first), self.fidelity(second)
        far1, far2 = first.other(node), second.other(node)
        self.discard(first.pair_id)
        self.discard(second.pair_id)
        if not success:
            return None
        expiries = [e for e in (first.expiry_ns, second.expiry_ns) if e is not None]
        pair = Pair(
            pair_id=self.pair_id("swap", node),
            a=far1, b=far2, created_ns=self.world.now_ns, f0=mem.swap_fidelity(f1, f2),
            expiry_ns=min(expiries) if expiries else None, link_id=None,
            bell=first.bell ^ second.bell ^ (outcome & 3), born_ns=min(first.born_ns, second.born_ns),
        )
        self.add(pair)
        return pair

    def on_tick(self, now_ns: int, dt_ns: int) -> None:
        for _ in self.tick_steps(now_ns, dt_ns):
            pass

    def tick_steps(self, now_ns: int, dt_ns: int) -> Iterator[None]:
        """One tick a piece at a time (`World.advance_sliced` yields to the event loop between
        pieces): pairs past their cut-off are discarded, then every link draws its heralds. A
        delivered pair has no cut-off (its expiry is cleared on delivery)."""
        if self._users_version != self.version:
            self.users, self._users_version = self._count_users(), self.version
            yield
        discarded = 0
        for n, pair in enumerate(list(self.pairs.values()), 1):
            if pair.expiry_ns is not None and pair.expiry_ns <= now_ns:
                self.discard(pair.pair_id)
                discarded += 1
                if discarded % TICK_PIECE == 0:
                    yield
            if n % SCAN_PIECE == 0:
                yield
        for n, link in enumerate(list(self.links.values()), 1):
            if self.links.get(link.link_id) is link:
                link.on_tick(now_ns, dt_ns)
            if n % TICK_PIECE == 0:
                yield


def fabric(world: World) -> QfsFabric:
    """The world's quantum fabric (created on first use)."""
    return world.shared_state("qfs", lambda: QfsFabric(world))
