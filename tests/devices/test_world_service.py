"""The world service over a real Unix socket: `RemoteDriver`s against twins in a `WorldService`,
side by side with the same twins driven in this process.

What "the same figures" means, precisely: two deterministic worlds (no sampling noise, no drift)
built from the same topology and seed, driven through the same transactions and the same plant
changes and advanced by the same ticks, give every agent the same `read_state()` tree (every leaf:
status, skr, QBER, key stored, fidelity, port power) and the same device events, field for field
and in the same order -- whether the twin runs in this process or in the service.
"""

from __future__ import annotations

import asyncio
import copy
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from qstrata.agents.devices import registry
from qstrata.agents.devices.base import ConfigTransaction, DeviceEvent, DeviceRefusal, KeyCompromised
from qstrata.agents.devices.plant_control import LocalPlant
from qstrata.agents.devices.remote.client import RemoteDriver, RemotePlant, WorldUnavailable
from qstrata.agents.devices.remote.service import WorldService
from qstrata.agents.devices.topology import DEFAULT_TOPOLOGY
from qstrata.agents.devices.world import DEFAULT_EPOCH_UNIX_NS, World
from qstrata.bindings.schema import get_schema
from qstrata.bindings.tree import DataTree

NETWORK = DEFAULT_TOPOLOGY.with_name("network.yaml")
NS = 1_000_000_000
QKD = "etsi-qkd-sdn-node:qkd_node"
LINK = "5b1f0c3e-9a39-4c55-8c0e-2d7f3a6b9e01"
ENT = "0e7a1c55-3b2d-4f6a-9d8e-1a2b3c4d5e6f"
NODES = {"alice": "qkd", "bob": "qkd", "sw1": "switch", "mem-a": "memory", "mem-b": "memory"}


def world() -> World:
    return World.from_yaml(NETWORK, deterministic=True, epoch_unix_ns=DEFAULT_EPOCH_UNIX_NS)


class Datastore:
    """The running configuration an agent's datastore would keep for one driver; transactions
    carry the change list libyang computes, and lazily the whole trees, as the datastore's do."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.events: list[DeviceEvent] = []
        self.early: list[DeviceEvent] = []
        """Events that arrived before the state of their tick."""
        self.tree_reads = 0

    async def start(self) -> None:
        inventory = await self.driver.start()
        self.modules = inventory.modules
        self.schema = get_schema(tuple(inventory.modules))
        self.running = copy.deepcopy(inventory.config)
        self.inventory = inventory
        self._events = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for event in self.driver.events():
            self.events.append(event)
            if event.time_ns > self.driver.world.settled_ns:
                self.early.append(event)

    def transaction(self, mutate) -> tuple[ConfigTransaction, dict]:
        new = copy.deepcopy(self.running)
        mutate(new)
        old_tree, new_tree = (DataTree.from_python(t, schema=self.schema, validate=False) for t in (self.running, new))

        def tree(value: dict):
            def read() -> dict:
                self.tree_reads += 1
                return copy.deepcopy(value)
            return read

        return ConfigTransaction(tuple(old_tree.diff(new_tree)), tree(self.running), tree(new)), new

    async def edit(self, mutate) -> None:
        txn, new = self.transaction(mutate)
        await self.driver.prepare(txn)
        await self.driver.commit(txn)
        self.running = new


def qkd_link(remote_uuid: str) -> dict:
    return {"qkdl_id": LINK, "qkdl_enable": True, "qkdl_local": {"qkdi_id": 1},
            "qkdl_remote": {"qkdn_id": remote_uuid}, "qkdl_type": "etsi-qkd-node-types:PHYS"}


def with_link(remote_uuid: str):
    def mutate(config: dict) -> None:
        config[QKD].setdefault("qkd_links", {})["qkd_link"] = [qkd_link(remote_uuid)]
    return mutate


def with_entanglement(remote_uuid: str, port: int):
    def mutate(config: dict) -> None:
        config["qstrata-qfs:qfs-node"]["entanglement-links"] = {"link": [{
            "link-id": ENT, "local-memory": "mem0", "remote-node": remote_uuid, "remote-memory": "mem0",
            "generation-scheme": "qstrata-qfs:BARRETT-KOK", "switch-port": {"device": "sw1", "port": port},
            "cutoff-time": str(300_000_000)}]}
    return mutate


def cross_connects(*pairs: tuple[int, int]):
    def mutate(config: dict) -> None:
        config["optical-switch:cross-connects"] = {"pair": [{"ingress": i, "egress": e} for i, e in pairs]}
    return mutate


class Side:
    """One way of running the network: every node's driver, the world they tick in, the plant."""

    def __init__(self, world: World, drivers: dict[str, Any], plant: Any) -> None:
        self.world, self.plant = world, plant
        self.stores = {name: Datastore(d) for name, d in drivers.items()}

    async def start(self) -> None:
        for store in self.stores.values():
            await store.start()

    async def edit(self, name: str, mutate) -> None:
        await self.stores[name].edit(mutate)

    def state(self, name: str) -> dict:
        return self.stores[name].driver.read_state()


