"""Real agents streaming gNMI into a real `qstrata collect` process: the values arrive in the store
(read back with `qstrata query`), in Debian's Prometheus server scraping the collector, in NATS
JetStream, and through the collector's own northbound gNMI (Get, Subscribe STREAM sample and
on-change, ONCE) with both agents' telemetry; Set is refused; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import grpc
import nats
from agent_processes import HOST, free_port, stop_process
from agent_procs import QSTRATA
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc
from nats.js.api import ConsumerConfig, DeliverPolicy
from qstrata.collectors.natsutil import decode
from qstrata.collectors.store import StoreReader

MEMORIES = "/qstrata-telemetry:telemetry/memories"


def _path(text: str) -> gnmi_pb2.Path:
    from qstrata.bindings.paths import xpath_to_gnmi

    return xpath_to_gnmi(text)


def wait_store(db: Path, sources: set[str], timeout: float = 20.0) -> dict[str, int]:
    """Until every source has occupancy samples in the store; samples per source."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        if db.exists():
            reader = StoreReader(db)
            try:
                rows = reader.series(name="*memories_memory_occupancy")
                counts = {}
                for row, _, _ in reader.samples(rows, 0, 2**63 - 1):
                    counts[row.source] = counts.get(row.source, 0) + 1
            except Exception:  # the writer may not have created the tables yet
                counts = {}
            finally:
                reader.close()
            if sources <= set(counts):
                return counts
        time.sleep(0.2)
    raise AssertionError(f"store has occupancy samples of {counts} only, want {sources}")


