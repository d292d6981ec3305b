#!/usr/bin/env python3
"""gNMI benchmark: how fast one agent streams telemetry, against a ceiling measured in the same run.

Rows (a `qstrata agent` process over TLS, a raw grpc.aio subscriber using gnmi-pb stubs):
- leaf updates/s at sample interval 0 (as fast as the subscriber reads) with ~100 and ~10,000
  leaves, next to a bare grpc.aio servicer in its own process, on the same event loop as the
  agent (uvloop), that streams the agent's first notification prebuilt over the same TLS: the
  ceiling; the ratio agent/ceiling is printed, and the agent's CPU time per response (which,
  unlike the rates, does not move with the other jobs on a shared machine);
- on-change latency p50/p99 from a NETCONF edit-config (lean asyncssh client, not ncclient) to
  the gNMI update;
- aggregate leaf updates/s with 100 concurrent subscribers;
- agent RSS before and after a subscriber that stalls for 20 s at sample interval 0.
pygnmi is not used: its own parsing costs more than the server (tests/gnmi covers it).
Ends with one JSON line of the figures.

Usage: .venv/bin/python scripts/bench_gnmi.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from bench_netconf import Client, edit_rpc, free_port, link_xml, rss_mb, wait_port  # noqa: E402
from qstrata.bindings.paths import gnmi_string_to_path  # noqa: E402

QKD = "/etsi-qkd-sdn-node:qkd_node"
QSTRATA = Path(sys.executable).with_name("qstrata")

CEILING = r'''
import asyncio, sys, grpc
from gnmi_pb import gnmi_pb2
payload = open(sys.argv[3], "rb").read()
async def main():
    server = grpc.aio.server()
    async def subscribe(requests, context):
        await anext(requests)
        while True:
            await context.write(payload)
    handler = grpc.method_handlers_generic_handler("gnmi.gNMI", {"Subscribe": grpc.stream_stream_rpc_method_handler(
        subscribe, request_deserializer=gnmi_pb2.SubscribeRequest.FromString, response_serializer=lambda b: b)})
    server.add_generic_rpc_handlers((handler,))
    creds = grpc.ssl_server_credentials([(open(sys.argv[2] + "/server.key", "rb").read(),
                                          open(sys.argv[2] + "/server.pem", "rb").read())])
    server.add_secure_port("127.0.0.1:" + sys.argv[1], creds)
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()
try:
    import uvloop; uvloop.run(main())
except ImportError:
    asyncio.run(main())
'''


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used (user + system): unlike rates, it does not move with what
    else the machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sub_request(path: str, mode: int = 2, interval: int = 0, encoding: int = 2) -> gnmi_pb2.SubscribeRequest:
    return gnmi_pb2.SubscribeRequest(subscribe=gnmi_pb2.SubscriptionList(
        mode=0, encoding=encoding,
        subscription=[gnmi_pb2.Subscription(path=gnmi_string_to_path(path), mode=mode, sample_interval=interval)]))


async def count_updates(channel, md, request, seconds: float) -> tuple[int, int]:
    """(leaf updates, responses) received in `seconds` after the first response."""
    stub = gnmi_pb2_grpc.gNMIStub(channel)
    call = stub.Subscribe(aiter_of(request), metadata=md)
    updates = responses = 0
    deadline = None
    async for response in call:
        if deadline is None:
            deadline = time.monotonic() + seconds
            continue
        updates += len(response.update.update)
        responses += 1
        if time.monotonic() >= deadline:
            break
    call.cancel()
    return updates, responses


async def aiter_of(*items):
    for item in items:
        yield item
    await asyncio.Event().wait()  # keep the request side open, as collectors do


async def on_change_latency(channel, md, netconf: Client, samples: int) -> list[float]:
    stub = gnmi_pb2_grpc.gNMIStub(channel)
    call = stub.Subscribe(aiter_of(sub_request(f"{QKD}/qkdn_location_id", mode=1, encoding=4)), metadata=md)
    arrivals: asyncio.Queue = asyncio.Queue()

    async def reader():
        async for response in call:
            if response.update.update:
                arrivals.put_nowait((time.perf_counter(), response))

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.5)
    while not arrivals.empty():
        arrivals.get_nowait()
    latencies = []
    for i in range(samples):
        value = f"rack-{i}"
        start = time.perf_counter()
        await netconf.call(f'<edit-config><target><running/></target><config><qkd_node xmlns="urn:etsi:qkd:yang:'
                           f'etsi-qkd-node"><qkdn_location_id>{value}</qkdn_location_id></qkd_node></config>'
                           f"</edit-config>")
        while True:
            arrived, response = await asyncio.wait_for(arrivals.get(), 5)
            if value.encode() in response.update.update[0].val.json_ietf_val:
                latencies.append((arrived - start) * 1000)
                break
        await asyncio.sleep(0.01)
    task.cancel()
    call.cancel()
    return latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 2 else max(values)


async def run(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-gnmi-"))
    nc_port, gnmi_port = free_port(), free_port()
    log = open(tmp / "agent.log", "wb")
    agent = subprocess.Popen([str(QSTRATA), "agent", "--kind", "qkd", "--name", "bench", "--no-twin",
                              "--state-dir", str(tmp / "agent"), "--netconf-port", str(nc_port),
                              "--gnmi-port", str(gnmi_port), "--max-sessions", "256", "--max-sessions-per-user", "200"], stdout=log, stderr=subprocess.STDOUT)
    procs = [agent]
    results: dict = {}
    try:
        wait_port(nc_port)
        wait_port(gnmi_port)
        creds = json.loads((tmp / "agent" / "credentials.json").read_text())
        md = [("username", creds["username"]), ("password", creds["password"])]
        tls = grpc.ssl_channel_credentials(Path(creds["ca"]).read_bytes())
        options = [("grpc.max_receive_message_length", 64 << 20)]
        netconf = await Client.connect(nc_port, username=creds["username"], password=creds["password"])
        seconds = 2.0 if args.quick else 5.0
        have = 0
        for wanted_leaves in (100, 10_000):
            links = max(1, wanted_leaves // 10)
            if links > have:
                for start in range(have, links, 500):
                    await netconf.call(edit_rpc("".join(link_xml(i) for i in range(start, min(links, start + 500)))))
                have = links
            path = f"{QKD}/qkd_links"
            async with grpc.aio.secure_channel(f"127.0.0.1:{gnmi_port}", tls, options=options) as ch:
                # the subscription's size: what one sample carries
                probe = gnmi_pb2_grpc.gNMIStub(ch).Subscribe(aiter_of(sub_request(path, interval=0)), metadata=md)
                first = await anext(aiter(probe))
                probe.cancel()
                leaves = len(first.update.update)
                cpu_before = cpu_seconds(agent.pid)
                updates, responses = await count_updates(ch, md, sub_request(path, interval=0), seconds)
                cpu_us = 1e6 * (cpu_seconds(agent.pid) - cpu_before) / max(responses, 1)
            agent_rate = updates / seconds
            # the ceiling: a bare servicer streaming this very notification
            payload_path = tmp / f"payload-{leaves}.bin"
            payload_path.write_bytes(first.SerializeToString())
            ceil_port = free_port()
            ceiling = subprocess.Popen([sys.executable, "-c", CEILING, str(ceil_port), str(tmp / "agent" / "gnmi"),
                                        str(payload_path)], stdout=subprocess.PIPE, text=True)
            procs.append(ceiling)
            ceiling.stdout.readline()
            async with grpc.aio.secure_channel(f"127.0.0.1:{ceil_port}", tls, options=options) as ch:
                c_updates, _ = await count_updates(ch, md, sub_request(path, interval=0), seconds)
            ceiling.terminate()
            ceiling_rate = c_updates / seconds
            results[f"sample0_{wanted_leaves}"] = {"leaves": leaves, "agent_updates_per_s": round(agent_rate),
                                                   "ceiling_updates_per_s": round(ceiling_rate),
                                                   "ratio": round(agent_rate / ceiling_rate, 3) if ceiling_rate else None,
                                                   "agent_cpu_us_per_response": round(cpu_us, 1),
                                                   "notifications_per_s": round(responses / seconds, 1)}
            print(f"sample interval 0, {leaves:6d} leaves: agent {agent_rate:10,.0f} leaf updates/s   "
                  f"ceiling {ceiling_rate:10,.0f}/s   ratio {agent_rate / ceiling_rate:5.2f}   "
                  f"agent CPU {cpu_us:,.1f} us/response", flush=True)
        # on-change latency: NETCONF edit-config -> gNMI update
        async with grpc.aio.secure_channel(f"127.0.0.1:{gnmi_port}", tls, options=options) as ch:
            lat = await on_change_latency(ch, md, netconf, 50 if args.quick else 200)
        results["on_change_ms"] = {"p50": round(pct(lat, 50), 2), "p99": round(pct(lat, 99), 2), "n": len(lat)}
        print(f"on-change latency (NETCONF edit-config -> gNMI update): p50 {pct(lat, 50):.2f} ms  "
              f"p99 {pct(lat, 99):.2f} ms  ({len(lat)} edits, {have} links in running)", flush=True)
        # 100 concurrent subscribers, 100 leaves each
        many = 20 if args.quick else 100
        async with grpc.aio.secure_channel(f"127.0.0.1:{gnmi_port}", tls, options=options) as ch:
            counts = await asyncio.gather(*(count_updates(ch, md, sub_request(f"{QKD}/qkdn_capabilities", interval=0),
                                                          seconds) for _ in range(many)))
        total = sum(c[0] for c in counts) / seconds
        results["concurrent"] = {"subscribers": many, "updates_per_s": round(total)}
        print(f"{many} concurrent subscribers: {total:,.0f} leaf updates/s in total", flush=True)
        # a stalled subscriber
        async with grpc.aio.secure_channel(f"127.0.0.1:{gnmi_port}", tls, options=options) as ch:
            stub = gnmi_pb2_grpc.gNMIStub(ch)
            call = stub.Subscribe(aiter_of(sub_request(f"{QKD}/qkd_links", interval=0)), metadata=md)
            await call.read()  # one response, then never read again
            before = rss_mb(agent.pid)
            await asyncio.sleep(5 if args.quick else 20)
            after = rss_mb(agent.pid)
            call.cancel()
        results["stalled_subscriber_rss_mb"] = {"before": before, "after": after}
        print(f"agent RSS with a stalled subscriber: {before:.1f} MB -> {after:.1f} MB", flush=True)
        await netconf.close()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows (a smoke run)")
    args = parser.parse_args()
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    results = asyncio.run(run(args))
    print(json.dumps({"bench": "gnmi", **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
