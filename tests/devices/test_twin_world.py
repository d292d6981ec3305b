"""The twins in one world: re-routing through a switch, key stores, notifications, seeds,
refusals, memories. Expected rates come from the physics module's formulas (tested against
physics.md in test_twin_physics.py)."""

from __future__ import annotations

import asyncio
import copy
import math
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from qstrata.agents.devices import entanglement
from qstrata.agents.devices import qkd_link as qkd_sessions
from qstrata.agents.devices.base import ConfigTransaction, DeviceEvent, DeviceRefusal
from qstrata.agents.devices.physics import finite_key
from qstrata.agents.devices.physics import memory as memory_physics
from qstrata.agents.devices.physics import qkd as qkd_physics
from qstrata.agents.devices.registry import create_for
from qstrata.agents.devices.world import World
from qstrata.bindings.schema import get_schema
from qstrata.bindings.tree import DataTree

TOPOLOGIES = Path(__file__).parent / "topologies"
QKD = "etsi-qkd-sdn-node:qkd_node"
NS = 1_000_000_000


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _whole_tree_read() -> dict[str, Any]:
    raise AssertionError("a twin read the whole configuration instead of the change list")


class Agent:
    """A twin plus the running config a datastore would keep for it. Transactions carry the
    change list libyang computes between the two configurations, as the datastore's do."""

    def __init__(self, world: World, name: str, **options: Any) -> None:
        self.driver = create_for(world, name, **options)
        self.events: list[DeviceEvent] = []
        self.driver.hub.add_listener(self.events.append)
        inventory = run(self.driver.start())
        self.schema = get_schema(tuple(inventory.modules))
        self.running = copy.deepcopy(inventory.config)

    def transaction(self, mutate) -> tuple[ConfigTransaction, dict[str, Any]]:
        """The change list only: a twin that reads the whole old or new configuration (whose cost
        grows with the configuration) fails the test."""
        new = copy.deepcopy(self.running)
        mutate(new)
        old_tree, new_tree = (DataTree.from_python(t, schema=self.schema, validate=False) for t in (self.running, new))
        return ConfigTransaction(tuple(old_tree.diff(new_tree)), _whole_tree_read, _whole_tree_read), new

    def edit(self, mutate) -> None:
        """Apply `mutate(config)` as one transaction (prepare + commit)."""
        txn, new = self.transaction(mutate)
        run(self.driver.prepare(txn))
        run(self.driver.commit(txn))
        self.running = new

    def try_edit(self, mutate) -> None:
        """prepare only (to see a refusal); a refusal leaves the twin as it was."""
        txn, _ = self.transaction(mutate)
        run(self.driver.prepare(txn))

    def notifications(self, name: str) -> list[dict[str, Any]]:
        return [next(iter(e.data.values())) for e in self.events
                if e.kind == "notification" and any(k.endswith(":" + name) for k in e.data)]

    def state(self) -> dict[str, Any]:
        return self.driver.read_state()


def qkd_link(qkdl_id: str, local_if: int, remote_uuid: str, **extra: Any) -> dict[str, Any]:
    link = {
        "qkdl_id": qkdl_id,
        "qkdl_enable": True,
        "qkdl_local": {"qkdi_id": local_if},
        "qkdl_remote": {"qkdn_id": remote_uuid},
        "qkdl_type": "etsi-qkd-node-types:PHYS",
    }
    link.update(extra)
    return link


def add_link(link: dict[str, Any]):
    def mutate(config: dict[str, Any]) -> None:
        links = config[QKD].setdefault("qkd_links", {}).setdefault("qkd_link", [])
        links[:] = [entry for entry in links if entry["qkdl_id"] != link["qkdl_id"]] + [link]
    return mutate


def link_state(agent: Agent, qkdl_id: str) -> dict[str, Any]:
    for link in agent.state()[QKD]["qkd_links"]["qkd_link"]:
        if link["qkdl_id"] == qkdl_id:
            return link
    raise KeyError(qkdl_id)


def status(agent: Agent, qkdl_id: str) -> str:
    return link_state(agent, qkdl_id)["qkdl_status"].split(":")[-1]


def skr(agent: Agent, qkdl_id: str) -> int:
    return link_state(agent, qkdl_id)["qkdl_performance"]["skr"]


# -- QKD through a switch ------------------------------------------------------------------------

LINK = "0000000a-0000-4000-8000-00000000000b"


