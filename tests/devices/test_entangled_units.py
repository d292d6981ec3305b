"""ENTANGLED-STATE service units delivered by the memory twins (pair_service.py), checked against
physics.md §2: a pair delivered over a repeater has the Werner-swap fidelity of the two pairs it
was made from, each decayed under its two memories' T1/T2 for its measured age, and keeps
decaying in the memories after delivery; a unit asking for more than the memories can hold
fails UNSUPP, and the other link-layer errors come with their causes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from qstrata.agents.devices import entanglement
from qstrata.agents.devices.physics import memory as physics
from qstrata.agents.devices.world import World
from test_twin_world import NS, Agent, loop_turns, mem_link, set_links

TOPOLOGY = Path(__file__).parent / "topologies" / "ent_chain.yaml"
LINK_AR = "0000000a-0000-4000-8000-0000000000f1"
LINK_RB = "0000000a-0000-4000-8000-0000000000f2"
SS = "qstrata-ss:service-stratum"
TICK = 10_000_000  # 10 ms
T2 = {"a": 2.0, "r": 1.0, "b": 3.0}
T1 = 3600.0
F0 = physics.NV.f0


def chain(**link: Any) -> tuple[World, Agent, Agent, Agent]:
    world = World.from_yaml(TOPOLOGY, deterministic=True, tick_ns=TICK)
    a, r, b = (Agent(world, n) for n in ("a", "r", "b"))
    uid = world.node_uuid
    a.edit(set_links(mem_link(LINK_AR, uid("r"), **link)))
    r.edit(set_links(mem_link(LINK_AR, uid("a"), **link), mem_link(LINK_RB, uid("b"), **link)))
    b.edit(set_links(mem_link(LINK_RB, uid("r"), **link)))
    return world, a, r, b


def run(world: World, seconds: float) -> None:
    world.run_for(int(seconds * NS))


def unit_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def request(world: World, n: int, *, fidelity: float, size: int = 1, valid_s: float = 60.0,
            destination: str = "urn:qstrata:node:b", kind: str = "ENTANGLED-STATE"):
    valid_until = world.unix_ns() // NS + int(valid_s)

    def mutate(config: dict[str, Any]) -> None:
        units = config.setdefault(SS, {}).setdefault("service-units", {}).setdefault("service-unit", [])
        units.append({
            "unit-id": unit_id(n), "kind": f"qstrata-ss:{kind}",
            "source-urn": f"urn:qstrata:node:a:app?=nonce={n}", "destination-urn": f"{destination}:app?=nonce={n}",
            "lifecycle-urn": f"urn:qstrata:lifecycle?=size={size}&valid-until={valid_until}&fidelity={fidelity}",
        })
    return mutate


def delete(n: int):
    def mutate(config: dict[str, Any]) -> None:
        units = config[SS]["service-units"]["service-unit"]
        units[:] = [u for u in units if u["unit-id"] != unit_id(n)]
    return mutate


def unit(agent: Agent, n: int) -> dict[str, Any]:
    return next(u for u in agent.state()[SS]["service-units"]["service-unit"] if u["unit-id"] == unit_id(n))


def counters(agent: Agent) -> dict[str, Any]:
    return agent.state()[SS]["entanglement-requests"]


def reasons(agent: Agent) -> dict[str, str]:
    """The last reason each unit's state-change notifications gave."""
    found = {}
    for event in agent.events:
        body = event.data.get("qstrata-ss:service-unit-state-change") if event.kind == "notification" else None
        if body and "reason" in body:
            found[body["unit-id"]] = body["reason"]
    return found


def stored(f0: float, age_s: float, x: str, y: str) -> float:
    """physics.md §2: F0 through both memories' T1/T2 for `age_s`."""
    fe = physics.t1t2_fidelity_two(age_s, T1, T2[x], T1, T2[y])
    return f0 * fe + (1 - f0) * (1 - fe) / 3


