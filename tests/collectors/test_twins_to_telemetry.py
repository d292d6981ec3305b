"""The digital twins' real operational data, as gNMI updates, through the pipeline: every kind of
normalized telemetry comes out (QKD link rates, QBER, key availability; service-unit counts; QFS
link rates and fidelity; memory occupancy; switch port power), the whole normalized view is valid
qstrata-telemetry, raw leaves are kept, and an alarm rule fires on a real QBER."""

from __future__ import annotations

import asyncio

from qstrata.agents.devices.topology import DEFAULT_TOPOLOGY
from qstrata.agents.devices.world import World
from qstrata.bindings.tree import DataTree
from qstrata.collectors.outputs.sqlite import SqliteOutput
from qstrata.collectors.pipeline import Pipeline
from qstrata.collectors.processors.alarms import AlarmProcessor, ThresholdRule
from qstrata.collectors.store import StoreReader
from twin_feed import Twin

NS = 1_000_000_000
LINK = "0000000a-0000-4000-8000-00000000000b"
ELINK = "0000000a-0000-4000-8000-0000000000e1"
QKD = "etsi-qkd-sdn-node:qkd_node"
SS = "qstrata-ss:service-stratum"
TEL = "/qstrata-telemetry:telemetry"


def build_testbed() -> list[Twin]:
    world = World.from_yaml(DEFAULT_TOPOLOGY, deterministic=True)
    twins = {n: Twin(world, n) for n in ("alice", "bob", "sw1", "mem-a", "mem-b")}
    uid = world.node_uuid

    def link(remote: str):
        def mutate(cfg):
            cfg[QKD].setdefault("qkd_links", {})["qkd_link"] = [{
                "qkdl_id": LINK, "qkdl_enable": True, "qkdl_local": {"qkdi_id": 1}, "qkdl_remote": {"qkdn_id": uid(remote)},
                "qkdl_type": "etsi-qkd-node-types:PHYS"}]
        return mutate

    twins["alice"].edit(link("bob"))
    twins["bob"].edit(link("alice"))
    world.run_for(12 * NS)

    def kme(cfg):
        cfg[QKD]["qkd_applications"] = {"qkd_app": [{"app_id": "0000000a-0000-4000-8000-0000000000a9",
                                                     "backing_qkdl_id": [LINK],
                                                     "qstrata-ss:ss-session-id": "0000000a-0000-4000-8000-0000000000f1"}]}
        cfg[SS]["kme"]["forwarding-table"] = {"route": [{"urn-prefix": "urn:qkd:bob:", "next-hop-kme": uid("bob"),
                                                         "qkd-link": LINK}]}
        cfg[SS]["kme"]["sessions"] = {"session": [{"session-id": "0000000a-0000-4000-8000-0000000000f1", "rate": "1000",
                                                   "burst": "512"}]}
        cfg[SS]["service-units"] = {"service-unit": [{
            "unit-id": "0000000a-0000-4000-8000-000000000101", "source-urn": "urn:qkd:alice:vpn?=nonce=1",
            "destination-urn": "urn:qkd:bob:vpn?=nonce=1", "kind": "qstrata-ss:KEY",
            "lifecycle-urn": f"urn:qkd:lifecycle?=size=256&valid-until={world.unix_ns() // NS + 60}",
            "originator": "0000000a-0000-4000-8000-0000000000a9"}]}

    twins["alice"].edit(kme)

    def elink(remote: str):
        def mutate(cfg):
            cfg["qstrata-qfs:qfs-node"]["entanglement-links"] = {"link": [{
                "link-id": ELINK, "local-memory": "mem0", "remote-node": uid(remote), "remote-memory": "mem0",
                "generation-scheme": "qstrata-qfs:BARRETT-KOK", "length": "25.000"}]}
        return mutate

    twins["mem-a"].edit(elink("mem-b"))
    twins["mem-b"].edit(elink("mem-a"))
    world.run_for(3 * NS)
    return list(twins.values())


def test_twin_data_becomes_valid_telemetry(tmp_path):
    twins = build_testbed()
    rule = ThresholdRule("qber-watch", f"{TEL}/qkd-links/qkd-link/qber", "qstrata-telemetry:WARNING", above=0.001)

    async def main():
        pipeline = Pipeline([SqliteOutput(tmp_path / "t.db")], [AlarmProcessor([rule])])
        await pipeline.start()
        batches = [pipeline.ingest(t.updates(1_750_000_000 * NS)) for t in twins]
        await pipeline.stop()
        return pipeline, batches

    pipeline, batches = asyncio.run(main())
    series = list(pipeline.registry)
    normalized = {s.path.split("[")[0].removeprefix(TEL) + "/" + s.path.rsplit("/", 1)[1] for s in series
                  if s.path.startswith(TEL)}
    assert {"/qkd-links/qkd-link/status", "/qkd-links/qkd-link/secret-key-rate", "/qkd-links/qkd-link/effective-key-rate",
            "/qkd-links/qkd-link/qber", "/qkd-links/qkd-link/key-available", "/qkd-links/qkd-link/store-capacity",
            "/qkd-links/qkd-link/consumption-rate", "/service-units/service-unit-state/count",
            "/qfs-links/qfs-link/generation-rate", "/qfs-links/qfs-link/fidelity", "/qfs-links/qfs-link/status",
            "/memories/memory/occupancy", "/memories/memory/capacity", "/switch-ports/switch-port/optical-power"} <= normalized
    raw = [s for s in series if not s.path.startswith(TEL)]
    assert any(s.path.endswith("/attempts") and s.counter for s in raw)  # kept raw, counter from YANG
    alarms = [a for b in batches for a in b.alarms]
    assert sorted((a.agent, a.rule, a.state) for a in alarms) == [("alice", "qber-watch", "raised"),
                                                                  ("bob", "qber-watch", "raised")]

    tree = DataTree()
    for name in {s.target for s in series if s.target}:
        tree.set(f"{TEL}/agents/agent[name='{name}']/reachable", "true")
    for s in series:
        if s.path.startswith(TEL) and s.value is not None and "/agents/" not in s.path:
            tree.set(s.path, str(s.value).lower() if isinstance(s.value, bool) else str(s.value))
            tree.set(s.path.rsplit("/", 1)[0] + "/agent", s.target)
    tree.validate()
    reader = StoreReader(tmp_path / "t.db")
    (skr,) = reader.series(name="telemetry_qkd_links_qkd_link_secret_key_rate", source="alice")
    (row,) = list(reader.samples([skr], 0, 2**62))
    assert row[2] > 1000
    reader.close()