def qkd_pair(seed: int | None = None, deterministic: bool = True, **options: Any):
    world = World.from_yaml(TOPOLOGIES / "reroute.yaml", deterministic=deterministic,
                            **({"seed": seed} if seed is not None else {}))
    alice, bob, sw = Agent(world, "alice", **options), Agent(world, "bob", **options), Agent(world, "sw")
    alice.edit(add_link(qkd_link(LINK, 1, world.node_uuid("bob"))))
    bob.edit(add_link(qkd_link(LINK, 1, world.node_uuid("alice"))))
    return world, alice, bob, sw


def expected_rate(loss_db: float) -> float:
    """The finite-key rate of the twin's blocks on a steady channel (deterministic world)."""
    return finite_key.finite_rate(qkd_physics.MODERN, loss_db).rate


def test_link_locks_after_the_relock_time_with_the_path_loss():
    world, alice, bob, _ = qkd_pair()
    world.advance(NS)
    assert status(alice, LINK) == "PENDING"
    world.run_for(8 * NS)
    assert status(alice, LINK) == "PENDING"
    world.run_for(2 * NS)  # 10 s re-lock elapsed
    assert status(alice, LINK) == status(bob, LINK) == "ACTIVE"
    # 1 km + 10 km at 0.2 dB/km + two switch ports of 0.5 dB
    assert skr(alice, LINK) == pytest.approx(expected_rate(2.2 + 1.0), rel=1e-6, abs=1)
    assert skr(bob, LINK) == skr(alice, LINK)


def test_reroute_through_a_longer_fibre_relocks_with_the_new_rate():
    world, alice, bob, sw = qkd_pair()
    world.run_for(12 * NS)
    before = skr(alice, LINK)
    assert status(alice, LINK) == "ACTIVE"

    def through_spool(config):
        config["optical-switch:cross-connects"] = {"pair": [{"ingress": 1, "egress": 3}, {"ingress": 4, "egress": 2}]}

    sw.edit(through_spool)
    world.advance(NS)
    produced_before = qkd_sessions.sessions(world)[LINK].store.produced_bits
    assert status(alice, LINK) == "PENDING"
    assert skr(alice, LINK) == 0
    down = alice.notifications("sdqkdn_link_down")
    assert down and down[-1]["qkd_link"]["qkdl_id"] == LINK and "re-lock" in down[-1]["qkd_link"]["reason"]
    # committed at t=12 s: dark until 12.025 s, then 10 s of re-lock, then the first block of 1e7
    # sifted bits over 51 km of fibre + four switch ports (two cross-connects): 4.1 s at 12.2 dB
    block = finite_key.finite_rate(qkd_physics.MODERN, 0.2 * 51 + 2.0)
    first_key_s = 12.025 + 10 + block.seconds
    assert 4.0 < block.seconds < 4.2
    world.run_for(math.ceil(first_key_s) * NS - 1 * NS - world.now_ns)
    assert status(alice, LINK) == "PENDING"  # locked, the block still filling: no key yet
    assert qkd_sessions.sessions(world)[LINK].store.produced_bits == produced_before
    world.advance(NS)
    assert status(alice, LINK) == "ACTIVE"
    after = skr(alice, LINK)
    assert after == pytest.approx(block.rate, rel=1e-6, abs=1)
    assert after < before / 5
    assert alice.notifications("sdqkdn_link_perf_update")[-1]["qkd_link"]["performance"]["skr"] == after


def test_key_store_never_negative_and_overload_is_notified():
    world, alice, bob, _ = qkd_pair()
    world.run_for(11 * NS)
    rate = skr(alice, LINK)
    app = {
        "app_id": "0000000a-0000-4000-8000-0000000000a1",
        "app_type": "etsi-qkd-node-types:CLIENT",
        "backing_qkdl_id": [LINK],
        "app_qos": {"min_bandwidth": min(2 * rate, 4_000_000_000), "max_bandwidth": 4_000_000_000},
    }

    def with_app(config):
        config[QKD]["qkd_applications"] = {"qkd_app": [app]}

    alice.edit(with_app)
    session = qkd_sessions.sessions(world)[LINK]
    for _ in range(30):
        world.tick()
        assert session.store.bits >= 0.0
    overloaded = alice.notifications("sdqkdn_link_overloaded")
    assert len(overloaded) == 1
    perf = overloaded[0]["qkd_link"]["performance"]
    assert perf["expected_consumption"] > perf["skr"] and perf["eskr"] == 0
    assert session.shortfall_bits > 0
    assert alice.notifications("alarm")  # the application found the store empty
    assert link_state(alice, LINK)["qkdl_performance"]["eskr"] == 0


