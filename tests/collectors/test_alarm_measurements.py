"""The closed loop's QBER alarm on the twins' real telemetry: `qstrata up`'s network (network.yaml)
driven in process, read the way a subscription delivers it, through the collector's pipeline with
the built-in rule. Another tenant's channel raises the QBER, the link is re-routed over the spare
spool, re-locks (PENDING, QBER reported as 0 for ten simulated seconds) and comes back ACTIVE at
about 1 %: the alarm stays raised while the link re-locks and clears only on ACTIVE readings below
clear-below -- not on the zeros of a link that measures nothing."""

from __future__ import annotations

import asyncio

import yaml
from qstrata.agents.devices.world import World
from qstrata.agents.testbed.network import NETWORK_TOPOLOGY, UpOptions, check
from qstrata.collectors.config import load
from qstrata.collectors.pipeline import Pipeline
from qstrata.collectors.processors.alarms import AlarmProcessor
from twin_feed import Twin

NS = 1_000_000_000
QKD = "etsi-qkd-sdn-node:qkd_node"
LINK = "5b1f0c3e-9a39-4c55-8c0e-2d7f3a6b9e01"


def cross_connects(pairs: list[tuple[int, int]]):
    def mutate(cfg):
        cfg["optical-switch:cross-connects"] = {"pair": [{"ingress": i, "egress": e} for i, e in pairs]}
    return mutate


def qkd_link(world: World, remote: str):
    def mutate(cfg):
        cfg[QKD].setdefault("qkd_links", {})["qkd_link"] = [{
            "qkdl_id": LINK, "qkdl_enable": True, "qkdl_local": {"qkdi_id": 1},
            "qkdl_remote": {"qkdn_id": world.node_uuid(remote)}, "qkdl_type": "etsi-qkd-node-types:PHYS"}]
    return mutate


def test_qber_alarm_holds_while_the_rerouted_link_relocks_and_clears_on_active_readings(tmp_path):
    plan = check(UpOptions())[2].collector  # the shipped rules, read by the collector's own loader
    config = tmp_path / "collector.yaml"
    targets = [{"name": name, "kind": kind, "address": "127.0.0.1:1", "netconf": "127.0.0.1:1", "username": "u",
                "password": "p"} for name, kind in (("alice", "qkd"), ("sw1", "switch"))]
    config.write_text(yaml.safe_dump({"targets": targets, "alarms": list(plan.alarms), "actions": list(plan.actions)}))
    alarms = AlarmProcessor([r for r in load(config).rules if r.name == "qber-high"])
    pipeline = Pipeline([], [alarms])
    asyncio.run(alarms.start(pipeline))

    world = World.from_yaml(NETWORK_TOPOLOGY, deterministic=True)
    alice, bob, sw1 = (Twin(world, name) for name in ("alice", "bob", "sw1"))
    sw1.edit(cross_connects([(1, 9), (2, 10)]))  # the primary route, over spool-25
    alice.edit(qkd_link(world, "bob"))
    bob.edit(qkd_link(world, "alice"))
    story: list[tuple[str, float, list]] = []  # per simulated second: link status, QBER, alarm transitions

    def run(seconds: int) -> None:
        for _ in range(seconds):
            world.run_for(NS)
            updates = alice.updates(world.unix_ns())
            status = next(u.value for u in updates if u.path.endswith("/qkdl_status")).rsplit(":", 1)[-1]
            qber = next(u.value for u in updates if "phys_perf" in u.path and u.path.endswith("/value"))
            story.append((status, qber, pipeline.ingest(updates).alarms))

    run(15)
    assert story[-1][:2] == ("ACTIVE", 0.01) and not any(a for *_, a in story), story
    world.plant.set_launch_power("c-tenant", -18)  # the scenario's disturbance: Raman noise on spool-25
    run(3)
    raised = [a for *_, batch in story for a in batch]
    assert [a.state for a in raised] == ["raised"] and "qber 0.056 above 0.04" in raised[0].text, story[-3:]
    sw1.edit(cross_connects([(1, 13), (2, 14)]))  # what the reroute-spare action does
    start = len(story)
    run(20)
    after = story[start:]
    relocking = [i for i, (status, qber, _) in enumerate(after) if status == "PENDING"]
    assert len(relocking) >= 5 and all(after[i][1] == 0.0 for i in relocking), after  # the zeros are there...
    assert all(not after[i][2] for i in relocking), after  # ...and change nothing
    active = [i for i, (status, _, _) in enumerate(after) if status == "ACTIVE" and i > relocking[-1]]
    assert all(after[i][1] < 0.03 for i in active), after
    transitions = [(i, a) for i, (*_, batch) in enumerate(after) for a in batch]
    assert len(transitions) == 1, after
    i, cleared = transitions[0]
    assert i == active[2], after  # the third ACTIVE reading below clear-below in a row
    assert cleared.state == "cleared" and cleared.alarm_id == raised[0].alarm_id
    assert cleared.text == "qber-high: cleared, qber 0.01, below 0.03 for 3 readings, link ACTIVE"
    assert pipeline.active_alarms == {}