def test_pair_over_a_repeater_has_the_werner_swap_of_its_decayed_pairs_and_decays_after():
    world, a, r, b = chain()
    fab = entanglement.fabric(world)
    run(world, 0.5)  # memories fill: a 2, r 4, b 2; nothing more is heralded
    assert fab.memory("a", "m").occupancy == 2 and fab.memory("b", "m").occupancy == 2
    run(world, 0.3)  # they age
    left = fab.pairs_between("a", "r")
    right = fab.pairs_between("r", "b")
    a.edit(request(world, 1, fidelity=0.3))  # NV pairs 0.3 s old and more: below 0.5 once swapped
    world.advance(TICK)  # admitted, swapped at r, delivered
    now = world.now_ns
    f_left = max(stored(F0, (now - p.created_ns) / NS, "a", "r") for p in left)
    f_right = max(stored(F0, (now - p.created_ns) / NS, "r", "b") for p in right)
    used = (max(left, key=lambda p: p.created_ns), max(right, key=lambda p: p.created_ns))  # the youngest: best
    expected = f_left * f_right + (1 - f_left) * (1 - f_right) / 3  # F_s, physics.md §2
    state = unit(a, 1)
    assert state["state"] == "ready"
    ent = state["entanglement"]
    pair = ent["delivered-pair"][0]
    assert float(pair["fidelity"]) == pytest.approx(expected, abs=5e-5)
    assert expected < 0.81, "aged pairs: the swap of two fresh NV pairs would give 0.8133"
    assert int(pair["age"]) == now - min(p.created_ns for p in used)
    assert pair["sequence-number"] == 1 and pair["bell-state"] in ("phi-plus", "phi-minus", "psi-plus", "psi-minus")
    assert int(ent["time-to-first-pair"]) == TICK and ent["pairs-delivered"] == 1
    request_state = dict(ent["request"])
    assert 59 * NS < int(request_state.pop("max-time")) <= 60 * NS  # valid-until: whole seconds
    assert request_state == {"min-fidelity": "0.3000", "number": 1, "priority": 0}
    assert [h["node"] for h in state["content"]["memory-slot"]] == [world.node_uuid("a"), world.node_uuid("b")]
    assert state["route"] == [world.node_uuid(n) for n in ("a", "r", "b")]
    assert unit(b, 1)["state"] == "ready", "the other end lists the unit"

    run(world, 0.2)  # stored at a and b after delivery: decays under their T1/T2
    delivered = fab.pairs[pair["pair-id"]]
    after = stored(delivered.f0, 0.2, "a", "b")
    assert fab.fidelity(delivered) == pytest.approx(after, rel=1e-12)
    assert delivered.f0 == pytest.approx(expected, abs=1e-12)
    held = [p for p in a.state()["qstrata-qfs:qfs-node"]["memories"]["memory"][0]["stored-pairs"]["pair"]
            if p["pair-id"] == delivered.pair_id]
    assert float(held[0]["fidelity"]) == pytest.approx(after, abs=5e-5) and held[0]["service-unit"] == unit_id(1)
    assert counters(a)["admitted"] == "1" and counters(a)["pairs-delivered"] == "1"

    occupancy = fab.memory("a", "m").occupancy
    a.edit(delete(1))  # the application used its pair: the slots are free again
    assert unit_id(1) not in {u["unit-id"] for u in b.state()[SS]["service-units"]["service-unit"]}
    assert delivered.pair_id not in fab.pairs and fab.memory("a", "m").occupancy == occupancy - 1


def test_a_fidelity_above_what_the_memories_hold_fails_unsupp():
    world, a, _, _ = chain()
    run(world, 0.1)
    reach = physics.swap_fidelity(F0, F0)  # two fresh NV pairs swapped once: 0.8133
    a.edit(request(world, 1, fidelity=round(reach + 0.001, 4)))
    a.edit(request(world, 2, fidelity=round(reach - 0.05, 4)))
    world.advance(TICK)
    failed = unit(a, 1)
    assert failed["state"] == "failed" and failed["entanglement"]["failure"] == "UNSUPP"
    assert unit(a, 2)["state"] in ("establishing", "ready")
    reason = reasons(a)[unit_id(1)]
    assert reason.startswith("UNSUPP: fidelity 0.8143 unreachable") and f"reach {reach:.4f}" in reason
    c = counters(a)
    assert (c["admitted"], c["rejected"]) == ("1", "1") and c["failure"] == [{"reason": "UNSUPP", "count": "1"}]


