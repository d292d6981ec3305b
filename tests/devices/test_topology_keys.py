"""The keys a topology file may hold are the keys the code reads.

Each kind of entry declares its keys once (`Keys` in agents/devices/topology_keys.py and
agents/testbed/plan.py), readers take keys only through them, and the checker refuses the rest.
Here: a read of an undeclared key fails; every declared key is read when a world, its twins and
`qstrata up`'s plan are built from a file that holds every key; every topology the project ships
or tests with still loads.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest
from qstrata.agents.devices import registry, topology_keys
from qstrata.agents.devices.topology import DEFAULT_TOPOLOGY, load, read
from qstrata.agents.devices.topology_keys import Keys
from qstrata.agents.devices.world import World
from qstrata.agents.testbed import plan as plan_module
from qstrata.agents.testbed.network import UpOptions, check

ROOT = Path(__file__).resolve().parents[2]
EVERY_KEY = Path(__file__).with_name("topologies") / "every_key.yaml"
DECLARED = list({id(k): k for module in (topology_keys, plan_module) for k in vars(module).values()
                 if isinstance(k, Keys)}.values())


def test_reading_an_undeclared_key_is_a_bug_caught_at_once():
    with pytest.raises(KeyError, match="'colour' is not a key of a switch node"):
        topology_keys.SWITCH_NODE.get({"colour": "red"}, "colour")


def test_every_declared_key_is_read(monkeypatch):
    read_keys: dict[str, set[str]] = defaultdict(set)
    original = Keys.get

    def recording(self: Keys, entry, key, default=None):
        read_keys[self.what].add(key)
        return original(self, entry, key, default)

    monkeypatch.setattr(Keys, "get", recording)
    topology = load(EVERY_KEY)
    world = World.from_yaml(EVERY_KEY, deterministic=True)

    async def drive() -> None:
        for driver in registry.create_all(world):
            await driver.start()
            driver.read_state()
            await driver.stop()

    asyncio.run(drive())
    for node in topology.nodes.values():  # what qstrata up's hosting and dashboard read
        assert (node.location, node.netconf_port, node.gnmi_port) is not None
    assert topology.gnmi_gateway_port == 0
    plan, issues = plan_module.plan_of(read(EVERY_KEY), topology, str(EVERY_KEY))
    assert issues == [] and plan.controller.entanglement_links and len(plan.scenario) == 4  # the eavesdropper comes and goes: 2 steps

    assert len({k.what for k in DECLARED}) == len(DECLARED), "two Keys share a name"
    unread = {k.what: sorted(set(k.keys) - read_keys[k.what]) for k in DECLARED if set(k.keys) - read_keys[k.what]}
    assert unread == {}, f"declared but never read (drop them, or read them): {unread}"


def _topologies() -> list[Path]:
    shipped = sorted(DEFAULT_TOPOLOGY.parent.glob("*.yaml"))
    tested = sorted(p for p in (ROOT / "tests").rglob("*.yaml") if "topologies" in p.parts)
    return shipped + tested


@pytest.mark.parametrize("path", _topologies(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_and_tested_topology_loads(path: Path):
    assert path.exists()
    _, topology, _ = check(UpOptions(topology=path))
    assert topology.nodes
