"""The sliced tick and the garbage collector (devices/twin_gc.py, world._Pacer): what a tick
leaves for the collector to traverse, the world freezing what it is built of, and the pacer
giving the loop its turn before a piece that would end the slice late."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import types
import weakref
from collections.abc import Iterator

import pytest
from qstrata.agents.devices import qkd_link as qkd_sessions
from qstrata.agents.devices import twin_gc
from qstrata.agents.devices import world as world_module
from qstrata.agents.devices.topology import parse
from qstrata.agents.devices.world import World
from test_twin_world import NS, QKD, Agent, add_link, qkd_link

LINKS = 40


def qkd_world(links: int) -> World:
    """`links` QKD links of 10-50 km, configured on both twins, sampled noise on, locked."""
    nodes, fibres = [], []
    for i in range(links):
        nodes += [{"name": f"q{i}{s}", "kind": "qkd", "interfaces": [{"id": 1}]} for s in "ab"]
        fibres.append({"id": f"f{i}", "length_km": 10 + i, "attenuation_db_per_km": 0.2,
                       "a": {"device": f"q{i}a", "port": 1}, "b": {"device": f"q{i}b", "port": 1}})
    world = World(parse({"name": "gc", "nodes": nodes, "fibres": fibres}), seed=3)
    for i in range(links):
        link_id = world.derived_uuid("gc-link", str(i))
        for side, other in (("a", "b"), ("b", "a")):
            Agent(world, f"q{i}{side}").edit(add_link(qkd_link(link_id, 1, world.node_uuid(f"q{i}{other}"))))
    world.run_for(12 * NS)
    return world


@pytest.fixture(scope="module")
def world() -> World:
    return qkd_world(LINKS)


def young_survivors(world: World) -> int:
    """Tracked objects one tick leaves alive in the young generation (what the next young
    collection must traverse)."""
    gc.collect()
    gc.disable()
    try:
        world.advance(NS)
        return len(gc.get_objects(0))
    finally:
        gc.enable()


def test_a_locked_link_leaves_few_objects_per_tick_for_the_collector(world: World) -> None:
    """A link's block being filled and its measurement are updated in place: a tick of locked
    links leaves about one object per link (a released block's bounds), not a new Block, two
    Counts, four tuples and a Measurement each (about ten per link before)."""
    sessions = qkd_sessions.sessions(world).values()
    assert all(s.lock_at_ns is not None and s.lock_at_ns <= world.now_ns for s in sessions)
    survivors = min(young_survivors(world) for _ in range(3))
    assert survivors <= 3 * LINKS, survivors


def test_the_live_clock_freezes_the_links_after_they_came(world: World) -> None:
    """After a tick of the paced clock (`World.run`, what agents and the world service run)
    following a change of the world's links or twins, what they are made of is in the permanent
    generation (full collections never traverse it); after the next tick nothing more is."""
    gc.unfreeze()
    before = gc.get_freeze_count()

    async def ticks(count: int) -> None:
        clock = asyncio.create_task(world.run())
        for _ in range(count):
            settled = world.settled_ns
            while world.settled_ns == settled:
                await asyncio.sleep(0.005)
        clock.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await clock

    world.speed = 100.0  # a tick every 10 ms of wall time
    try:
        asyncio.run(ticks(1))
        frozen = gc.get_freeze_count()
        assert frozen > before + 10 * LINKS, (before, frozen)
        asyncio.run(ticks(2))
        assert gc.get_freeze_count() <= frozen  # frozen objects freed since, none frozen anew
    finally:
        world.speed = 1.0
        gc.unfreeze()


class FakeClock:
    """perf_counter for the pacer: advances only when a piece says it took time."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class Cheap:
    """Many short pieces (0.1 ms each)."""

    tick_order = 10

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def on_tick(self, now_ns: int, dt_ns: int) -> None:
        for _ in self.tick_steps(now_ns, dt_ns):
            pass

    def tick_steps(self, now_ns: int, dt_ns: int) -> Iterator[None]:
        for _ in range(15):
            self.clock.now += 0.0001
            yield


class Dear:
    """One long piece (1 ms) after the short ones."""

    tick_order = 20

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def on_tick(self, now_ns: int, dt_ns: int) -> None:
        self.clock.now += 0.001


def test_the_loop_gets_its_turn_before_a_piece_that_would_end_the_slice_late(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Short pieces of one kind, then a long piece of another: judged by the piece just done
    (0.1 ms) the long one (1 ms) would run 1.5 ms into the slice and end it at 2.5 ms; judged by
    what a piece of its own kind cost before, the loop gets its turn first."""
    clock = FakeClock()
    monkeypatch.setattr(world_module, "time", types.SimpleNamespace(
        perf_counter=clock.perf_counter, time_ns=lambda: 0, monotonic_ns=lambda: 0))
    world = World(parse({"name": "paced", "nodes": []}), deterministic=True)
    world.attach(Cheap(clock))
    world.attach(Dear(clock))

    async def stretches() -> list[float]:
        seen: list[float] = []
        done = False

        async def watch() -> None:
            last = clock.now
            while not done:
                await asyncio.sleep(0)
                seen.append(clock.now - last)
                last = clock.now

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0)
        await world.advance_sliced(NS, slice_s=0.002)  # learns what each kind costs
        await asyncio.sleep(0)  # the watcher measures the learning tick's last stretch, then:
        seen.clear()
        await world.advance_sliced(NS, slice_s=0.002)
        done = True
        await watcher
        return seen

    seen = asyncio.run(stretches())
    assert max(seen) <= 0.002 + 1e-9, seen


def test_links_that_come_and_go_leave_no_garbage_frozen() -> None:
    """The paced clock freezes the process after links came or went; a frozen object that later
    becomes cyclic garbage would never be collected. A link created and deleted thirty times,
    settling after each change as `World.run` does, leaves nothing for a full collection of the
    unfrozen process to find (reference counting frees a removed link's objects)."""
    world = qkd_world(2)
    link_id = world.derived_uuid("gc-link", "0")
    ends = {name: Agent(world, name) for name in ("q0a", "q0b")}

    def drop(config: dict) -> None:
        config[QKD]["qkd_links"]["qkd_link"][:] = []

    gc.unfreeze()
    gc.collect()
    try:
        world.settle_garbage()
        for _ in range(30):
            for name, other in (("q0a", "q0b"), ("q0b", "q0a")):
                ends[name].edit(add_link(qkd_link(link_id, 1, world.node_uuid(other))))
            world.run_for(NS)
            world.settle_garbage()
            assert link_id in qkd_sessions.sessions(world)
            for end in ends.values():
                end.edit(drop)
            world.run_for(NS)
            world.settle_garbage()
            assert link_id not in qkd_sessions.sessions(world)
    finally:
        gc.unfreeze()
    assert gc.collect() == 0


class Cycle:
    """An object in a reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_a_cycle_frozen_while_alive_is_reclaimed_by_a_later_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settle freezes every object alive, e.g. a client session open at that moment. A cycle
    that becomes garbage afterwards stays (a full collection never traverses frozen objects) until
    a settle reclaims: one does once `RECLAIM_EVERY_S` has passed since the last."""
    gc.unfreeze()
    try:
        held = Cycle()
        alive = weakref.ref(held)
        twin_gc.settle(reclaim=True)
        del held
        twin_gc.settle(reclaim=False)
        gc.collect()
        assert alive() is not None  # frozen: no collection sees it
        monkeypatch.setattr(twin_gc, "RECLAIM_EVERY_S", 0.0)
        twin_gc.settle()
        assert alive() is None
    finally:
        gc.unfreeze()


def test_a_one_piece_participant_is_judged_by_its_whole_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """A participant without `tick_steps` is one piece: the pacer keeps what it cost (1 ms), not
    0.8 of it (as when the empty step that ended its iterator was timed as a piece of its own)."""
    clock = FakeClock()
    monkeypatch.setattr(world_module, "time", types.SimpleNamespace(
        perf_counter=clock.perf_counter, time_ns=lambda: 0, monotonic_ns=lambda: 0))
    world = World(parse({"name": "paced", "nodes": []}), deterministic=True)
    world.attach(Dear(clock))
    asyncio.run(world.advance_sliced(NS, slice_s=0.002))
    assert world._piece_costs[Dear] == pytest.approx(0.001)
