"""One physical world per process: the clock, the seeded randomness and the plant all twins share.

Agents hosted in one process see the same fibres, switch fabrics, QKD link sessions and
entangled pairs, so a cross-connect committed on the switch agent changes the key rate reported
by the QKD agents at the next tick. Time is simulated, in integer nanoseconds, apart from wall
time: tests call `advance`, live agents run `run` (sim_dt = speed * wall_dt).

Reproducibility: every consumer of randomness asks `rng(name)` for its own stream, seeded from
(seed, name), so adding a device does not shift another device's noise; `deterministic=True`
turns sampling noise and drift off and gives the formulas' expected values.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import random
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from . import optics, twin_gc
from .physics.sampling import ornstein_uhlenbeck
from .plant import Plant
from .topology import DEFAULT_TOPOLOGY, Endpoint, Topology, load

NS = 1_000_000_000
DEFAULT_EPOCH_UNIX_NS = 1_750_000_000 * NS
"""Sim time 0 is 2025-06-15T15:06:40Z unless `epoch_unix_ns` says otherwise (`"wall"`: now)."""
QSTRATA_UUID_NAMESPACE = uuid.UUID("5f0c7d1e-3b8a-5d2e-9c41-7a6b0e2f9d13")
ATTENUATION_DRIFT_RELATIVE = 0.005
ATTENUATION_DRIFT_TAU_S = 3600.0

TICK_SLICE_S = 0.002
"""Longest stretch of tick work between two chances for the event loop to serve sessions."""
PHYSICS_ORDER = 10
"""Tick order of world-side simulations (link sessions); twins tick after them (DEVICE_ORDER)."""
DEVICE_ORDER = 20
SLICE_MARGIN = 0.1
"""Share of a slice the sliced tick leaves for the event loop's own turn (p99 0.05 ms) and for a
piece that costs more than the longest recent one of its kind (p99 0.04 ms over), measured with
1,000 QKD links and 1,000 units: with 5 % the stretches the loop waited were 1.97-1.99 ms at
p99, with 10 % 1.88 ms, for the same CPU per tick."""
PIECE_COST_DECAY = 0.8
"""Per piece, how much of the longest recent piece of a kind the sliced tick still expects. The
pacer's clock is the wall clock, so a piece during which the process waited for a core looks
long: at 0.98 such pieces kept the estimates high for hundreds of pieces on a loaded machine
(half the stretches held one piece), at 0.8 they fade within ten, and the margin above still
covers the pieces longer than expected (p99 1.90-1.92 ms with 1,000 units, loaded or not)."""
DRIFT_PIECE = 256
"""Fibres per piece of the sliced tick's attenuation drift (about 0.2 ms of work)."""


class Participant(Protocol):
    """Anything the world ticks: link sessions, then the twins that report on them."""

    tick_order: int

    def on_tick(self, now_ns: int, dt_ns: int) -> None: ...