async def nats_sources(url: str, want: set[str], timeout: float = 10.0) -> set[str]:
    nc = await nats.connect(url)
    seen: set[str] = set()
    try:
        js = nc.jetstream()
        sub = await js.subscribe("qstrata.telemetry.>", stream="QSTRATA", ordered_consumer=True,
                                 config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
        deadline = time.monotonic() + timeout
        while not want <= seen and time.monotonic() < deadline:
            msg = await sub.next_msg(timeout=timeout)
            kind, updates = decode(msg.subject, msg.data, msg.headers)
            seen |= {u.target for u in updates if "occupancy" in u.path}
    finally:
        await nc.close()
    return seen


async def northbound(port: int, creds_file: Path) -> dict:
    cred = json.loads(creds_file.read_text())
    md = (("username", cred["username"]), ("password", cred["password"]))
    out: dict = {}
    channel = grpc.aio.secure_channel(f"{HOST}:{port}", grpc.ssl_channel_credentials(Path(cred["ca"]).read_bytes()))
    async with channel:
        stub = gnmi_pb2_grpc.gNMIStub(channel)
        caps = await stub.Capabilities(gnmi_pb2.CapabilityRequest(), metadata=md)
        out["models"] = {m.name for m in caps.supported_models}
        get = await stub.Get(gnmi_pb2.GetRequest(path=[_path(MEMORIES)], encoding=4), metadata=md)
        out["get"] = json.loads(get.notification[0].update[0].val.json_ietf_val)

        async def stream(mode: int, sub_mode: int, path: str, until) -> list[gnmi_pb2.SubscribeResponse]:
            req = gnmi_pb2.SubscribeRequest(subscribe=gnmi_pb2.SubscriptionList(
                subscription=[gnmi_pb2.Subscription(path=_path(path), mode=sub_mode, sample_interval=500_000_000)],
                mode=mode, encoding=2))
            got = []
            call = stub.Subscribe(iter([req]), metadata=md)
            try:
                async with asyncio.timeout(10):
                    async for resp in call:
                        got.append(resp)
                        if until(got):
                            break
            finally:
                call.cancel()
            return got

        def syncs(n):
            return lambda got: sum(r.sync_response for r in got) >= 1 and len(got) >= n

        out["sample"] = await stream(0, 2, MEMORIES, syncs(4))
        out["on_change"] = await stream(0, 1, "/qstrata-telemetry:telemetry/agents", syncs(1))
        out["once"] = await stream(1, 0, MEMORIES, lambda got: got[-1].sync_response)
        try:
            await stub.Set(gnmi_pb2.SetRequest(delete=[_path(MEMORIES)]), metadata=md)
        except grpc.aio.AioRpcError as exc:
            out["set"] = exc.code()
    return out


def leaves(responses, leaf: str) -> dict[str, object]:
    """{memory path: value} of `leaf` in the updates of `responses`."""
    from qstrata.bindings.paths import gnmi_to_xpath

    found = {}
    for r in responses:
        if r.HasField("update"):
            for u in r.update.update:
                p = gnmi_to_xpath(u.path, r.update.prefix)
                if p.endswith("/" + leaf):
                    found[p] = getattr(u.val, u.val.WhichOneof("value"))
    return found


def test_agents_stream_into_every_output_and_the_northbound_view(tmp_path, agents, nats_server, prometheus):
    a = agents("mem-a", wait=False)
    b = agents("mem-b", insecure=True, wait=False)  # one TLS (CA from its credentials file), one plain text
    a.wait_ready()
    b.wait_ready()
    cfg = tmp_path / "collector.yaml"
    cfg.write_text("targets:\n" + a.target_yaml("1s") + b.target_yaml("1s"))
    prom_port, gnmi_port = free_port(), free_port()
    db = tmp_path / "c.db"
    log = tmp_path / "collect.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(QSTRATA), "collect", "--targets", str(cfg), "--store", f"sqlite:{db}",
                                 "--prometheus", f"{HOST}:{prom_port}", "--nats", nats_server.url,
                                 "--gnmi-port", str(gnmi_port), "--state-dir", str(tmp_path / "cst"),
                                 "--instance", "c1"], stdout=out, stderr=subprocess.STDOUT)
    try:
        prom = prometheus([f"{HOST}:{prom_port}"])
        counts = wait_store(db, {"mem-a", "mem-b"})
        assert all(n >= 1 for n in counts.values())
        q = subprocess.run([str(QSTRATA), "query", "samples", "--store", f"sqlite:{db}", "--name",
                            "*memories_memory_occupancy", "--format", "json"], capture_output=True, text=True)
        assert q.returncode == 0, q.stderr
        assert {row["source"] for row in json.loads(q.stdout)} == {"mem-a", "mem-b"}

        result = prom.wait_for("qstrata_telemetry_memories_memory_occupancy",
                               lambda r: {x["metric"]["source"] for x in r} >= {"mem-a", "mem-b"})
        assert all("node" in x["metric"] and "memory_id" in x["metric"] for x in result)

        assert asyncio.run(nats_sources(nats_server.url, {"mem-a", "mem-b"})) == {"mem-a", "mem-b"}

        nb = asyncio.run(northbound(gnmi_port, tmp_path / "cst" / "credentials.json"))
        assert "qstrata-telemetry" in nb["models"]
        memories = nb["get"]["memory"] if "memory" in nb["get"] else nb["get"]["qstrata-telemetry:memory"]
        assert {m["agent"] for m in memories} == {"mem-a", "mem-b"}
        assert all("occupancy" in m and "last-update" in m for m in memories)
        sample_paths = leaves(nb["sample"], "agent")
        assert set(sample_paths.values()) == {"mem-a", "mem-b"}
        assert sum(r.sync_response for r in nb["sample"]) == 1 and len(nb["sample"]) >= 4  # samples go on
        states = leaves(nb["on_change"], "subscription-state")
        assert set(states.values()) == {"subscribed"} and len(states) == 2
        assert set(leaves(nb["once"], "agent").values()) == {"mem-a", "mem-b"} and nb["once"][-1].sync_response
        assert nb["set"] == grpc.StatusCode.UNIMPLEMENTED
    finally:
        stop_process(proc, 20)
    output = log.read_text()
    assert proc.returncode == 0, output
    assert "target mem-a: subscribed (PROTO)" in output and "target mem-b: subscribed (PROTO)" in output
    assert "Traceback" not in output
