"""How big a network `qstrata up` can run in one process: start-up time, memory and idle CPU.

    .venv/bin/python scripts/bench_up.py [--agents 500] [--idle 30] [--collector] [--state-dir DIR]

Generates a topology of N agents in groups of five (two QKD nodes and two memory nodes patched
into one optical switch), starts it the way `qstrata up --bare --no-collector` does (one process,
NETCONF per agent, gNMI through the single-port gateway), checks that a few random agents answer
a NETCONF <get> and a gNMI Get, then lets the world tick at 1 s for `--idle` seconds and measures
this process's CPU time. Target: 500 agents < 1 GB RSS, < 25 % of one core when idle.

`--collector` runs `qstrata up --bare`'s built-in collector too: one gNMI subscription per agent
through the gateway (TARGET_DEFINED, 1 s samples), into SQLite; the start-up time then includes
every subscription's sync_response, and the idle figures include the collection.

Prints the figures, then one JSON line (for CI and the README).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import yaml
from qstrata.agents.testbed.network import Network, UpOptions
from qstrata.agents.testbed.status import StatusDisplay
from qstrata.collectors.config import read_credentials
from qstrata.collectors.netconf_client import NetconfEndpoint, NetconfSession


def generate(n: int, collector: bool = False) -> dict:
    """N agents: groups of (2 qkd, 1 switch, 2 memory) with their patch fibres; a last partial
    group keeps the count exact."""
    nodes, fibres = [], []
    kinds = ("qkd", "qkd", "switch", "memory", "memory")
    for i in range(n):
        g, k = divmod(i, 5)
        name = f"{('qa', 'qb', 'sw', 'ma', 'mb')[k]}{g}"
        node: dict = {"name": name, "kind": kinds[k]}
        if kinds[k] == "memory":
            node["memories"] = [{"id": "mem0", "technology": "NV-CENTRE", "capacity": 2}]
        if kinds[k] == "switch":
            node["ports"] = 8
        nodes.append(node)
    names = {n["name"] for n in nodes}
    for g in range((n + 4) // 5):
        for dev, port in ((f"qa{g}", 1), (f"qb{g}", 2), (f"ma{g}", 5), (f"mb{g}", 6)):
            if dev in names and f"sw{g}" in names:
                fibres.append({"id": f"f-{dev}", "length_km": 10, "a": {"device": dev, "port": 1},
                               "b": {"device": f"sw{g}", "port": port}})
    return {"name": f"bench-{n}", "seed": 1, "nodes": nodes, "fibres": fibres,
            "collector": {"prometheus_port": 0} if collector else False}


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def netconf_get(agent) -> int:
    user, password = read_credentials(agent.credentials)
    session = await NetconfSession.open(NetconfEndpoint(agent.host, agent.netconf_port, user, password))
    try:
        reply = await session.request("<get/>")
    finally:
        await session.close()
    return len(reply)


async def gnmi_get(agent) -> int:
    """A gNMI Get of the agent's whole tree through the gateway (prefix.target = agent name)."""
    import grpc
    from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc

    user, password = read_credentials(agent.credentials)
    address = f"{agent.host}:{agent.gnmi_port}"
    channel = (grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(Path(agent.gnmi_ca).read_bytes()))
               if agent.gnmi_ca else grpc.aio.insecure_channel(address))
    async with channel:
        stub = gnmi_pb2_grpc.gNMIStub(channel)
        request = gnmi_pb2.GetRequest(prefix=gnmi_pb2.Path(target=agent.name), path=[gnmi_pb2.Path()],
                                      encoding=gnmi_pb2.JSON_IETF)
        reply = await stub.Get(request, metadata=(("username", user), ("password", password)), timeout=30)
    return sum(len(n.update) for n in reply.notification)


async def all_synced(network: Network, timeout: float = 120.0) -> int:
    """Until every agent's gNMI session delivered its sync_response (or `timeout`); how many did."""
    sessions = network.collector.target_input.sessions
    deadline = time.monotonic() + timeout
    while True:
        synced = sum(1 for s in sessions.values() if s.synced)
        if synced == len(network.agents) or time.monotonic() > deadline:
            return synced
        await asyncio.sleep(0.1)


async def main(args: argparse.Namespace) -> dict:
    state = Path(args.state_dir or tempfile.mkdtemp(prefix="bench-up-"))
    topo = state / "topology.yaml"
    state.mkdir(parents=True, exist_ok=True)
    topo.write_text(yaml.safe_dump(generate(args.agents, args.collector), sort_keys=False))
    logging.basicConfig(filename=state / "bench.log", level=logging.INFO)
    display = StatusDisplay(tty=False)
    display.quiet = True
    rss0, _ = rss_mb()
    t0 = time.monotonic()
    network = Network(UpOptions(topology=topo, state_dir=state, bare=True, collector=args.collector), display)
    await network.start()
    agents_up = time.monotonic() - t0
    synced = await all_synced(network) if args.collector else 0
    startup = time.monotonic() - t0
    if args.collector:
        print(f"collector: {synced}/{len(network.agents)} gNMI subscriptions synced {startup - agents_up:.1f} s "
              f"after the agents were up")
    rss_up, _ = rss_mb()
    print(f"{len(network.agents)} agents started in {startup:.1f} s; RSS {rss_up:.0f} MB (before start {rss0:.0f} MB)")
    sample = random.Random(1).sample(network.agents, min(3, len(network.agents)))
    nc = [await netconf_get(a) for a in sample]
    gn = [await gnmi_get(a) for a in sample if a.gnmi_port]
    print(f"NETCONF <get> answered by {', '.join(a.name for a in sample)} ({nc}); "
          f"gNMI Get through the gateway ({gn})")
    await asyncio.sleep(3)  # let the sessions' teardown settle before measuring idle
    c0, w0 = cpu_s(), time.monotonic()
    await asyncio.sleep(args.idle)
    idle = (cpu_s() - c0) / (time.monotonic() - w0) * 100
    rss_idle, peak = rss_mb()
    if args.collector:  # before stop: stopping forgets the targets' series
        h = network.collector.health()
        print(f"collector: {h['ingested']} updates ingested, {h['series']} series")
    print(f"idle over {args.idle:g} s at 1 s ticks: {idle:.1f} % of one core; RSS {rss_idle:.0f} MB (peak {peak:.0f} MB)")
    t1 = time.monotonic()
    await network.stop()
    print(f"stopped in {time.monotonic() - t1:.1f} s")
    ok = rss_idle < 1024 and idle < 25
    print("target (< 1 GB RSS, < 25 % of a core idle): " + ("met" if ok else "NOT met"))
    return {"bench": "up", "agents": len(network.agents), "startup_s": round(startup, 2), "rss_mb": round(rss_idle),
            "peak_rss_mb": round(peak), "idle_cpu_pct": round(idle, 1), "netconf_ok": len(nc), "gnmi_ok": len(gn),
            "collector": bool(args.collector), "subscriptions_synced": synced, "target_met": ok}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle measurement")
    parser.add_argument("--collector", action="store_true", help="also run the built-in collector (gNMI input)")
    parser.add_argument("--state-dir", help="default: a fresh temporary directory (cold start: keys generated)")
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result))
    sys.exit(0)