def test_link_layer_errors_name_their_cause():
    world, a, r, b = chain()
    run(world, 0.5)
    a.edit(request(world, 1, fidelity=0.5, destination="urn:qstrata:node:nowhere"))  # REJECTED: no such node
    a.edit(request(world, 2, fidelity=0.5, size=3))  # NORES: the end memories hold 2
    a.edit(request(world, 3, fidelity=0.5, valid_s=-1))  # NOTIME: already out of time
    a.edit(request(world, 4, fidelity=0.5, kind="KEY"))  # UNSUPP: a memory node makes no key
    a.edit(request(world, 5, fidelity=0.5, valid_s=2))  # delivered, never consumed: EXPIRE
    world.advance(TICK)
    assert unit(a, 5)["state"] == "ready"
    r.edit(set_links(mem_link(LINK_AR, world.node_uuid("a")),
                     mem_link(LINK_RB, world.node_uuid("b"), enabled=False)))
    b.edit(set_links(mem_link(LINK_RB, world.node_uuid("r"), enabled=False)))
    for pair in entanglement.fabric(world).pairs_between("r", "b"):
        entanglement.fabric(world).discard(pair.pair_id)
    a.edit(request(world, 6, fidelity=0.5, valid_s=2))  # admitted (the link is down, not gone), never served: TIMEOUT
    run(world, 3.0)
    got = {n: (unit(a, n)["state"], unit(a, n).get("entanglement", {}).get("failure")) for n in range(1, 7)}
    assert got == {1: ("failed", "REJECTED"), 2: ("failed", "NORES"), 3: ("failed", "NOTIME"),
                   4: ("failed", None), 5: ("expired", "EXPIRE"), 6: ("expired", "TIMEOUT")}
    assert reasons(a)[unit_id(4)].startswith("UNSUPP: a memory node delivers ENTANGLED-STATE units")
    assert reasons(a)[unit_id(2)] == "NORES: no free slot: end a has 2 slots not held by other units, 3 needed"
    c = counters(a)
    assert (c["admitted"], c["rejected"], c["expired"]) == ("2", "4", "2")
    assert all(p.unit is None for p in entanglement.fabric(world).pairs_at("a")), "the units' pairs are discarded"


def test_a_sliced_tick_serves_the_loop_between_pieces_of_links_and_units():
    """`World.advance_sliced` gives the event loop a turn after every piece of the fabric's links
    (8) and of a node's units (32), and ends in the state a whole tick gives."""
    from qstrata.agents.devices.topology import parse

    def world_of(pairs: int) -> tuple[World, list[Agent]]:
        nodes = [{"name": f"n{i}{s}", "kind": "memory", "urn": f"urn:tt:n{i}{s}",
                  "memories": [{"id": "m", "technology": "TRAPPED-ION", "capacity": 40}]}
                 for i in range(pairs) for s in "ab"]
        world = World(parse({"name": "many", "nodes": nodes}), deterministic=True, tick_ns=TICK)
        agents = []
        for i in range(pairs):
            a, b = Agent(world, f"n{i}a"), Agent(world, f"n{i}b")
            link = f"0000000b-0000-4000-8000-{i:012d}"
            a.edit(set_links(mem_link(link, world.node_uuid(f"n{i}b"))))
            b.edit(set_links(mem_link(link, world.node_uuid(f"n{i}a"))))
            agents.append(a)
        return world, agents

    whole, sliced = world_of(40), world_of(40)
    for world, agents in (whole, sliced):
        run(world, 0.05)
        for n in range(64):
            agents[0].edit(request(world, n, fidelity=0.5, destination="urn:tt:n0b"))

    whole[0].advance(TICK)
    turns = asyncio.run(loop_turns(sliced[0].advance_sliced(TICK, slice_s=0)))
    participants = 1 + 80  # the fabric, the twins: a turn after each, and after every piece inside them
    assert turns >= participants + 40 // 8 + 64 // 32, turns
    assert whole[1][0].state() == sliced[1][0].state()
    assert sorted(entanglement.fabric(whole[0]).pairs) == sorted(entanglement.fabric(sliced[0]).pairs)