async def settled(remote: Side, timeout: float = 5.0) -> None:
    """Until every remote driver has heard of the service world's last tick (and its events)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while any(s.driver.world.settled_ns != remote.world.settled_ns for s in remote.stores.values()):
        assert asyncio.get_running_loop().time() < deadline, "the service did not push the tick"
        await asyncio.sleep(0.001)
    for _ in range(20):  # the events that follow the state in the same burst
        await asyncio.sleep(0)


async def service_and_sides(tmp_path: Path) -> tuple[WorldService, Side, Side]:
    service = WorldService(world(), clock=False)
    await service.start(tmp_path / "world.sock")
    local_world = world()
    local = Side(local_world, {n: registry.create_for(local_world, n) for n in NODES}, LocalPlant(local_world.plant))
    remote = Side(service.world, {n: RemoteDriver(tmp_path / "world.sock", k, n) for n, k in NODES.items()},
                  RemotePlant(tmp_path / "world.sock"))
    await local.start()
    await remote.start()
    return service, local, remote


async def both(local: Side, remote: Side, action) -> None:
    await action(local)
    await action(remote)


async def tick_and_compare(local: Side, remote: Side, ticks: int) -> None:
    for _ in range(ticks):
        local.world.advance(NS)
        # the service ticks as it does live: sliced, its event forwarders running between slices
        await remote.world.advance_sliced(NS, slice_s=0)
        await settled(remote)
        for name in NODES:
            assert remote.state(name) == local.state(name), f"{name} at t={local.world.now_ns // NS} s"


def test_remote_twins_give_the_same_figures_as_twins_in_this_process(tmp_path):
    async def main() -> None:
        service, local, remote = await service_and_sides(tmp_path)
        try:
            for name in NODES:
                assert remote.stores[name].inventory == local.stores[name].inventory
            uuid = local.world.node_uuid
            await both(local, remote, lambda s: s.edit("sw1", cross_connects((1, 9), (2, 10), (5, 6))))
            await both(local, remote, lambda s: s.edit("alice", with_link(uuid("bob"))))
            await both(local, remote, lambda s: s.edit("bob", with_link(uuid("alice"))))
            await both(local, remote, lambda s: s.edit("mem-a", with_entanglement(uuid("mem-b"), 5)))
            await both(local, remote, lambda s: s.edit("mem-b", with_entanglement(uuid("mem-a"), 6)))
            await tick_and_compare(local, remote, 12)
            ent = remote.state("mem-a")["qstrata-qfs:qfs-node"]["entanglement-links"]["link"][0]
            assert ent["status"].endswith("ACTIVE") and 0.5 < float(ent["delivered-fidelity"]) < 1, ent
            link = next(x for x in remote.state("alice")[QKD]["qkd_links"]["qkd_link"] if x["qkdl_id"] == LINK)
            assert link["qkdl_status"].endswith("ACTIVE") and link["qkdl_performance"]["skr"] > 1_000_000
            qber_before = link["qkdl_performance"]["phys_perf"]
            # the scenario's disturbance, through each side's plant control
            await both(local, remote, lambda s: s.plant.set_launch_power("c-tenant", -18.0))
            await tick_and_compare(local, remote, 3)
            link = next(x for x in remote.state("alice")[QKD]["qkd_links"]["qkd_link"] if x["qkdl_id"] == LINK)
            assert link["qkdl_performance"]["phys_perf"] != qber_before
            # an eavesdropper on the primary spool: the link is held back, on both sides alike
            await both(local, remote, lambda s: s.plant.set_eavesdropper("spool-25", 0.3))
            await tick_and_compare(local, remote, 4)
            for side in (local, remote):
                with pytest.raises(KeyCompromised, match=f"QKD link {LINK} is compromised.*fibre spool-25"):
                    await side.stores["alice"].driver.take_key(LINK, 8192)
            # the closed loop's re-route, then re-lock on the spare
            await both(local, remote, lambda s: s.edit("sw1", cross_connects((1, 13), (2, 14), (5, 6))))
            await tick_and_compare(local, remote, 12)
            await both(local, remote, lambda s: s.plant.add_loss("spool-50", 1.5))
            await tick_and_compare(local, remote, 2)
            for name in NODES:
                got, want = remote.stores[name].events, local.stores[name].events
                assert got == want, name
                assert not remote.stores[name].early, name
            assert any(e.kind == "notification" for e in remote.stores["alice"].events)
            assert all(s.tree_reads == 0 for s in remote.stores.values())  # change lists only
        finally:
            await service.stop()

    asyncio.run(main())


def test_refusals_trees_on_demand_and_the_socket_mode(tmp_path):
    async def main() -> None:
        service, local, remote = await service_and_sides(tmp_path)
        try:
            assert stat.S_IMODE(os.stat(tmp_path / "world.sock").st_mode) == 0o600
            sw = remote.stores["sw1"]
            with pytest.raises(DeviceRefusal) as refused:
                await sw.edit(cross_connects((1, 99)))
            assert "99" in refused.value.message and refused.value.path
            # a transaction another participant refused: the twin forgets its copy, and asks for the
            # whole old configuration at the next prepare (sent only then)
            txn, _ = sw.transaction(cross_connects((1, 9)))
            await sw.driver.prepare(txn)
            await sw.driver.abort(txn)
            assert sw.tree_reads == 0
            await sw.edit(cross_connects((1, 9)))
            assert sw.tree_reads == 1
            assert remote.state("sw1") == sw.driver.read_state()
            pairs = service.world.plant.switches["sw1"].pairs
            assert pairs == {1: 9}
            with pytest.raises(WorldUnavailable, match="driven by another agent"):
                await RemoteDriver(tmp_path / "world.sock", "switch", "sw1").start()
        finally:
            await service.stop()

    asyncio.run(main())


def test_a_dead_agent_leaves_its_device_running_and_the_next_one_resumes_it(tmp_path):
    async def main() -> None:
        service, local, remote = await service_and_sides(tmp_path)
        try:
            uuid = service.world.node_uuid
            await remote.edit("sw1", cross_connects((1, 9), (2, 10)))
            await remote.edit("alice", with_link(uuid("bob")))
            await remote.edit("bob", with_link(uuid("alice")))
            for _ in range(12):
                service.world.advance(NS)
            await settled(remote)
            alice = remote.stores["alice"]
            assert alice.driver.read_state()[QKD]["qkd_links"]["qkd_link"][0]["qkdl_status"].endswith("ACTIVE")
            # the agent process dies: its connection ends without a detach
            alice.driver._conn._writer.transport.abort()
            await asyncio.sleep(0.1)
            for _ in range(3):
                service.world.advance(NS)
            again = RemoteDriver(tmp_path / "world.sock", "qkd", "alice")
            inventory = await again.start()
            assert again.resumed
            assert inventory.config[QKD]["qkd_links"]["qkd_link"][0]["qkdl_id"] == LINK  # the config it runs
            assert again.read_state()[QKD]["qkd_links"]["qkd_link"][0]["qkdl_status"].endswith("ACTIVE")
            # the service goes away: the driver's events end (the agent then stops), stop is quiet
            events = again.events()
            await service.stop()
            await asyncio.wait_for(_drain(events), 5)
            assert again.lost
            await again.stop()
        finally:
            await service.stop()

    asyncio.run(main())


async def _drain(events) -> None:
    async for _ in events:
        pass


def test_no_service_is_one_clear_error(tmp_path):
    async def main() -> None:
        driver = RemoteDriver(tmp_path / "none.sock", "qkd", "alice", connect_timeout=0.3)
        with pytest.raises(WorldUnavailable, match="no world service at unix:.*none.sock"):
            await driver.start()

    asyncio.run(main())


def test_plant_changes_wait_for_a_restarted_service_and_refusals_are_errors(tmp_path):
    """The scenario's hand on the service's plant: a change made while the service is away waits in
    the journal; a restarted service (a fresh world) gets every change again (`replay`, as `up`
    does); a change the service refuses (no such channel) is an error and is not kept."""
    async def main() -> None:
        plant = RemotePlant(tmp_path / "world.sock")
        await plant.set_launch_power("c-tenant", -18.0)  # no service yet: kept for later
        first = WorldService(world(), clock=False)
        await first.start(tmp_path / "world.sock")
        try:
            with pytest.raises(ValueError, match="no 'c-nobody'"):
                await plant.set_launch_power("c-nobody", 0.0)
            await plant.add_loss("spool-25", 2.0)
            await plant.set_eavesdropper("spool-50", 0.25)
            with pytest.raises(ValueError, match=r"in \[0, 1\]"):
                await plant.set_eavesdropper("spool-50", 2.0)
        finally:
            await first.stop()
        assert plant.journal == [("set_launch_power", {"channel": "c-tenant", "dbm": -18.0}),
                                 ("add_loss", {"fibre": "spool-25", "extra_db": 2.0}),
                                 ("set_eavesdropper", {"fibre": "spool-50", "fraction": 0.25})]
        second = WorldService(world(), clock=False)
        await second.start(tmp_path / "world.sock")
        try:
            await plant.replay()
            assert second.world.topology.classical_channels["c-tenant"].launch_power_dbm == -18.0
            fresh = world().plant.fibres["spool-25"].spec.attenuation_db_per_km
            assert second.world.plant.fibres["spool-25"].spec.attenuation_db_per_km == pytest.approx(fresh + 2.0 / 25)
            assert second.world.plant.fibres["spool-50"].eavesdropper == 0.25
        finally:
            await second.stop()

    asyncio.run(main())