class World:
    """Clock, randomness, plant and shared sessions of one process."""

    def __init__(
        self,
        topology: Topology,
        *,
        seed: int = 0,
        speed: float = 1.0,
        deterministic: bool = False,
        epoch_unix_ns: int | str = DEFAULT_EPOCH_UNIX_NS,
        tick_ns: int = NS,
    ) -> None:
        self.topology = topology
        self.seed = seed
        self.speed = speed
        self.deterministic = deterministic
        self.epoch_unix_ns = time.time_ns() if epoch_unix_ns == "wall" else int(epoch_unix_ns)
        self.tick_ns = tick_ns
        self.now_ns = 0
        self.settled_ns = 0
        """now_ns of the last tick every participant has finished (readers key caches on it)."""
        self.settled_wall_ns = 0
        """Wall-clock time (Unix ns) at which that tick finished: when its values were produced, in
        the time operators and collectors keep (the simulated clock runs `speed` times faster)."""
        self.plant = Plant.build(topology)
        self.hosted: dict[str, Any] = {}
        self.shared: dict[str, Any] = {}
        """Per-kind shared state (QKD link sessions, entanglement) keyed by its module's name."""
        self._participants: list[Participant] = []
        self.settled_listeners: list[Callable[[], None]] = []
        """Called after every tick once its values are settled (the world service sends each
        agent its device's state then)."""
        self._streams: dict[str, random.Random] = {}
        self._trace_cache: dict[Endpoint, optics.Trace] = {}
        self._light_cache: optics.ClassicalLight | None = None
        self._cache_version = -1
        self._qkdn_ids = {
            node.name: node.qkdn_id or self._derived_uuid(node.name)
            for node in topology.nodes.values()
        }
        self._running = False
        self._piece_costs: dict[type, float] = {}
        """What a piece of the sliced tick costs, per kind of participant (`_Pacer`)."""
        self._frozen_shape = (0, 0)
        """(participants, hosted twins) when `settle_garbage` last settled the garbage collector."""

    @classmethod
    def from_yaml(cls, path: str | Path = DEFAULT_TOPOLOGY, **options: Any) -> World:
        """Load a topology file; `seed` defaults to the file's `seed:` key."""
        topology = load(path)
        options.setdefault("seed", topology.seed)
        return cls(topology, **options)

    # -- randomness and identity -------------------------------------------------------------

    def rng(self, stream: str) -> random.Random:
        """The named random stream; the same (seed, name) always gives the same numbers."""
        rng = self._streams.get(stream)
        if rng is None:
            rng = self._streams[stream] = random.Random(f"{self.seed}/{stream}")
        return rng

    def _derived_uuid(self, name: str) -> str:
        return str(uuid.uuid5(QSTRATA_UUID_NAMESPACE, f"{self.seed}/{name}"))

    def node_uuid(self, name: str) -> str:
        """A node's uuid (qkdn_id, qfs-node uuid): from the topology, else from name + seed."""
        return self._qkdn_ids.get(name) or self._derived_uuid(name)

    def set_node_uuid(self, name: str, value: str) -> None:
        """A controller renamed a node (e.g. wrote qkdn_id): peers resolve the new id."""
        self._qkdn_ids[name] = value

    def node_by_uuid(self, value: str | None) -> str | None:
        if not value:
            return None
        for name, known in self._qkdn_ids.items():
            if known.lower() == value.lower():
                return name
        return None

    def derived_uuid(self, *parts: str) -> str:
        """A reproducible uuid for anything else (pair ids, service units)."""
        return str(uuid.uuid5(QSTRATA_UUID_NAMESPACE, "/".join((str(self.seed), *parts))))

    # -- time --------------------------------------------------------------------------------

    def unix_ns(self, sim_ns: int | None = None) -> int:
        return self.epoch_unix_ns + (self.now_ns if sim_ns is None else sim_ns)

    def date_and_time(self, sim_ns: int | None = None) -> str:
        """yang:date-and-time of a sim instant (UTC, milliseconds)."""
        unix = self.unix_ns(sim_ns)
        stamp = datetime.fromtimestamp(unix // NS, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{stamp}.{(unix % NS) // 1_000_000:03d}Z"

    def sim_ns_of_date(self, value: str) -> int:
        """Inverse of `date_and_time` for any RFC 3339 stamp."""
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return int(round(parsed.timestamp() * NS)) - self.epoch_unix_ns

    # -- plant -------------------------------------------------------------------------------

    def _check_cache(self) -> None:
        if self._cache_version != self.plant.version:
            self._trace_cache.clear()
            self._light_cache = None
            self._cache_version = self.plant.version

    def trace(self, start: Endpoint) -> optics.Trace:
        """Light path from a port, cached until the plant changes."""
        self._check_cache()
        found = self._trace_cache.get(start)
        if found is None:
            found = self._trace_cache[start] = optics.trace(self.plant, start)
        return found

    def classical_light(self) -> optics.ClassicalLight:
        self._check_cache()
        if self._light_cache is None:
            self._light_cache = optics.classical_light(self.plant)
        return self._light_cache

    def cut_fibre(self, fibre_id: str) -> None:
        """Fault injection: the light stops at this fibre until `repair_fibre`."""
        self.plant.set_cut(fibre_id, True)

    def repair_fibre(self, fibre_id: str) -> None:
        self.plant.set_cut(fibre_id, False)

    # -- participants ------------------------------------------------------------------------

    def host(self, name: str, driver: Any) -> None:
        """A twin for device `name` runs in this process (peers wait for its configuration)."""
        self.hosted[name] = driver

    def unhost(self, name: str) -> None:
        self.hosted.pop(name, None)

    def attach(self, participant: Participant) -> None:
        """Tick `participant` from now on, after those of a lower or equal tick_order."""
        bisect.insort_right(self._participants, participant, key=_tick_order)

    def detach(self, participant: Participant) -> None:
        if participant in self._participants:
            self._participants.remove(participant)

    def shared_state(self, key: str, factory: Callable[[], Any]) -> Any:
        """The one instance of a kind's shared state (created on first use)."""
        if key not in self.shared:
            self.shared[key] = factory()
        return self.shared[key]

    # -- stepping ----------------------------------------------------------------------------

    def advance(self, dt_ns: int) -> None:
        """One tick of `dt_ns`: move the clock, drift the fibres, update every participant."""
        if dt_ns <= 0:
            return
        for _ in self._start_tick(dt_ns):
            pass
        for participant in list(self._participants):
            participant.on_tick(self.now_ns, int(dt_ns))
        self._settle(self.now_ns)

    async def advance_sliced(self, dt_ns: int, slice_s: float = TICK_SLICE_S) -> None:
        """`advance` for live agents: the same steps, yielding to the event loop so that a tick
        over thousands of links never stalls a NETCONF or gNMI session for longer than a slice.
        Participants with `tick_steps` (a generator doing `on_tick`'s work piece by piece) are
        sliced inside; the others are one piece each. The loop is given its turn before a piece
        that would end the slice late, judged by the longest recent piece of the same kind
        (`_Pacer`), so a stretch stays within `slice_s` unless one piece is longer."""
        if dt_ns <= 0:
            return
        await asyncio.sleep(0)  # the first slice starts after the loop's turn, not after a tick just done
        pacer = _Pacer(slice_s, self._piece_costs)
        await pacer.run(World, self._start_tick(dt_ns))
        now, dt = self.now_ns, int(dt_ns)
        for participant in list(self._participants):
            steps = getattr(participant, "tick_steps", None)
            await pacer.run(type(participant), _one_piece(participant, now, dt) if steps is None else steps(now, dt))
        self._settle(now)

    def settle_garbage(self) -> None:
        """If links or twins came or went since the last call, collect and freeze what the
        process holds (`twin_gc.settle`: full collections then no longer traverse it). The paced
        clock of live agents and of the world service (`run`) calls it after every tick; tests
        that tick by hand do not freeze their process."""
        if self._frozen_shape != (len(self._participants), len(self.hosted)):
            self._frozen_shape = (len(self._participants), len(self.hosted))
            twin_gc.settle()

    def _settle(self, now_ns: int) -> None:
        self.settled_ns, self.settled_wall_ns = now_ns, time.time_ns()
        for listener in list(self.settled_listeners):
            listener()

    def _start_tick(self, dt_ns: int) -> Iterator[None]:
        """Move the clock, then drift the fibres a piece at a time (a generator: the sliced tick
        yields to the event loop between pieces)."""
        self.now_ns += int(dt_ns)
        if not self.deterministic:
            yield from self._drift_fibres(dt_ns / NS)

    def tick(self) -> None:
        self.advance(self.tick_ns)

    def run_for(self, duration_ns: int, tick_ns: int | None = None) -> None:
        """Advance `duration_ns` in ticks of `tick_ns` (the world's tick by default)."""
        step = tick_ns or self.tick_ns
        end = self.now_ns + duration_ns
        while self.now_ns < end:
            self.advance(min(step, end - self.now_ns))

    async def run(self, tick_ns: int | None = None) -> None:
        """Paced ticking for live agents: every tick_ns/speed of wall time, advance by
        speed * (measured wall time), so sim time keeps up with wall time however long ticks take.
        Cancel the task to stop."""
        step = tick_ns or self.tick_ns
        self._running = True
        last = time.monotonic_ns()
        try:
            while True:
                await asyncio.sleep(step / NS / self.speed)
                wall = time.monotonic_ns()
                await self.advance_sliced(int((wall - last) * self.speed))
                self.settle_garbage()
                last = wall
        finally:
            self._running = False

    def _drift_fibres(self, dt_s: float) -> Iterator[None]:
        for n, (fid, fibre) in enumerate(list(self.plant.fibres.items()), 1):
            nominal = fibre.spec.attenuation_db_per_km
            fibre.attenuation_db_per_km = ornstein_uhlenbeck(
                self.rng(f"fibre-drift/{fid}"), fibre.attenuation_db_per_km, nominal,
                nominal * ATTENUATION_DRIFT_RELATIVE, ATTENUATION_DRIFT_TAU_S, dt_s,
            )
            if n % DRIFT_PIECE == 0:
                yield


class _Pacer:
    """When the sliced tick gives the event loop its turn: before a piece that, costing what the
    longest recent piece of its kind did, would end after the slice's deadline. Pieces of one
    kind differ (a link that releases a block, a memory node that admits units), so the
    estimate is the longest piece seen, decaying by `PIECE_COST_DECAY` per piece so that a
    one-off (a route index rebuilt after a commit, a wait for a core) does not shorten slices
    for long; it is kept across ticks (`costs`), so the first piece of a kind is judged too.
    A slice starts with a young garbage collection (`twin_gc.collect_young`), counted in the
    slice, when half a slice or more has passed since the last: the collector's work is sliced
    with the tick's instead of falling, a whole tick's survivors at once, inside one slice, and
    short slices (a loaded machine) do not pay one collection each."""

    def __init__(self, slice_s: float, costs: dict[type, float]) -> None:
        self.slice_s = slice_s
        self.costs = costs
        self.deadline = 0.0
        self.collected = -math.inf
        self._start_slice()

    def _start_slice(self) -> None:
        now = time.perf_counter()
        self.deadline = now + self.slice_s * (1.0 - SLICE_MARGIN)
        if now - self.collected >= self.slice_s / 2:  # not once per piece when slices are short
            twin_gc.collect_young()
            self.collected = now

    async def run(self, kind: type, pieces: Iterator[None]) -> None:
        """Run `pieces` (each step of the iterator is one), yielding to the loop between them
        when the next would end the slice late."""
        cost = self.costs.get(kind, 0.0)
        more = True
        while more:
            start = time.perf_counter()
            if start + cost > self.deadline:
                await asyncio.sleep(0)
                self._start_slice()
                start = time.perf_counter()
            more = next(pieces, _DONE) is not _DONE
            cost = max(time.perf_counter() - start, cost * PIECE_COST_DECAY)
        self.costs[kind] = cost


_DONE = object()


def _one_piece(participant: Participant, now_ns: int, dt_ns: int) -> Iterator[None]:
    """A participant without `tick_steps`: its whole tick is one piece, done in the step that
    ends the iterator (a step after it would be timed as an empty piece of the same kind, and
    the pacer would judge the next tick's piece by 0.8 of its cost)."""
    participant.on_tick(now_ns, dt_ns)
    return
    yield  # a generator


_PROCESS_WORLD: World | None = None


def process_world(topology: str | Path | None = None, **options: Any) -> World:
    """The world of this process, created on first call (default testbed topology)."""
    global _PROCESS_WORLD
    if _PROCESS_WORLD is None:
        _PROCESS_WORLD = World.from_yaml(topology or DEFAULT_TOPOLOGY, **options)
    return _PROCESS_WORLD


def _tick_order(participant: Participant) -> int:
    return participant.tick_order
