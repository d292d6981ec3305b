"""The Prometheus endpoint scraped by Debian's real prometheus: gnmic/Telegraf names with the
units Prometheus' conventions ask for, keys as labels and never as samples, counters vs gauges
from YANG, histograms, numbers only, values that do not change stay, series go stale only when
their target is down; a stalled scrape never blocks ingestion."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import time
import tracemalloc
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

from collector_servers import HOST
from qstrata.collectors.model import Alarm, TargetStatus, Update, alarm_id
from qstrata.collectors.outputs.prometheus import PrometheusOutput
from qstrata.collectors.pipeline import Pipeline

NODE = "82b81fe7-ec93-5286-bb8a-2941f6eeca1b"
LINK = "0000000a-0000-4000-8000-00000000000b"
ELINK = "0000000a-0000-4000-8000-0000000000e1"
QKDL = f"/etsi-qkd-sdn-node:qkd_node/qkd_links/qkd_link[qkdl_id='{LINK}']"
SKR = "qstrata_telemetry_qkd_links_qkd_link_secret_key_rate_bits_per_second"
ATTEMPTS = "qstrata_qfs_node_entanglement_links_link_attempts_total"


def twin_like_updates(ts: int) -> list[Update]:
    return [
        Update("alice", "/etsi-qkd-sdn-node:qkd_node/qkdn_id", NODE, ts),
        Update("alice", f"{QKDL}/qkdl_status", "etsi-qkd-node-types:ACTIVE", ts),
        Update("alice", f"{QKDL}/qkdl_performance/skr", 4389643, ts),
        Update("alice", f"{QKDL}/qkdl_performance/phys_perf[perf_type='etsi-qkd-node-types:QBER']/value", 0.0123, ts),
        Update("mem-a", f"/qstrata-qfs:qfs-node/entanglement-links/link[link-id='{ELINK}']/attempts", 15384, ts),
        Update("sw1", "/optical-switch:opm-power/port[port-id='9']/power", -25.0, ts),
    ]


@contextlib.asynccontextmanager
async def exposition(**pipeline_options: Any) -> AsyncIterator[tuple[PrometheusOutput, Pipeline]]:
    """A pipeline with only a Prometheus output on a free port, stopped even when a test fails."""
    out = PrometheusOutput(HOST, 0)
    pipeline = Pipeline([out], **pipeline_options)
    await pipeline.start()
    try:
        yield out, pipeline
    finally:
        await pipeline.stop()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def test_real_prometheus_reads_series_back(prometheus):
    async def main():
        async with exposition(instance="c1") as (out, pipeline):
            pipeline.ingest(twin_like_updates(time.time_ns()))  # once: the values never change after this
            prom = await asyncio.to_thread(prometheus, [f"{HOST}:{out.port}"])

            (skr,) = await asyncio.to_thread(prom.wait_for, SKR)
            assert skr["value"][1] == "4389643"
            assert {k: skr["metric"][k] for k in ("source", "node", "link_id")} == {"source": "alice", "node": NODE,
                                                                                      "link_id": LINK}
            (attempts,) = await asyncio.to_thread(prom.wait_for, ATTEMPTS)
            assert attempts["metric"]["link_id"] == ELINK and attempts["value"][1] == "15384"
            meta = await asyncio.to_thread(prom.api, "metadata")
            counter_meta = meta.get("qstrata_qfs_node_entanglement_links_link_attempts") or meta[ATTEMPTS]
            assert counter_meta[0]["type"] == "counter"
            assert meta[SKR][0]["type"] == "gauge"
            (power,) = await asyncio.to_thread(prom.query, 'qstrata_telemetry_switch_ports_switch_port_optical_power_dbm')
            assert power["metric"]["device"] == "sw1" and power["metric"]["port_id"] == "9" and power["value"][1] == "-25"
            assert await asyncio.to_thread(prom.query, "qstrata_telemetry_qkd_links_qkd_link_status") == []  # strings: no

            # A value that does not change is scraped every time (gnmic #370): 4 scrapes in 4.5 s.
            await asyncio.sleep(4.5)
            (count,) = await asyncio.to_thread(prom.query, f"count_over_time({SKR}[4s])")
            assert int(count["value"][1]) >= 3

            # Down: alice's series go stale (staleness marker: the instant query is empty at once),
            # others stay, and alice's reachable=0 is exported by the collector itself.
            pipeline.target_status(TargetStatus("alice", reachable=False, state="backoff", reason="refused"))
            await asyncio.to_thread(prom.wait_for, SKR, lambda r: r == [], 10)
            assert await asyncio.to_thread(prom.query, ATTEMPTS)
            (reach,) = await asyncio.to_thread(prom.wait_for, 'qstrata_telemetry_agents_agent_reachable{name="alice"}')
            assert reach["value"][1] == "0" and reach["metric"]["source"] == "c1"

            pipeline.target_status(TargetStatus("alice", reachable=True, state="subscribed"))
            (back,) = await asyncio.to_thread(prom.wait_for, SKR)
            assert back["value"][1] == "4389643"

    asyncio.run(main())


def test_deleted_leaf_leaves_the_exposition():
    async def main():
        async with exposition() as (out, pipeline):
            pipeline.ingest(twin_like_updates(1))
            text = await asyncio.to_thread(scrape, out.port)
            assert f'{SKR}{{link_id="{LINK}",node="{NODE}",source="alice"}} 4.389643e+06' in text
            assert "# TYPE qstrata_qfs_node_entanglement_links_link_attempts_total counter" in text
            pipeline.ingest([Update("alice", f"{QKDL}/qkdl_performance/skr", None, 2)])
            text = await asyncio.to_thread(scrape, out.port)
            assert SKR not in text and "qkd_link_qber" in text
            assert 'qstrata_collector_updates_ingested_total{source="collector"} 7.0' in text
            raised = Alarm(alarm_id("alice", "qber-high", QKDL), "alice", QKDL, "etsi-qkd-node-types:MAJOR", 3, None, "t",
                           "qber-high")
            pipeline.ingest_alarms([raised])
            text = await asyncio.to_thread(scrape, out.port)
            assert (f'qstrata_alarm_active{{alarm_id="{raised.alarm_id}",resource="{QKDL}",rule="qber-high",'
                    'severity="MAJOR",source="alice"} 1.0') in text.replace("\\'", "'")
            pipeline.ingest_alarms([Alarm(raised.alarm_id, "alice", QKDL, raised.severity, 3, 4, "t", "qber-high")])
            assert "qstrata_alarm_active{" not in await asyncio.to_thread(scrape, out.port)

    asyncio.run(main())


def test_names_carry_base_units_and_keys_are_never_samples():
    memory = "/qstrata-qfs:qfs-node/memories/memory[memory-id='m1']"
    port = "/optical-switch:opm-power/port[port-id='9']"
    iface = "/etsi-qkd-sdn-node:qkd_node/qkd_interfaces/qkd_interface[qkdi_id='7']"
    elink = "/qstrata-qfs:qfs-node/entanglement-links/link[link-id='l1']"

    async def main():
        async with exposition() as (out, pipeline):
            pipeline.ingest([*twin_like_updates(1),
                             Update("mem-a", f"{memory}/t1", 2_500_000_000, 1),  # nanoseconds
                             Update("mem-a", f"{memory}/efficiency", 0.4, 1),
                             Update("mem-a", f"{elink}/cutoff-time", 300_000_000, 1),  # nanoseconds
                             Update("mem-a", f"{elink}/switch-port/port", 7, 1),
                             Update("sw1", f"{port}/port-id", 9, 1), Update("alice", f"{iface}/qkdi_id", 7, 1),
                             Update("alice", f"{iface}/qkdi_att_point/port", 3, 1)])
            text = await asyncio.to_thread(scrape, out.port)
            assert 'qstrata_qfs_node_memories_memory_t1_seconds{memory_id="m1",source="mem-a"} 2.5' in text
            assert 'qstrata_qfs_node_memories_memory_efficiency_ratio{memory_id="m1",source="mem-a"} 0.4' in text
            assert "qstrata_telemetry_qkd_links_qkd_link_qber_ratio{" in text
            assert 'qstrata_telemetry_switch_ports_switch_port_optical_power_dbm{device="sw1",port_id="9",source="sw1"} -25.0' in text
            assert "port_port_id" not in text and "qkdi_id{" not in text  # keys are labels, never samples
            # divided, not multiplied by 1e-9 (0.30000000000000004)
            assert 'qstrata_qfs_node_entanglement_links_link_cutoff_time_seconds{link_id="l1",source="mem-a"} 0.3\n' in text
            assert "att_point_port" not in text and "switch_port_port" not in text  # a port number names a port

    asyncio.run(main())


def test_pairs_at_use_are_a_histogram():
    qfs_node = "11111111-2222-4333-8444-555555555555"
    pair = "/qstrata-qfs:qfs-node/memories/memory[memory-id='m1']/stored-pairs/pair[pair-id='p1']"
    s = 1_000_000_000

    async def main():
        async with exposition() as (out, pipeline):
            pipeline.ingest([Update("mem-a", "/qstrata-qfs:qfs-node/uuid", qfs_node, s),
                             Update("mem-a", f"{pair}/creation-time", "1970-01-01T00:00:01Z", s),
                             Update("mem-a", f"{pair}/fidelity", 0.92, 2 * s),
                             Update("mem-a", f"{pair}/expiry-time", "1970-01-01T00:00:09Z", 2 * s)])
            pipeline.ingest([Update("mem-a", pair, None, 3 * s)])
            text = await asyncio.to_thread(scrape, out.port)
            family = "qstrata_telemetry_memories_memory_pair_age_at_use_seconds"
            labels = f'memory_id="m1",node="{qfs_node}",source="mem-a"'
            assert f"# TYPE {family} histogram" in text
            assert f'{family}_bucket{{le="1.0",{labels}}} 1.0' in text
            assert f'{family}_bucket{{le="0.5",{labels}}} 0.0' in text
            assert f'{family}_bucket{{le="+Inf",{labels}}} 1.0' in text
            assert f"{family}_count{{{labels}}} 1.0" in text and f"{family}_sum{{{labels}}} 1.0" in text
            assert "# TYPE qstrata_telemetry_memories_memory_pair_fidelity_at_use_ratio histogram" in text
            assert "stored_pairs" not in text and "pair_id" not in text

    asyncio.run(main())


def test_stalled_scrapers_do_not_block_ingestion():
    async def main():
        async with exposition() as (out, pipeline):
            many = [Update("x", f"/vendor-x:box/sensor[id='{i}']/value", i, 1) for i in range(30_000)]
            pipeline.ingest(many)
            stalled = []
            for _ in range(4):  # ask for the (large) exposition and never read the answer
                sock = socket.create_connection((HOST, out.port))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                stalled.append(sock)
            half = socket.create_connection((HOST, out.port))  # and one that never finishes its request
            half.sendall(b"GET /metr")
            await asyncio.sleep(0.5)
            t0 = time.perf_counter()
            for k in range(10):
                pipeline.ingest([Update("x", f"/vendor-x:box/sensor[id='{i}']/value", k, 2 + k) for i in range(10_000)])
                await asyncio.sleep(0)
            elapsed = time.perf_counter() - t0
            text = await asyncio.to_thread(scrape, out.port)  # a normal scrape still gets through
            assert 'qstrata_box_sensor_value{id="9999",source="x"} 9.0' in text
            assert elapsed < 5.0, elapsed
            for sock in [*stalled, half]:
                sock.close()

    asyncio.run(main())


def test_exposition_is_streamed_not_built_whole():
    """A scrape of 50,000 series holds a chunk at a time (prometheus-client's generate_latest held
    a sample object per series, every line, the text and its bytes: several times the body);
    with gzip asked for, the same text compressed."""
    async def main():
        async with exposition() as (out, pipeline):
            pipeline.ingest([Update("x", f"/vendor-x:box/sensor[id='{i}']/value", i, 1) for i in range(50_000)])

            def read_in_chunks() -> int:
                size = 0
                with urllib.request.urlopen(f"http://{HOST}:{out.port}/metrics", timeout=30) as resp:
                    while chunk := resp.read(65536):
                        size += len(chunk)
                return size

            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                size = await asyncio.to_thread(read_in_chunks)
                peak = tracemalloc.get_traced_memory()[1] - before
            finally:
                tracemalloc.stop()
            assert size > 2_000_000 and peak < size, (size, peak)  # generate_latest: 2x the body at least

            request = urllib.request.Request(f"http://{HOST}:{out.port}/metrics", headers={"Accept-Encoding": "gzip"})
            zipped = await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=30).read())
            text = gzip.decompress(zipped).decode()
            assert len(zipped) < size / 4 and 'qstrata_box_sensor_value{id="49999",source="x"} 49999.0' in text
            assert text.count("# TYPE qstrata_box_sensor_value gauge") == 1 and text.count("\n") >= 50_000

    asyncio.run(main())