def test_app_within_the_rate_leaves_key_in_the_store():
    world, alice, _, _ = qkd_pair()
    world.run_for(11 * NS)
    rate = skr(alice, LINK)

    def with_app(config):
        config[QKD]["qkd_applications"] = {"qkd_app": [{
            "app_id": "0000000a-0000-4000-8000-0000000000a2", "backing_qkdl_id": [LINK],
            "app_qos": {"min_bandwidth": rate // 2},
        }]}

    alice.edit(with_app)
    world.run_for(10 * NS)
    perf = link_state(alice, LINK)["qkdl_performance"]
    assert perf["expected_consumption"] == rate // 2
    assert perf["eskr"] == pytest.approx(rate - rate // 2, abs=1)
    assert not alice.notifications("sdqkdn_link_overloaded")
    assert qkd_sessions.sessions(world)[LINK].store.bits > 0


def telemetry(seed: int, ticks: int = 25) -> list[tuple[int, str]]:
    world, alice, _, _ = qkd_pair(seed=seed, deterministic=False)
    series = []
    for _ in range(ticks):
        world.tick()
        link = link_state(alice, LINK)
        series.append((link["qkdl_performance"]["skr"], link["qkdl_performance"]["phys_perf"][0]["value"]))
    return series


def test_same_seed_same_telemetry_different_seed_different_noise():
    first, again, other = telemetry(11), telemetry(11), telemetry(12)
    assert first == again
    assert first != other
    rates = [r for r, _ in first if r]
    assert len(set(rates)) > 5  # it fluctuates like hardware
    mean = sum(rates) / len(rates)
    assert mean == pytest.approx(expected_rate(3.2), rel=0.1)


def test_fibre_cut_takes_the_interface_and_link_down():
    world, alice, bob, _ = qkd_pair()
    world.run_for(12 * NS)
    world.cut_fibre("f-bob")
    world.tick()
    assert status(alice, LINK) == "PENDING"
    assert "cut" in alice.notifications("sdqkdn_link_down")[-1]["qkd_link"]["reason"]
    assert bob.notifications("sdqkdn_interface_down")[0]["qkd_interface"]["qkdi_id"] == 1
    bob_if = bob.state()[QKD]["qkd_interfaces"]["qkd_interface"][0]
    assert bob_if["qkdi_status"] == "etsi-qkd-node-types:FAILED"
    world.repair_fibre("f-bob")
    world.run_for(11 * NS)
    assert status(alice, LINK) == "ACTIVE"


def test_disabling_the_link_turns_it_off():
    world, alice, _, _ = qkd_pair()
    world.run_for(12 * NS)
    alice.edit(add_link(qkd_link(LINK, 1, world.node_uuid("bob"), qkdl_enable=False)))
    world.tick()
    assert status(alice, LINK) == "OFF"
    assert alice.notifications("sdqkdn_link_down")[-1]["qkd_link"]["reason"] == "disabled by configuration"


def test_qkd_prepare_refuses_what_the_hardware_cannot_do():
    world, alice, _, _ = qkd_pair()
    with pytest.raises(DeviceRefusal) as missing:
        alice.try_edit(add_link(qkd_link("0000000a-0000-4000-8000-0000000000cc", 7, world.node_uuid("bob"))))
    assert "names no interface" in missing.value.message
    assert missing.value.path.endswith("qkdl_local/qkdi_id")
    with pytest.raises(DeviceRefusal) as colour:
        alice.try_edit(add_link(qkd_link(LINK, 1, world.node_uuid("bob"), phys_wavelength="1310")))
    assert "1540-1560" in colour.value.message and colour.value.path.endswith("phys_wavelength")
    with pytest.raises(DeviceRefusal) as role:
        alice.try_edit(add_link(qkd_link(LINK, 1, world.node_uuid("bob"), phys_qkd_role="etsi-qkd-node-types:RECEIVER")))
    assert "TRANSMITTER" in role.value.message


def test_switch_prepare_refuses_shared_egress_and_missing_ports():
    _, _, _, sw = qkd_pair()
    with pytest.raises(DeviceRefusal) as shared:
        sw.try_edit(lambda c: c["optical-switch:cross-connects"]["pair"].append({"ingress": 5, "egress": 2}))
    assert "egress 2 is already used" in shared.value.message
    with pytest.raises(DeviceRefusal) as missing:
        sw.try_edit(lambda c: c["optical-switch:cross-connects"]["pair"].append({"ingress": 5, "egress": 99}))
    assert "does not exist" in missing.value.message


def test_switch_reports_products_ports_and_switching_time():
    world, _, _, sw = qkd_pair()
    state = sw.state()
    assert state["qstrata-optical-switch:switch-characteristics"] == {"switching-time": 25000, "port-count": 8}
    powers = {p["port-id"]: p["power"] for p in state["optical-switch:opm-power"]["port"]}
    assert powers[1] == "-60.00"  # quantum light only: below the monitor's floor
    ports = {p["port-id"]: p for p in sw.running["optical-switch:port-config"]["port"]}
    assert ports[2]["qstrata-optical-switch:attached-fibre"]["remote-device"] == "bob"


# -- classical light, default testbed ------------------------------------------------------------


def test_default_testbed_starts_every_device_and_ticks():
    world = World.from_yaml(deterministic=True)
    agents = {name: Agent(world, name) for name in world.topology.nodes}
    assert {a.driver.name for a in agents.values()} == set(world.topology.nodes)
    world.run_for(3 * NS)
    powers = {p["port-id"]: float(p["power"]) for p in agents["sw1"].state()["optical-switch:opm-power"]["port"]}
    # bob's -20 dBm service channel after 25 km (5 dB) enters port 9
    assert powers[9] == pytest.approx(-25.0, abs=0.01)
    # and continues through the 1<->9 cross-connect towards alice
    assert powers[1] == -60.0


def test_raman_from_a_shared_classical_channel_lowers_the_twin_rate():
    def rate_with(launch_dbm: float | None) -> int:
        world = World.from_yaml(deterministic=True)
        if launch_dbm is None:
            world.topology.classical_channels.clear()
        else:
            import dataclasses
            ch = world.topology.classical_channels["c-bob-service"]
            world.topology.classical_channels["c-bob-service"] = dataclasses.replace(ch, launch_power_dbm=launch_dbm)
        alice, bob = Agent(world, "alice"), Agent(world, "bob")
        alice.edit(add_link(qkd_link(LINK, 1, world.node_uuid("bob"))))
        bob.edit(add_link(qkd_link(LINK, 1, world.node_uuid("alice"))))
        world.run_for(20 * NS)  # locked at 10 s, blocks released since
        return skr(alice, LINK)

    dark, weak, strong = rate_with(None), rate_with(-30.0), rate_with(-10.0)
    assert dark > weak > strong


# -- quantum memories ----------------------------------------------------------------------------

LINK_AR = "0000000a-0000-4000-8000-0000000000e1"
LINK_RB = "0000000a-0000-4000-8000-0000000000e2"


def mem_link(link_id: str, remote_uuid: str, **extra: Any) -> dict[str, Any]:
    link = {
        "link-id": link_id, "local-memory": "m", "remote-node": remote_uuid, "remote-memory": "m",
        "generation-scheme": "qstrata-qfs:BARRETT-KOK", "length": "5.000",
    }
    link.update(extra)
    return link


def set_links(*links: dict[str, Any], routes: list[dict[str, Any]] | None = None):
    def mutate(config):
        config["qstrata-qfs:qfs-node"]["entanglement-links"] = {"link": list(links)}
        if routes is not None:
            config["qstrata-qfs:qfs-node"]["forwarding-table"] = {"entry": routes}
    return mutate


def chain(**link_extra: Any):
    world = World.from_yaml(TOPOLOGIES / "chain.yaml", deterministic=True)
    a, r, b = (Agent(world, n) for n in ("a", "r", "b"))
    uid = world.node_uuid
    a.edit(set_links(mem_link(LINK_AR, uid("r"), **link_extra)))
    b.edit(set_links(mem_link(LINK_RB, uid("r"), **link_extra)))
    return world, a, r, b


def test_pairs_decay_as_f_of_t_and_expire_at_the_cutoff():
    world, a, r, _ = chain(**{"cutoff-time": str(5 * NS)})
    r.edit(set_links(mem_link(LINK_AR, world.node_uuid("a")), mem_link(LINK_RB, world.node_uuid("b"))))
    fab = entanglement.fabric(world)
    world.advance(NS)
    pairs = [p for p in fab.pairs_at("a")]
    assert pairs, "5 km of fibre between trapped ions herald within a second"
    pair = pairs[0]
    memory = fab.memory("a", "m")
    assert memory.occupancy == 2 and a.notifications("qfs-memory-full")
    world.advance(2 * NS)
    t = (world.now_ns - pair.created_ns) / NS
    f_pure = memory_physics.t1t2_fidelity(t, memory.t1_s, memory.t2_s)
    assert fab.fidelity(pair) == pytest.approx(pair.f0 * f_pure + (1 - pair.f0) * (1 - f_pure) / 3, rel=1e-12)
    stored = a.state()["qstrata-qfs:qfs-node"]["memories"]["memory"][0]["stored-pairs"]["pair"]
    assert {p["pair-id"] for p in stored} >= {pair.pair_id}
    world.advance(pair.expiry_ns - world.now_ns - 1)
    assert pair.pair_id in fab.pairs
    world.advance(1)
    assert pair.pair_id not in fab.pairs


def test_repeater_swaps_by_its_forwarding_table():
    world, a, r, b = chain()
    uid = world.node_uuid
    r.edit(set_links(
        mem_link(LINK_AR, uid("a")), mem_link(LINK_RB, uid("b")),
        routes=[{"destination": uid("b"), "next-hop-link": LINK_RB},
                {"destination": uid("a"), "next-hop-link": LINK_AR}],
    ))
    fab = entanglement.fabric(world)
    world.advance(NS)
    end_to_end = [p for p in fab.pairs_at("a") if p.other("a").node == "b"]
    assert end_to_end
    swapped = end_to_end[0]
    assert swapped.link_id is None
    stats = r.state()["qstrata-qfs:qfs-node"]["swap-statistics"]
    assert int(stats["swaps-succeeded"]) >= 1
    f_ion = memory_physics.ION.f0
    assert swapped.f0 == pytest.approx(memory_physics.swap_fidelity(f_ion, f_ion), rel=1e-6)


def test_memory_prepare_refuses_unknown_memories_and_wrong_schemes():
    world, a, _, _ = chain()
    with pytest.raises(DeviceRefusal) as scheme:
        a.try_edit(set_links(mem_link(LINK_AR, world.node_uuid("r"), **{"generation-scheme": "qstrata-qfs:DLCZ"})))
    assert "cannot run DLCZ" in scheme.value.message

    def bigger(config):
        config["qstrata-qfs:qfs-node"]["memories"]["memory"][0]["capacity"] = 64

    with pytest.raises(DeviceRefusal) as capacity:
        a.try_edit(bigger)
    assert capacity.value.path.endswith("capacity")


def test_link_down_when_disabled_and_below_threshold_notified():
    world, a, r, _ = chain(**{"target-fidelity": "0.9900"})
    r.edit(set_links(mem_link(LINK_AR, world.node_uuid("a"), **{"target-fidelity": "0.9900"})))
    world.advance(NS)
    assert a.notifications("qfs-fidelity-below-threshold")
    a.edit(set_links(mem_link(LINK_AR, world.node_uuid("r"), enabled=False)))
    world.advance(NS)
    assert a.notifications("qfs-link-down")[-1]["reason"] == "disabled by configuration"


# -- service stratum (KME) ------------------------------------------------------------------------

SS = "qstrata-ss:service-stratum"
APP = "0000000a-0000-4000-8000-0000000000a9"
SESSION = "0000000a-0000-4000-8000-0000000000f1"


def key_unit(unit_id: str, size: int, valid_until: int, destination: str = "urn:qkd:bob:vpn?=nonce=1") -> dict[str, Any]:
    return {
        "unit-id": unit_id, "source-urn": "urn:qkd:alice:vpn?=nonce=1", "destination-urn": destination,
        "lifecycle-urn": f"urn:qkd:lifecycle?=size={size}&valid-until={valid_until}",
        "kind": "qstrata-ss:KEY", "originator": APP,
    }


def kme_setup(world: World, alice: Agent, rate: int, burst: int) -> None:
    def mutate(config):
        config[QKD]["qkd_applications"] = {"qkd_app": [{
            "app_id": APP, "backing_qkdl_id": [LINK], "qstrata-ss:ss-session-id": SESSION,
        }]}
        kme = config[SS]["kme"]
        kme["forwarding-table"] = {"route": [
            {"urn-prefix": "urn:qkd:bob:", "next-hop-kme": world.node_uuid("bob"), "qkd-link": LINK}]}
        kme["sessions"] = {"session": [{"session-id": SESSION, "rate": str(rate), "burst": str(burst)}]}
    alice.edit(mutate)


def unit_states(agent: Agent) -> dict[str, str]:
    return {u["unit-id"]: u["state"] for u in agent.state()[SS]["service-units"]["service-unit"]}


def add_units(*units: dict[str, Any]):
    def mutate(config):
        config[SS]["service-units"] = {"service-unit": list(units)}
    return mutate


def test_key_unit_is_relayed_from_the_link_key_store():
    world, alice, bob, _ = qkd_pair()
    world.run_for(12 * NS)
    kme_setup(world, alice, rate=1000, burst=512)
    valid_until = world.unix_ns() // NS + 60
    unit = "0000000a-0000-4000-8000-000000000101"
    alice.edit(add_units(key_unit(unit, 256, valid_until)))
    store = qkd_sessions.sessions(world)[LINK].store
    stored, produced = store.bits, store.produced_bits
    world.tick()
    state = {u["unit-id"]: u for u in alice.state()[SS]["service-units"]["service-unit"]}[unit]
    assert state["state"] == "ready"
    assert state["route"] == [world.node_uuid("alice"), world.node_uuid("bob")]
    assert len(state["content"]["key-id"]) == 1
    assert unit_states(bob)[unit] == "ready"  # the destination KME sees it too
    changes = [n["new-state"] for n in alice.notifications("service-unit-state-change")]
    assert changes == ["requested", "routing", "establishing", "ready"]
    assert store.bits == stored + (store.produced_bits - produced) - 256  # the unit's 256 bits
    assert alice.driver.kme.consume(unit)
    assert unit_states(alice)[unit] == "consumed"


def test_token_bucket_rejects_and_units_expire_or_fail_without_route():
    world, alice, _, _ = qkd_pair()
    kme_setup(world, alice, rate=100, burst=300)
    now_s = world.unix_ns() // NS
    big, late, lost = (f"0000000a-0000-4000-8000-00000000020{i}" for i in range(3))
    alice.edit(add_units(
        key_unit(big, 512, now_s + 60),
        key_unit(late, 128, now_s + 5),
        key_unit(lost, 128, now_s + 60, destination="urn:qkd:zoe:vpn?=nonce=9"),
    ))
    world.tick()
    world.tick()
    states = unit_states(alice)
    assert states[big] == "failed" and states[lost] == "failed"
    assert states[late] == "establishing"  # the link is still locking: no key yet
    world.run_for(5 * NS)
    assert unit_states(alice)[late] == "expired"
    reasons = {n["unit-id"]: n.get("reason") for n in alice.notifications("service-unit-state-change")}
    assert "token bucket" in reasons[big] and "no route" in reasons[lost] and "valid-until" in reasons[late]
    bucket = alice.state()[SS]["kme"]["sessions"]["session"][0]
    assert bucket["rejected"] == "1" and int(bucket["tokens"]) <= 300


# -- clock and event delivery ---------------------------------------------------------------------


def test_events_iterator_delivers_until_stop():
    world, alice, _, _ = qkd_pair()

    async def collect():
        received = []

        async def reader():
            async for event in alice.driver.events():
                received.append(event)

        task = asyncio.create_task(reader())
        await asyncio.sleep(0)
        world.run_for(12 * NS)
        await asyncio.sleep(0)
        await alice.driver.stop()
        await asyncio.wait_for(task, 1.0)
        return received

    received = run(collect())
    kinds = {e.kind for e in received}
    assert kinds == {"notification", "state"}
    assert any("sdqkdn_link_perf_update" in k for e in received for k in e.data)


def test_paced_runner_advances_sim_time_by_speed_times_wall_time():
    world = World.from_yaml(TOPOLOGIES / "reroute.yaml", speed=200.0)

    async def paced():
        task = asyncio.create_task(world.run(NS))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(paced())
    assert 20 * NS <= world.now_ns <= 60 * NS  # ~0.2 s wall x 200


def test_registry_has_one_factory_per_kind():
    from qstrata.agents.devices import registry

    assert registry.kinds() == ("qkd", "memory", "switch")
    world = World.from_yaml()
    assert {d.name for d in registry.create_all(world)} == set(world.topology.nodes)
    with pytest.raises(ValueError):
        registry.create("laser", world, "x")


# -- change lists: what the per-edit path must get right without the whole configuration --------

OTHER = "0000000a-0000-4000-8000-0000000000cd"


def test_one_enabled_link_per_interface_counts_links_made_in_earlier_transactions():
    world, alice, _, _ = qkd_pair()
    with pytest.raises(DeviceRefusal) as busy:
        alice.try_edit(add_link(qkd_link(OTHER, 1, world.node_uuid("bob"))))
    assert f"already runs enabled link {LINK}" in busy.value.message and OTHER in busy.value.path
    alice.edit(add_link(qkd_link(LINK, 1, world.node_uuid("bob"), qkdl_enable=False)))
    alice.edit(add_link(qkd_link(OTHER, 1, world.node_uuid("bob"))))  # the interface is free now
    with pytest.raises(DeviceRefusal) as again:
        alice.try_edit(add_link(qkd_link(LINK, 1, world.node_uuid("bob"))))
    # the link first in document order (the datastore keeps OTHER after LINK) keeps the interface
    assert f"link {OTHER}: interface 1 already runs enabled link {LINK}" in again.value.message


def test_deleting_a_link_an_application_draws_on_is_refused_and_changes_nothing():
    world, alice, _, _ = qkd_pair()
    kme_setup(world, alice, rate=1000, burst=512)

    def drop_link(config):
        del config[QKD]["qkd_links"]

    with pytest.raises(DeviceRefusal) as refused:
        alice.try_edit(drop_link)
    assert "backing link" in refused.value.message or "not a link of this node" in refused.value.message
    # the refused change list was taken back: the next edit builds on the configuration as it was
    alice.edit(add_link(qkd_link(LINK, 1, world.node_uuid("bob"), qkdl_enable=False)))
    assert status(alice, LINK) == "OFF" or alice.driver.config.links[LINK].enable is False
    assert set(alice.driver.config.links) == {LINK} and set(alice.driver.config.apps) == {APP}


def test_a_restored_configuration_replays_as_one_change_list():
    """After a restart the agent replays initial -> restored running as one transaction
    (agents/app.py): every link, application and KME table entry is created at once (each named
    by its own entry: a container that only holds them is no change of its own)."""
    world, alice, bob, _ = qkd_pair()
    kme_setup(world, alice, rate=1000, burst=512)
    restored = copy.deepcopy(alice.running)

    fresh = World.from_yaml(TOPOLOGIES / "reroute.yaml", deterministic=True)
    alice2, bob2, _ = Agent(fresh, "alice"), Agent(fresh, "bob"), Agent(fresh, "sw")
    bob2.edit(add_link(qkd_link(LINK, 1, fresh.node_uuid("alice"))))
    txn, _ = alice2.transaction(lambda config: config.update(copy.deepcopy(restored)))
    assert any(c.op == "create" and c.path.endswith(f"/qkd_links/qkd_link[qkdl_id='{LINK}']") for c in txn.changes)
    alice2.edit(lambda config: config.update(copy.deepcopy(restored)))
    for twin, other in ((alice2.driver, alice.driver),):
        assert twin.config.links == other.config.links and twin.config.apps == other.config.apps
        assert twin.kme.routes == other.kme.routes and set(twin.kme.buckets) == set(other.kme.buckets)
        assert twin.kme.app_sessions == other.kme.app_sessions == {APP: SESSION}
    fresh.run_for(12 * NS)
    assert status(alice2, LINK) == "ACTIVE"
    assert [a["app_id"] for a in alice2.state()[QKD]["qkd_applications"]["qkd_app"]] == [APP]


def test_prepare_without_commit_then_a_new_transaction_rereads_the_configuration():
    """A transaction prepared but never committed (the datastore failed in between) must not
    leave its changes in the twin's copy: the next one re-reads the old configuration."""
    world, alice, _, _ = qkd_pair()
    txn, _ = alice.transaction(add_link(qkd_link(OTHER, 1, world.node_uuid("bob"), qkdl_enable=False)))
    run(alice.driver.prepare(txn))  # never committed
    reads = []

    def old_config():
        reads.append("old")
        return copy.deepcopy(alice.running)

    new = copy.deepcopy(alice.running)
    add_link(qkd_link(LINK, 1, world.node_uuid("bob"), qkdl_enable=False))(new)
    old_tree, new_tree = (DataTree.from_python(t, schema=alice.schema, validate=False) for t in (alice.running, new))
    again = ConfigTransaction(tuple(old_tree.diff(new_tree)), old_config, _whole_tree_read)
    run(alice.driver.prepare(again))
    run(alice.driver.commit(again))
    alice.running = new
    assert reads == ["old"]
    assert set(alice.driver.config.links) == {LINK} and not alice.driver.config.links[LINK].enable


# -- sliced ticks ----------------------------------------------------------------------------------


def _with_apps(count: int, rate: int):
    def mutate(config):
        config[QKD]["qkd_applications"] = {"qkd_app": [{
            "app_id": f"0000000a-0000-4000-8000-{i:012x}", "backing_qkdl_id": [LINK],
            "app_qos": {"min_bandwidth": rate}} for i in range(count)]}
    return mutate


async def loop_turns(tick: Awaitable[None]) -> int:
    """How many turns the event loop gave other tasks while `tick` ran."""
    turns = 0

    async def count() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1
    counter = asyncio.ensure_future(count())
    await tick
    counter.cancel()
    return turns


def test_a_sliced_tick_gives_the_loop_turns_and_the_same_state_as_a_whole_tick():
    """Live agents tick with `advance_sliced` so thousands of links and applications never stall
    a session: the loop gets turns during the tick, the result is the whole tick's, and a commit
    landing between two pieces (an application removed) is taken in its stride."""
    whole, sliced = qkd_pair(), qkd_pair()
    for world, alice, _, _ in (whole, sliced):
        world.run_for(11 * NS)
        alice.edit(_with_apps(300, 1000))

    whole[0].advance(NS)
    turns = run(loop_turns(sliced[0].advance_sliced(NS, slice_s=0)))
    assert turns >= 300 // 16  # at least one turn per piece of applications
    assert whole[1].state() == sliced[1].state()
    assert sliced[0].settled_ns == sliced[0].now_ns == whole[0].now_ns

    sliced[1].edit(_with_apps(300, 900))  # every application has something to check next tick

    async def commit_mid_tick() -> None:
        world, alice = sliced[0], sliced[1]
        tick = asyncio.ensure_future(world.advance_sliced(NS, slice_s=0))
        for _ in range(5):
            await asyncio.sleep(0)
        assert world.settled_ns < world.now_ns  # still ticking
        txn, new = alice.transaction(_with_apps(10, 1000))
        await alice.driver.prepare(txn)
        await alice.driver.commit(txn)
        alice.running = new
        await tick
        assert world.settled_ns == world.now_ns
    run(commit_mid_tick())
    assert len(sliced[1].state()[QKD]["qkd_applications"]["qkd_app"]) == 10


def test_applications_are_accounted_per_window_though_only_changes_are_checked_per_tick():
    """Quiet applications cost nothing per tick, yet every statistics window holds what they
    drew over its whole length, an expiring one stops drawing at its expiration time, and one
    that asks for more than the link makes raises its alarm once."""
    world, alice, _, _ = qkd_pair()
    world.run_for(11 * NS)
    rate = skr(alice, LINK)
    steady, expiring, greedy = (f"0000000a-0000-4000-8000-0000000000{x}" for x in ("b1", "b2", "b3"))
    expires = world.date_and_time(world.now_ns + 15 * NS)

    def apps(config):
        config[QKD]["qkd_applications"] = {"qkd_app": [
            {"app_id": steady, "backing_qkdl_id": [LINK], "app_qos": {"min_bandwidth": 1000}},
            {"app_id": expiring, "backing_qkdl_id": [LINK], "app_qos": {"min_bandwidth": 2000},
             "expiration_time": expires},
        ]}
    alice.edit(apps)
    world.run_for(31 * NS)
    state = {a["app_id"]: a for a in alice.state()[QKD]["qkd_applications"]["qkd_app"]}
    windows = state[steady]["app_statistics"]["statistics"]
    assert len(windows) == 3
    assert [w["consumed_bits"] for w in windows] == [10_000, 10_000, 10_000]
    # 15 s of 2,000 bit/s, then nothing: it expired
    assert [w["consumed_bits"] for w in state[expiring]["app_statistics"]["statistics"]] == [20_000, 10_000, 0]
    assert state[steady]["app_status"].endswith("ON")
    assert state[expiring]["app_status"].endswith("OUT-OF-TIME")
    assert not alice.notifications("alarm")

    def more(config):
        config[QKD]["qkd_applications"]["qkd_app"].append(
            {"app_id": greedy, "backing_qkdl_id": [LINK], "app_qos": {"min_bandwidth": 3 * rate}})
    alice.edit(more)
    world.run_for(30 * NS)
    alarms = [n for n in alice.notifications("alarm") if n.get("application")]
    assert len(alarms) >= 1
    assert {n["application"]["app_id"] for n in alarms} >= {greedy}
    first = [n for n in alarms if n["application"]["app_id"] == greedy]
    assert len(first) == 1  # raised once while it stays short of key
