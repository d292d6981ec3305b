"""Cost of one world tick, how many twin agents one process hosts at 1 s ticks, and the
finite-key figures of the QKD twin.

Builds synthetic worlds of N QKD links (two QKD twins each, direct fibres of 10-60 km, sampled
noise on) plus 100 quantum memories (50 memory-node pairs with heralded links), measures the
median wall time of a tick (time.perf_counter_ns), derives the per-agent cost, and computes how
many agents fit in 10 % of one core at one tick per second. It then checks that figure by
hosting that many agents under the paced runner (`World.run`) for a few seconds and measuring
the process CPU time (time.process_time).

Finite key (physics/finite_key.py, Lim et al. 2014): the finite-key / asymptotic rate at 0-40 dB
for blocks of 1e4, 1e6 and 1e8 bits (the modern set tuned per block size, as in
scripts/plot_finite_key.py); the largest ratio of the reported rate to the asymptotic bound over
1,000 blocks of the stochastic twin at 30 dB (must be <= 1; the weak+vacuum estimator the twin
used before, fed each second's sampled gains, for contrast); and the longest stretch the world's
sliced tick (`World.advance_sliced`, 2 ms slices) keeps the event loop with 1,000 links.

Entangled states (pair_service.py): ENTANGLED-STATE units delivered per simulated minute on the
built-in network (agents/devices/topologies/network.yaml: its memory nodes, switch and plan, its
`entanglement_apps` asking mem-a for pairs to mem-b and, swapped at mem-b, to mem-c), with the
fidelity of the pairs at delivery; and the sliced tick with 1,000 QKD links, 1,000 entanglement
links (500 repeater chains) and 1,000 live units (a unit that got its pair is replaced by a new one
between ticks, outside the timing): stretches without the event loop, and the whole tick.

Eavesdropper (physics/intercept_resend.py): the stochastic twin on 25 km (5 dB) with an
intercept-resend eavesdropper attacking 0-100 % of the pulses: the mean reported QBER against
e_d + f (1/4 - e_d/2) and the finite-key threshold, and the key stored against the key discarded.

With `--baseline DIR` (another checkout with its own .venv, e.g. a worktree of main), the sliced
tick with 1,000 units is measured again `--rounds` times in a fresh process of each tree,
alternately (the machine is shared: its load drifts), and printed side by side.

Usage: .venv/bin/python scripts/bench_twins.py [--ticks 15] [--verify-seconds 5] [--samples 1000]
       [--eavesdropper-seconds 30] [--pair-minutes 10] [--baseline DIR [--rounds 3]]
Prints tables, then one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import functools
import gc
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from qstrata.agents.devices import entanglement, qkd_link
from qstrata.agents.devices.base import ConfigTransaction
from qstrata.agents.devices.physics import finite_key, intercept_resend, qkd
from qstrata.agents.devices.registry import create_for
from qstrata.agents.devices.topology import parse, read
from qstrata.agents.devices.world import NS, TICK_SLICE_S, World
from qstrata.agents.testbed.network import NETWORK_TOPOLOGY
from qstrata.agents.testbed.plan import plan_of
from qstrata.bindings.schema import get_schema
from qstrata.bindings.tree import DataTree

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot_finite_key import BLOCKS, ratios, settings  # noqa: E402

CPU_BUDGET = 0.10
TICK_S = 1.0
LOSSES_DB = (0, 10, 20, 30, 40)
SAMPLED_LOSS_DB = 30.0
EAVESDROPPED_LOSS_DB = 5.0
FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)


def topology(links: int, memory_pairs: int, chains: int = 0) -> dict[str, Any]:
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
    for i in range(chains):
        for side in ("a", "r", "b"):
            nodes.append({"name": f"c{i}{side}", "kind": "memory", "urn": f"urn:bench:c{i}{side}",
                          "memories": [{"id": "m", "technology": "NV-CENTRE", "capacity": 4}]})
    return {"name": f"bench-{links}", "nodes": nodes, "fibres": fibres}


def start(driver) -> tuple[dict[str, Any], Any]:
    """Start a twin: (its running configuration, the schema of its modules)."""
    inventory = asyncio.run(driver.start())
    return inventory.config, get_schema(tuple(inventory.modules))


def edit(driver, running: dict[str, Any], schema, mutate) -> None:
    """Commit `mutate(running)` with the change list a datastore would compute (twins work from
    the change list: an empty one changes nothing)."""
    new = copy.deepcopy(running)
    mutate(new)
    old_tree, new_tree = (DataTree.from_python(t, schema=schema, validate=False) for t in (running, new))
    txn = ConfigTransaction(tuple(old_tree.diff(new_tree)), running, new)
    asyncio.run(driver.prepare(txn))
    asyncio.run(driver.commit(txn))


class Twin:
    """A twin and the running configuration a datastore would keep for it."""

    def __init__(self, world: World, name: str) -> None:
        self.driver = create_for(world, name)
        self.running, self.schema = start(self.driver)

    def edit(self, mutate) -> None:
        new = copy.deepcopy(self.running)
        mutate(new)
        edit(self.driver, self.running, self.schema, lambda config: config.update(new))
        self.running = new


def elink(link_id: str, memory: str, remote: str, remote_memory: str, **channel: Any) -> dict[str, Any]:
    return {"link-id": link_id, "local-memory": memory, "remote-node": remote, "remote-memory": remote_memory,
            "generation-scheme": "qstrata-qfs:BARRETT-KOK", **channel}


def set_elinks(*links: dict[str, Any]):
    def mutate(config: dict[str, Any]) -> None:
        config["qstrata-qfs:qfs-node"]["entanglement-links"] = {"link": list(links)}
    return mutate


def unit_entry(unit_id: str, destination_urn: str, pairs: int, fidelity: float, valid_until: int) -> dict[str, Any]:
    return {"unit-id": unit_id, "kind": "qstrata-ss:ENTANGLED-STATE",
            "source-urn": f"urn:bench:app?=nonce={unit_id}", "destination-urn": f"{destination_urn}:app?=nonce={unit_id}",
            "lifecycle-urn": f"urn:bench:lifecycle?=size={pairs}&valid-until={valid_until}&fidelity={fidelity:g}"}


def build(links: int, memory_pairs: int, seed: int = 1, chains: int = 0) -> tuple[World, int]:
    world = World(parse(topology(links, memory_pairs, chains)), seed=seed)

    def qkd_link(config: dict, link_id: str, remote: str) -> None:
        config["etsi-qkd-sdn-node:qkd_node"]["qkd_links"] = {"qkd_link": [{
            "qkdl_id": link_id, "qkdl_enable": True, "qkdl_local": {"qkdi_id": 1},
            "qkdl_remote": {"qkdn_id": remote}, "qkdl_type": "etsi-qkd-node-types:PHYS"}]}

    def entanglement_link(config: dict, link_id: str, remote: str) -> None:
        config["qstrata-qfs:qfs-node"]["entanglement-links"] = {"link": [{
            "link-id": link_id, "local-memory": "m", "remote-node": remote, "remote-memory": "m",
            "generation-scheme": "qstrata-qfs:BARRETT-KOK", "length": "20.000",
            "cutoff-time": str(2 * NS)}]}

    agents = 0
    for count, prefix, name, configure in ((links, "q", "bench-link", qkd_link),
                                           (memory_pairs, "m", "bench-mem", entanglement_link)):
        for i in range(count):
            link_id = world.derived_uuid(name, str(i))
            for side, other in (("a", "b"), ("b", "a")):
                driver = create_for(world, f"{prefix}{i}{side}")
                running, schema = start(driver)
                remote = world.node_uuid(f"{prefix}{i}{other}")
                edit(driver, running, schema, functools.partial(configure, link_id=link_id, remote=remote))
                agents += 1
    for i in range(chains):
        twins = {side: Twin(world, f"c{i}{side}") for side in ("a", "r", "b")}
        uid = {side: world.node_uuid(f"c{i}{side}") for side in twins}
        left, right = world.derived_uuid("bench-chain", str(i), "l"), world.derived_uuid("bench-chain", str(i), "r")
        fibre = {"length": "5.000", "cutoff-time": str(300_000_000)}
        twins["a"].edit(set_elinks(elink(left, "m", uid["r"], "m", **fibre)))
        twins["r"].edit(set_elinks(elink(left, "m", uid["a"], "m", **fibre), elink(right, "m", uid["b"], "m", **fibre)))
        twins["b"].edit(set_elinks(elink(right, "m", uid["r"], "m", **fibre)))
        agents += 3
    world.run_for(14 * NS)  # past the 10 s re-lock: links ACTIVE, memories filling
    # One live tick, as an agent's clock (World.run) makes it: the first after the links were
    # configured, after which the clock settles the garbage collector (devices/twin_gc.py).
    asyncio.run(world.advance_sliced(NS))
    world.settle_garbage()
    return world, agents


def keep_units(world: World, chains: int, per_chain: int, serial: list[int]) -> int:
    """Give every chain's source `per_chain` live units towards its far end (a unit that ended is
    replaced): the service's own commit, as a datastore's would call it. Returns units replaced."""
    replaced = 0
    valid_until = world.unix_ns() // NS + 3600
    for i in range(chains):
        service = world.hosted[f"c{i}a"].service
        ended = [u for u, unit in service.units.items() if unit.state in ("ready", "failed", "expired")]
        delta: dict[str, Any] = dict.fromkeys(ended)
        for _ in range(per_chain - (len(service.units) - len(ended))):
            serial[0] += 1
            unit_id = world.derived_uuid("bench-unit", str(serial[0]))
            delta[unit_id] = unit_entry(unit_id, f"urn:bench:c{i}b", 1, 0.6, valid_until)
        service.commit(delta)
        replaced += len(ended)
    return replaced


async def unit_slices(world: World, chains: int, per_chain: int, ticks: int) -> dict[str, Any]:
    """The sliced tick with `chains * per_chain` live units: stretches without the event loop,
    the median whole tick (wall), and the pairs delivered per tick."""
    serial = [0]
    keep_units(world, chains, per_chain, serial)
    stretches: dict[str, list[float]] = {"wall": [], "cpu": []}
    tick_ms, delivered = [], 0
    collections: list[tuple[float, int]] = []
    began_gc = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began_gc[0] = time.thread_time()
        else:
            collections.append(((time.thread_time() - began_gc[0]) * 1e3, info["generation"]))

    gc.callbacks.append(timed)
    for _ in range(ticks):
        began = time.perf_counter()
        figures = await longest_slice_ms(world, 1, raw=True)
        tick_ms.append((time.perf_counter() - began) * 1e3)
        for name in stretches:
            stretches[name] += figures[name]
        delivered += keep_units(world, chains, per_chain, serial)
    gc.callbacks.remove(timed)
    live = sum(len(world.hosted[f"c{i}a"].service.units) for i in range(chains))
    out: dict[str, Any] = {"units": live, "entanglement_links": len(entanglement.fabric(world).links),
                           "tick_ms_median": round(statistics.median(tick_ms), 1),
                           "units_done_per_tick": round(delivered / ticks, 1),
                           "gc_collections": len(collections),
                           "gc_max_ms": round(max((c[0] for c in collections), default=0.0), 2),
                           "gc_full": sum(1 for c in collections if c[1] == 2)}
    for name, gaps in stretches.items():
        out.update(percentiles(name, gaps))
    return out


def builtin_pairs(minutes: float) -> dict[str, Any]:
    """The built-in network's memory nodes, switch and entanglement applications, twin-level at 1 s
    ticks (as `qstrata up` ticks), noise on: units requested every `every_s`, used (deleted) once
    ready; per application, units delivered per minute and the fidelity of their pairs."""
    doc = read(NETWORK_TOPOLOGY)
    world = World.from_yaml(NETWORK_TOPOLOGY)
    plan = plan_of(doc, world.topology, str(NETWORK_TOPOLOGY))[0].controller
    names = [n.name for n in world.topology.nodes.values() if n.kind in ("memory", "switch")]
    twins = {n: Twin(world, n) for n in names}
    for sw in {xc.switch for xc in plan.cross_connects}:
        pairs = [{"ingress": xc.ingress, "egress": xc.egress} for xc in plan.cross_connects if xc.switch == sw]
        twins[sw].edit(lambda config, pairs=pairs: config.update({"optical-switch:cross-connects": {"pair": pairs}}))
    links: dict[str, list[dict[str, Any]]] = {}
    for link in plan.entanglement_links:
        for end, far in ((link.a, link.b), (link.b, link.a)):
            channel: dict[str, Any] = {"switch-port": {"device": end.switch, "port": end.port}} if end.switch else {}
            if link.cutoff_ms:
                channel["cutoff-time"] = str(int(link.cutoff_ms * 1_000_000))
            links.setdefault(end.node, []).append(elink(link.id, end.memory, world.node_uuid(far.node), far.memory,
                                                        **channel))
    for node, entries in links.items():
        twins[node].edit(set_elinks(*entries))
    stats = [{"app": f"{a.source} -> {a.destination}", "asked": a.fidelity, "units": 0, "fidelities": [], "ttfp": [],
              "failed": {}, "next": 0.0, "open": None} for a in plan.entanglement_apps]
    world.run_for(5 * NS)
    start_s = world.now_ns / NS
    while world.now_ns / NS - start_s < minutes * 60:
        now_s = world.now_ns / NS - start_s
        for app, st in zip(plan.entanglement_apps, stats, strict=True):
            service = twins[app.source].driver.service
            unit = service.units.get(st["open"] or "")
            if unit is not None and unit.state in ("ready", "failed", "expired"):
                if unit.state == "ready":
                    st["units"] += 1
                    st["fidelities"] += [d.fidelity for d in unit.deliveries]
                    st["ttfp"].append((unit.deliveries[0].at_ns - unit.created_ns) / NS)
                else:
                    st["failed"][unit.error] = st["failed"].get(unit.error, 0) + 1
                service.commit({unit.unit_id: None})
                st["open"] = None
            if st["open"] is None and now_s >= st["next"]:
                st["open"] = world.derived_uuid("bench-pairs", st["app"], str(now_s))
                service.commit({st["open"]: unit_entry(st["open"], app.destination_urn, app.pairs, app.fidelity,
                                                       world.unix_ns() // NS + int(app.valid_s))})
                st["next"] = now_s + app.every_s
        world.advance(NS)
    rows = []
    for st in stats:
        f = st["fidelities"]
        rows.append({"app": st["app"], "asked": st["asked"], "units_per_minute": round(st["units"] / minutes, 2),
                     "fidelity_mean": round(statistics.fmean(f), 4) if f else None,
                     "fidelity_min": round(min(f), 4) if f else None,
                     "first_pair_s_mean": round(statistics.fmean(st["ttfp"]), 2) if st["ttfp"] else None,
                     "failed": st["failed"]})
    return {"minutes": minutes, "apps": rows}


def link_world(loss_db: float, seed: int, **qkd_options: Any) -> tuple[World, qkd_link.QkdLinkSession]:
    """One link over a fibre of `loss_db` (0.2 dB/km), sampled noise on, locked."""
    nodes = [{"name": n, "kind": "qkd", "interfaces": [{"id": 1}], **qkd_options} for n in ("a", "b")]
    world = World(parse({"name": "one-link", "nodes": nodes, "fibres": [{
        "id": "f", "length_km": loss_db / 0.2, "attenuation_db_per_km": 0.2,
        "a": {"device": "a", "port": 1}, "b": {"device": "b", "port": 1}}]}), seed=seed)
    link_id = world.derived_uuid("bench-finite", str(seed))
    for side, other in (("a", "b"), ("b", "a")):
        driver = create_for(world, side)
        running, schema = start(driver)
        remote = world.node_uuid(other)

        def add(config, remote=remote):
            config["etsi-qkd-sdn-node:qkd_node"]["qkd_links"] = {"qkd_link": [{
                "qkdl_id": link_id, "qkdl_enable": True, "qkdl_local": {"qkdi_id": 1},
                "qkdl_remote": {"qkdn_id": remote}, "qkdl_type": "etsi-qkd-node-types:PHYS"}]}

        edit(driver, running, schema, add)
    world.run_for(11 * NS)
    return world, qkd_link.sessions(world)[link_id]


def sampled_ratios(samples: int) -> dict[str, Any]:
    """The stochastic finite-key twin at 30 dB, one sample per block (a tick as long as a block):
    reported skr / asymptotic rate of the block's own detections, and / the nominal ideal-decoy
    rate of the link; then the weak+vacuum estimator at 1 s ticks against its own ideal-decoy
    bound (the issue's 23,678 b/s against 21,006 b/s)."""
    block_s = finite_key.finite_rate(qkd.MODERN, SAMPLED_LOSS_DB).seconds
    world, session = link_world(SAMPLED_LOSS_DB, seed=30)
    nominal = finite_key.ideal_rate(qkd.MODERN, SAMPLED_LOSS_DB)
    world.run_for(int(block_s * NS))
    own, against_nominal, rates = [], [], []
    for _ in range(samples):
        world.advance(int(block_s * NS))
        m = session.measurement
        rates.append(m.skr)
        own.append(m.skr / m.asymptotic_skr if m.asymptotic_skr else 0.0)
        against_nominal.append(m.skr / nominal)
    capped = session.blocks.capped if session.blocks else 0
    world, session = link_world(SAMPLED_LOSS_DB, seed=31, estimator="weak+vacuum")
    old_nominal = qkd.asymptotic(qkd.MODERN, SAMPLED_LOSS_DB).key_rate
    old = []
    for _ in range(samples):
        world.advance(NS)
        old.append(session.measurement.skr / old_nominal)
    return {
        "block_s": round(block_s, 1),
        "mean_skr": round(statistics.fmean(rates)),
        "nominal_asymptotic": round(nominal),
        "max_ratio_own_block": round(max(own), 4),
        "max_ratio_nominal": round(max(against_nominal), 4),
        "capped_blocks": capped,
        "weak_vacuum_max_ratio": round(max(old), 4),
        "weak_vacuum_above": sum(r > 1 for r in old),
    }


def percentiles(name: str, gaps: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of stretches in seconds, as `{name}_p50` ... in ms."""
    gaps = sorted(gaps)
    figures = {f"{name}_{q}": round(gaps[int(int(q[1:]) / 100 * (len(gaps) - 1))] * 1e3, 3) for q in ("p50", "p95", "p99")}
    figures[f"{name}_max"] = round(gaps[-1] * 1e3, 3)
    return figures


def eavesdropped(seconds: int) -> dict[str, Any]:
    """The stochastic twin at `EAVESDROPPED_LOSS_DB` with each of `FRACTIONS` attacked for
    `seconds` (after a tick to let the attack in): mean reported QBER, the formula's, key bits
    stored and discarded, blocks discarded; and the bound's threshold."""
    world, session = link_world(EAVESDROPPED_LOSS_DB, seed=20)
    p, rows = session.params, []
    for fraction in FRACTIONS:
        world.plant.set_eavesdropper("f", fraction)
        world.advance(NS)  # the block she shares with the previous setting
        stored, discarded, blocks = session.store.produced_bits, session.store.discarded_bits, \
            session.store.discarded_blocks
        qbers = []
        for _ in range(seconds):
            world.advance(NS)
            qbers.append(session.measurement.qber)
        rows.append({
            "fraction": fraction,
            "qber": round(statistics.fmean(qbers), 5),
            "qber_formula": round(intercept_resend.signal_qber(p, EAVESDROPPED_LOSS_DB, fraction), 5),
            "finite_key_bps_formula": round(intercept_resend.finite_rate(p, EAVESDROPPED_LOSS_DB, fraction).rate),
            "stored_bits": round(session.store.produced_bits - stored),
            "discarded_bits": round(session.store.discarded_bits - discarded),
            "discarded_blocks": session.store.discarded_blocks - blocks,
            "status": session.status,
        })
    threshold = intercept_resend.threshold(p, EAVESDROPPED_LOSS_DB)
    return {"loss_db": EAVESDROPPED_LOSS_DB, "seconds": seconds, "threshold": round(threshold, 4),
            "qber_at_threshold": round(intercept_resend.signal_qber(p, EAVESDROPPED_LOSS_DB, threshold), 4),
            "rows": rows}


async def longest_slice_ms(world: World, ticks: int, raw: bool = False) -> dict[str, Any]:
    """The longest and 99th-percentile stretch, in ms, between two turns of the event loop while
    the world advances sliced (how long a NETCONF or gNMI session may wait for the tick): on the
    wall clock, and in this thread's CPU time (what the tick's own work takes, without the time
    the process waited for a core on a busy machine)."""
    wall: list[float] = []
    cpu: list[float] = []
    done = False

    async def watch() -> None:
        last_wall, last_cpu = time.perf_counter(), time.thread_time()
        while not done:
            await asyncio.sleep(0)
            now_wall, now_cpu = time.perf_counter(), time.thread_time()
            wall.append(now_wall - last_wall)
            cpu.append(now_cpu - last_cpu)
            last_wall, last_cpu = now_wall, now_cpu

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    for _ in range(ticks):
        await world.advance_sliced(int(TICK_S * NS))
    done = True
    await watcher
    if raw:
        return {"wall": wall, "cpu": cpu}
    return {**percentiles("wall", wall), **percentiles("cpu", cpu)}


def link_tick_us(world: World, ticks: int) -> float:
    """Median CPU time of one QKD link session's tick (sampling, block bookkeeping, bounds), in us:
    the unit of work the sliced tick schedules between two turns of the event loop."""
    sessions = list(qkd_link.sessions(world).values())
    spent: list[float] = []

    def timed(session: qkd_link.QkdLinkSession):
        original = session.on_tick

        def on_tick(now_ns: int, dt_ns: int) -> None:
            start = time.thread_time()
            original(now_ns, dt_ns)
            spent.append(time.thread_time() - start)
        return on_tick

    for session in sessions:
        session.on_tick = timed(session)
    try:
        for _ in range(ticks):
            world.advance(int(TICK_S * NS))
    finally:
        for session in sessions:
            del session.on_tick
    return statistics.median(spent) * 1e6


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


UNITS_RUN = """
import asyncio, json, sys, time
sys.path.insert(0, "scripts")
import bench_twins as b
world, _ = b.build(1000, memory_pairs=0, chains=500)
cpu = time.process_time()
units = asyncio.run(b.unit_slices(world, 500, 2, {ticks}))
units["cpu_s"] = round(time.process_time() - cpu, 2)
print(json.dumps(units))
"""


def units_run(tree: Path, ticks: int) -> dict[str, Any]:
    """The sliced tick with 1,000 units in a fresh process of `tree` (its .venv, its code)."""
    done = subprocess.run([str(tree / ".venv/bin/python"), "-c", UNITS_RUN.format(ticks=ticks)], cwd=tree,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_units(baseline: Path, rounds: int, ticks: int) -> dict[str, list[dict[str, Any]]]:
    """This tree against `baseline`, alternately, `rounds` times each; printed side by side."""
    here = Path(__file__).resolve().parent.parent
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "this": []}
    for _ in range(rounds):
        runs["baseline"].append(units_run(baseline.resolve(), ticks))
        runs["this"].append(units_run(here, ticks))
    print(f"\nsliced tick with 1,000 units, {baseline} (baseline) against this tree, alternately, {ticks} ticks each:")
    print(f"{'tree':>9} {'CPU p50':>8} {'p95':>6} {'p99':>6} {'max':>7} {'GC max':>7} {'full':>5} {'tick ms':>8} "
          f"{'CPU s':>6}  (stretches without the event loop, ms of CPU)")
    for name, row in ((name, row) for name, rows in runs.items() for row in rows):
        print(f"{name:>9} {row['cpu_p50']:>8.2f} {row['cpu_p95']:>6.2f} {row['cpu_p99']:>6.2f} {row['cpu_max']:>7.2f} "
              f"{row['gc_max_ms']:>7.2f} {row['gc_full']:>5} {row['tick_ms_median']:>8.1f} {row['cpu_s']:>6.2f}")
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=15)
    parser.add_argument("--verify-seconds", type=float, default=5.0)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--eavesdropper-seconds", type=int, default=30)
    parser.add_argument("--pair-minutes", type=float, default=10.0)
    parser.add_argument("--baseline", type=Path, help="another checkout to compare the sliced tick with units")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.baseline is not None and not (args.baseline / ".venv/bin/python").exists():
        parser.error(f"--baseline {args.baseline}: no .venv/bin/python there")

    rows = []
    for links in (10, 100, 1000):
        world, agents = build(links, memory_pairs=50)
        cost = tick_cost_ns(world, args.ticks)
        rows.append({"qkd_links": links, "memories": 100, "agents": agents, "tick_ms": cost / 1e6,
                     "per_agent_us": cost / agents / 1e3})
    slices = asyncio.run(longest_slice_ms(world, args.ticks))
    link_us = link_tick_us(world, args.ticks)
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
    print(f"sliced tick, 1,000 links, slices of {TICK_SLICE_S * 1e3:g} ms: stretches without the event loop "
          f"p50/p95/p99/max {slices['cpu_p50']:.2f}/{slices['cpu_p95']:.2f}/{slices['cpu_p99']:.2f}/"
          f"{slices['cpu_max']:.2f} ms of CPU, {slices['wall_p50']:.2f}/{slices['wall_p95']:.2f}/"
          f"{slices['wall_p99']:.2f}/{slices['wall_max']:.2f} ms of wall time; one link's tick {link_us:.0f} us "
          "of CPU (median)")

    tuned = settings()
    table = {n_x: ratios(params) for n_x, params in tuned.items()}
    print("\nfinite-key rate / asymptotic rate (modern set, q_x and p tuned per block size at 20 dB)")
    print(f"{'n_X':>6} {'q_x':>5} {'p_mu':>5} {'p_nu':>5} " + " ".join(f"{f'{d} dB':>7}" for d in LOSSES_DB))
    for n_x, params in tuned.items():
        print(f"{n_x:>6.0e} {params.q_x:>5.2f} {params.p_mu:>5.2f} {params.p_nu:>5.2f} "
              + " ".join(f"{r:>7.3f}" for r in table[n_x]))
    sampled = sampled_ratios(args.samples)
    print(f"\nstochastic twin at {SAMPLED_LOSS_DB:g} dB, {args.samples} blocks of 1e7 bits "
          f"({sampled['block_s']} s each): mean skr {sampled['mean_skr']} b/s; largest skr / asymptotic "
          f"rate of the same block {sampled['max_ratio_own_block']}, / nominal asymptotic "
          f"{sampled['nominal_asymptotic']} b/s {sampled['max_ratio_nominal']} (blocks capped: "
          f"{sampled['capped_blocks']})")
    print(f"weak+vacuum estimator (before), {args.samples} one-second samples: largest skr / ideal-decoy "
          f"bound {sampled['weak_vacuum_max_ratio']}, {sampled['weak_vacuum_above']} samples above it")
    eve = eavesdropped(args.eavesdropper_seconds)
    print(f"\nintercept-resend eavesdropper, stochastic twin at {eve['loss_db']:g} dB, {eve['seconds']} s per "
          f"fraction; the finite-key bound leaves no key above {eve['threshold']:.4f} of the pulses attacked "
          f"(QBER {eve['qber_at_threshold']:.4f})")
    print(f"{'attacked':>8} {'QBER':>8} {'formula':>8} {'bound b/s':>10} {'stored b':>10} {'discarded b':>12} "
          f"{'blocks':>6} status")
    for row in eve["rows"]:
        print(f"{row['fraction']:>8.2f} {row['qber']:>8.4f} {row['qber_formula']:>8.4f} "
              f"{row['finite_key_bps_formula']:>10} {row['stored_bits']:>10} {row['discarded_bits']:>12} "
              f"{row['discarded_blocks']:>6} {row['status']}")
    pairs = builtin_pairs(args.pair_minutes)
    print(f"\nentangled-state units on the built-in network, {pairs['minutes']:g} simulated minutes at 1 s ticks:")
    print(f"{'application':>16} {'asked':>6} {'units/min':>10} {'F mean':>7} {'F min':>7} {'1st pair':>9}  failed")
    for row in pairs["apps"]:
        print(f"{row['app']:>16} {row['asked']:>6.2f} {row['units_per_minute']:>10.2f} "
              f"{row['fidelity_mean'] or 0:>7.4f} {row['fidelity_min'] or 0:>7.4f} "
              f"{row['first_pair_s_mean'] or 0:>7.2f} s  {row['failed'] or 'none'}")
    world, _ = build(1000, memory_pairs=0, chains=500)
    units = asyncio.run(unit_slices(world, 500, 2, args.ticks))
    print(f"sliced tick, 1,000 QKD links + {units['entanglement_links']} entanglement links + {units['units']} live "
          f"units ({units['units_done_per_tick']} done and replaced per tick): stretches without the event loop "
          f"p50/p95/p99/max {units['cpu_p50']:.2f}/{units['cpu_p95']:.2f}/{units['cpu_p99']:.2f}/{units['cpu_max']:.2f} "
          f"ms of CPU, {units['wall_p50']:.2f}/{units['wall_p95']:.2f}/{units['wall_p99']:.2f}/{units['wall_max']:.2f} ms "
          f"of wall time; whole tick {units['tick_ms_median']} ms (median, wall); the garbage collector ran "
          f"{units['gc_collections']} times meanwhile ({units['gc_full']} full), the longest {units['gc_max_ms']} ms of CPU")
    compared = compare_units(args.baseline, args.rounds, args.ticks) if args.baseline else None
    figures = {
        "tick_ms": {str(r["qkd_links"]): round(r["tick_ms"], 3) for r in rows},
        "per_agent_us": round(per_agent_ns / 1e3, 2),
        "agents_estimate": capacity,
        "verified_agents": agents,
        "verified_cpu_share": round(share, 4),
        "slice_ms_1000_links": slices,
        "link_tick_us": round(link_us, 1),
        "finite_over_asymptotic": {f"{n_x:.0e}": dict(zip(map(str, LOSSES_DB), map(lambda r: round(r, 4), table[n_x]),
                                                          strict=True)) for n_x in BLOCKS},
        "sampled_30db": sampled,
        "eavesdropper": eve,
        "entangled_units_builtin": pairs,
        "slice_ms_1000_links_1000_units": units,
        "slice_ms_1000_units_compared": compared,
        "python": sys.version.split()[0],
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
