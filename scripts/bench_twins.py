"""Cost of one world tick, and how many twin agents one process hosts at 1 s ticks.

Builds synthetic worlds of N QKD links (two QKD twins each, direct fibres of 10-60 km, sampled
noise on) plus 100 quantum memories (50 memory-node pairs with heralded links), measures the
median wall time of a tick (time.perf_counter_ns), derives the per-agent cost, and computes how
many agents fit in 10 % of one core at one tick per second. It then checks that figure by
hosting that many agents under the paced runner (`World.run`) for a few seconds and measuring
the process CPU time (time.process_time).

Usage: .venv/bin/python scripts/bench_twins.py [--ticks 15] [--verify-seconds 5]
Prints a table, then one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import statistics
import sys
import time
from typing import Any

from qstrata.agents.devices.base import ConfigTransaction
from qstrata.agents.devices.registry import create_for
from qstrata.agents.devices.topology import parse
from qstrata.agents.devices.world import NS, World

CPU_BUDGET = 0.10
TICK_S = 1.0


def topology(links: int, memory_pairs: int) -> dict[str, Any]:
    nodes, fibres = [], []
    for i in range(links):
        for side in ("a", "b"):
            nodes.append({"name": f"q{i}{side}", "kind": "qkd", "interfaces": [{"id": 1}]})
        fibres.append({"id": f"fq{i}", "length_km": 10 + i % 51, "attenuation_db_per_km": 0.2,
                       "a": {"device": f"q{i}a", "port": 1}, "b": {"device": f"q{i}b", "port": 1}})
    for i in range(memory_pairs):
        for side in ("a", "b"):
            nodes.append({"name": f"m{i}{side}", "kind": "memory",
                          "memories": [{"id": "m", "technology": "TRAPPED-ION", "capacity": 4}]})
    return {"name": f"bench-{links}", "nodes": nodes, "fibres": fibres}


def edit(driver, running: dict[str, Any], mutate) -> None:
    new = copy.deepcopy(running)
    mutate(new)
    txn = ConfigTransaction((), running, new)
    asyncio.run(driver.prepare(txn))
    asyncio.run(driver.commit(txn))


def build(links: int, memory_pairs: int, seed: int = 1) -> tuple[World, int]:
    world = World(parse(topology(links, memory_pairs)), seed=seed)
    agents = 0
    for i in range(links):
        link_id = world.derived_uuid("bench-link", str(i))
        for side, other in (("a", "b"), ("b", "a")):
            driver = create_for(world, f"q{i}{side}")
            running = asyncio.run(driver.start()).config
            remote = world.node_uuid(f"q{i}{other}")

            def add(config, link_id=link_id, remote=remote):
                config["etsi-qkd-sdn-node:qkd_node"]["qkd_links"] = {"qkd_link": [{
                    "qkdl_id": link_id, "qkdl_enable": True, "qkdl_local": {"qkdi_id": 1},
                    "qkdl_remote": {"qkdn_id": remote}, "qkdl_type": "etsi-qkd-node-types:PHYS"}]}

            edit(driver, running, add)
            agents += 1
    for i in range(memory_pairs):
        link_id = world.derived_uuid("bench-mem", str(i))
        for side, other in (("a", "b"), ("b", "a")):
            driver = create_for(world, f"m{i}{side}")
            running = asyncio.run(driver.start()).config
            remote = world.node_uuid(f"m{i}{other}")

            def add(config, link_id=link_id, remote=remote):
                config["qstrata-qfs:qfs-node"]["entanglement-links"] = {"link": [{
                    "link-id": link_id, "local-memory": "m", "remote-node": remote, "remote-memory": "m",
                    "generation-scheme": "qstrata-qfs:BARRETT-KOK", "length": "20.000",
                    "cutoff-time": str(2 * NS)}]}

            edit(driver, running, add)
            agents += 1
    world.run_for(15 * NS)  # past the 10 s re-lock: links ACTIVE, memories filling
    return world, agents


def tick_cost_ns(world: World, ticks: int) -> int:
    samples = []
    for _ in range(ticks):
        start = time.perf_counter_ns()
        world.advance(int(TICK_S * NS))
        samples.append(time.perf_counter_ns() - start)
    return int(statistics.median(samples))


async def paced_cpu_share(world: World, seconds: float) -> float:
    task = asyncio.create_task(world.run(int(TICK_S * NS)))
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return cpu / wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=15)
    parser.add_argument("--verify-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)

    rows = []
    for links in (10, 100, 1000):
        world, agents = build(links, memory_pairs=50)
        cost = tick_cost_ns(world, args.ticks)
        rows.append({"qkd_links": links, "memories": 100, "agents": agents, "tick_ms": cost / 1e6,
                     "per_agent_us": cost / agents / 1e3})
    per_agent_ns = rows[-1]["per_agent_us"] * 1e3
    capacity = int(CPU_BUDGET * TICK_S * NS / per_agent_ns)

    links = max(1, (capacity - 100) // 2)
    world, agents = build(links, memory_pairs=50)
    share = asyncio.run(paced_cpu_share(world, args.verify_seconds))

    print(f"{'QKD links':>10} {'memories':>9} {'agents':>7} {'tick (ms)':>10} {'per agent (us)':>15}")
    for row in rows:
        print(f"{row['qkd_links']:>10} {row['memories']:>9} {row['agents']:>7} "
              f"{row['tick_ms']:>10.2f} {row['per_agent_us']:>15.1f}")
    print(f"\nestimate: {capacity} agents per process at {TICK_S:g} s ticks within "
          f"{CPU_BUDGET:.0%} of one core")
    print(f"verified: {agents} agents under the paced runner for {args.verify_seconds:g} s used "
          f"{share:.1%} of one core")
    figures = {
        "tick_ms": {str(r["qkd_links"]): round(r["tick_ms"], 3) for r in rows},
        "per_agent_us": round(per_agent_ns / 1e3, 2),
        "agents_estimate": capacity,
        "verified_agents": agents,
        "verified_cpu_share": round(share, 4),
        "python": sys.version.split()[0],
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
