"""Collector benchmark, end to end: N gNMI targets streaming into one collector process that writes
the SQLite store and serves Prometheus (scraped every 10 s, as a Prometheus server would).

    .venv/bin/python scripts/bench_collector.py [--targets 400] [--leaves 500] [--interval 10]
                                                [--duration 60] [--max-interval 1] [--max-duration 20]
    .venv/bin/python scripts/bench_collector.py --stages ...   (the in-process stage micro-benchmark)

Targets: the agents' own gNMI server (`qstrata.agents.gnmi`: GnmiService in gateway mode, the
SubscribeSession SAMPLE engine, the Encoder, password login) in one process, `prefix.target` per
agent, over synthetic devices: each target is a QKD node with L links x 7 leaves (qkdl_id,
status, skr, eskr, expected_consumption, QBER perf_type and value) + qkdn_id, every value
changing every sample, stamped with the wall clock when the sample is built. (Twins would cost
the target process more than the collector; the subscription path is the same.) The link ids are
the same on every target (so are their paths, as with devices of one kind), or with
`--distinct-links` each target's own (no two targets share a path).

Collector: `qstrata.collectors.app.Collector` in a child process (its RSS and CPU time are its
own) with the gNMI input, SQLite and Prometheus, instrumented to measure lag: notification
timestamp -> ingested (pipeline.ingest) and -> committed in SQLite (end to end).

Phases: (1) sustained, our reference load (400 targets x 500 values every 10 s, about
20,000 updates/s): updates/s ingested, lag p50/p99, RSS, CPU share; (2) maximum: every target
sampled every `--max-interval` s; updates ingested per second of collector CPU time ("on one
core"), whatever the target process manages to offer on a shared machine. Ends with one JSON line.

The reference load is our own choice (400 targets x 500 values every 10 s): no other collector
publishes a figure for it, so none is compared here. Goals: that load with collector RSS < 300 MB and lag p99 < 2 s; >= 100,000 updates/s on one core.

Stage micro-benchmark (``--stages``): leaf updates/s through normalize, the pipeline (alarms, store queue,
Prometheus), the SQLite writer and a Prometheus scrape, against a baseline run on the same records
in the same process (a bare loop that keeps the latest value of each leaf in a dict). Ratios, not
absolute times, are the point: they travel between machines.

Workload (the issue's sizing test): TARGETS QKD nodes x LEAVES leaves (100 links x status, skr,
eskr, expected_consumption, QBER), ROUNDS rounds, one ingest call per target per round (a gNMI
Notification's worth), every value changing every round. Also reports the collector's RSS with
all series live, the store queue and the Prometheus endpoint on.

    .venv/bin/python scripts/bench_collector.py --stages [--targets 400] [--leaves 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from qstrata.collectors.model import Update
from qstrata.collectors.normalize import Normalizer
from qstrata.collectors.outputs.prometheus import PrometheusOutput
from qstrata.collectors.outputs.sqlite import SqliteOutput
from qstrata.collectors.pipeline import Pipeline
from qstrata.collectors.processors.alarms import AlarmProcessor, ThresholdRule

QKD = "/etsi-qkd-sdn-node:qkd_node"
LEAVES = ("qkdl_status", "qkdl_performance/skr", "qkdl_performance/eskr", "qkdl_performance/expected_consumption",
          "qkdl_performance/phys_perf[perf_type='etsi-qkd-node-types:QBER']/value")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def workload(targets: int, leaves: int, rounds: int) -> list[list[list[Update]]]:
    """rounds x targets x (one batch of `leaves` updates, identity first)."""
    links = max(1, leaves // len(LEAVES))
    paths = [[f"{QKD}/qkd_links/qkd_link[qkdl_id='{t:08x}-0000-4000-8000-{k:012x}']/{leaf}" for k in range(links)
              for leaf in LEAVES][:leaves - 1] for t in range(targets)]
    return [one_round(paths, r) for r in range(rounds)]


def one_round(paths: list[list[str]], r: int) -> list[list[Update]]:
    """One round: per target, its identity then its leaves, every value changed."""
    ts = 1_750_000_000_000_000_000 + r * 10_000_000_000
    batches = []
    for t in range(len(paths)):
        name = f"qkd-{t:03d}"
        batch = [Update(name, f"{QKD}/qkdn_id", f"{t:08x}-0000-4000-8000-000000000000", ts)]
        for i, p in enumerate(paths[t]):
            kind = i % len(LEAVES)
            value = "etsi-qkd-node-types:ACTIVE" if kind == 0 else (0.01 + (r + i) % 7 / 1000 if kind == 4
                                                                    else 1000 + r * 10 + i)
            batch.append(Update(name, p, value, ts))
        batches.append(batch)
    return batches


def baseline(rounds: list[list[list[Update]]]) -> float:
    latest: dict[str, dict[str, object]] = {}
    t0 = time.perf_counter()
    for batches in rounds:
        for batch in batches:
            for u in batch:
                d = latest.get(u.target)
                if d is None:
                    d = latest[u.target] = {}
                d[u.path] = u.value
    return time.perf_counter() - t0


def normalize_only(rounds: list[list[list[Update]]]) -> tuple[float, float]:
    """(first round: series created, later rounds: cached routes) seconds."""
    norm = Normalizer()
    t0 = time.perf_counter()
    for batch in rounds[0]:
        norm.normalize(batch)
    t1 = time.perf_counter()
    for batches in rounds[1:]:
        for batch in batches:
            norm.normalize(batch)
    return t1 - t0, time.perf_counter() - t1


async def full(rounds: list[list[list[Update]]], db: Path) -> dict[str, float]:
    rule = ThresholdRule("qber-high", "/qstrata-telemetry:telemetry/qkd-links/qkd-link/qber", "etsi-qkd-node-types:MAJOR",
                         above=0.11)
    prom = PrometheusOutput("127.0.0.1", 0)
    store = SqliteOutput(db)
    pipeline = Pipeline([store, prom], [AlarmProcessor([rule])], queue_items=2_000_000)
    await pipeline.start()
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    for batch in rounds[0]:
        pipeline.ingest(batch)
    out["first_ingest"] = time.perf_counter() - t0
    await pipeline.drained()
    out["first_stored"] = time.perf_counter() - t0
    out["rss_series"] = rss_mb()
    ingest = stored = 0.0
    for batches in rounds[1:]:
        t0 = time.perf_counter()
        for batch in batches:
            pipeline.ingest(batch)
            await asyncio.sleep(0)  # let the store worker hand batches to its thread, as a live input would
        t1 = time.perf_counter()
        await pipeline.drained()
        ingest += t1 - t0
        stored += time.perf_counter() - t0
    out["ingest"], out["stored"] = ingest, stored
    def scrape() -> bytes:  # from a thread: the endpoint serves in this event loop
        with urllib.request.urlopen(f"http://127.0.0.1:{prom.port}/metrics", timeout=120) as resp:
            return resp.read()

    t0 = time.perf_counter()
    body = await asyncio.to_thread(scrape)
    out["scrape"] = time.perf_counter() - t0
    out["scrape_bytes"] = len(body)
    out["rss_end"] = rss_mb()
    out["dropped"] = pipeline.health()["outputs"]["sqlite"]["dropped"]
    await pipeline.stop()
    return out


async def rss_only(targets: int, leaves: int, rounds: int) -> None:
    """A collector's real footprint: rounds made one at a time and dropped after ingestion, as a
    live input would, with the store and the Prometheus endpoint on."""
    links = max(1, leaves // len(LEAVES))
    paths = [[f"{QKD}/qkd_links/qkd_link[qkdl_id='{t:08x}-0000-4000-8000-{k:012x}']/{leaf}" for k in range(links)
              for leaf in LEAVES][:leaves - 1] for t in range(targets)]
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline([SqliteOutput(Path(tmp) / "rss.db"), PrometheusOutput("127.0.0.1", 0)], [AlarmProcessor()])
        await pipeline.start()
        peak = 0.0
        for r in range(rounds):
            for batch in one_round(paths, r):
                pipeline.ingest(batch)
                await asyncio.sleep(0)
            await pipeline.drained()
            gc.collect()
            peak = max(peak, rss_mb())
        print(f"{rss_mb():.1f} {peak:.1f} {len(pipeline.registry)}")
        await pipeline.stop()


def stages_main(args: argparse.Namespace) -> int:
    if args.rss_only:
        asyncio.run(rss_only(args.targets, args.leaves, args.rounds))
        return 0
    rss0 = rss_mb()
    rounds = workload(args.targets, args.leaves, args.rounds)
    per_round = sum(len(b) for b in rounds[0])
    later = per_round * (args.rounds - 1)
    gc.collect()
    rss_input = rss_mb()
    print(f"workload: {args.targets} targets x {args.leaves} leaves = {per_round:,} updates per round, {args.rounds} rounds"
          f" (input records: {rss_input - rss0:.0f} MB)")
    base = min(baseline(rounds[1:]) for _ in range(3))
    base_rate = later / base
    first, warm = normalize_only(rounds)
    print(f"\n{'stage':44} {'updates/s':>12} {'vs baseline':>12}")
    print(f"{'baseline: latest value per leaf in a dict':44} {base_rate:12,.0f} {'1.00':>12}")
    print(f"{'normalize, first round (series created)':44} {per_round / first:12,.0f} {base / later * per_round / first:12.2f}")
    print(f"{'normalize, later rounds':44} {later / warm:12,.0f} {base / warm:12.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        gc.collect()
        r = asyncio.run(full(rounds, Path(tmp) / "bench.db"))
        db_mb = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20
    print(f"{'ingest (normalize+alarms+queues), later rounds':44} {later / r['ingest']:12,.0f} {base / r['ingest']:12.2f}")
    print(f"{'... + stored in SQLite (committed), later':44} {later / r['stored']:12,.0f} {base / r['stored']:12.2f}")
    print(f"{'first round ingested / stored':44} {per_round / r['first_ingest']:12,.0f} / {per_round / r['first_stored']:,.0f}")
    print(f"\nPrometheus scrape of {per_round:,} series: {r['scrape']:.2f} s, {r['scrape_bytes'] / 2**20:.1f} MB "
          f"({per_round / r['scrape']:,.0f} series/s)")
    import subprocess

    live = subprocess.run([sys.executable, __file__, "--stages", "--rss-only", "--targets", str(args.targets), "--leaves",
                           str(args.leaves), "--rounds", str(args.rounds)], capture_output=True, text=True, check=True)
    end, peak, nseries = live.stdout.split()
    print(f"RSS of a collector process (store + Prometheus on, rounds made and dropped as a live input would): "
          f"{float(end):.0f} MB after {args.rounds} rounds, peak {float(peak):.0f} MB, {int(nseries):,} series "
          f"(this process, holding all {args.rounds} rounds of input records: {r['rss_end']:.0f} MB)")
    print(f"store: {db_mb:.0f} MB for {per_round * args.rounds:,} samples; dropped {r['dropped']:.0f}")
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}, {os.cpu_count()} CPUs")
    return 0



# ======================================================================== end to end
NODE_NS = uuid.UUID("9d7d5a3e-5c1b-4b8e-8d1e-0e3f9a1b2c3d")
USER, PASSWORD = "bench", "bench-password"


class SyntheticTarget:
    """A QKD node as the agents' gNMI service sees a `GnmiTarget`: data, clock, login, events."""

    def __init__(self, name: str, links: int, shared: dict) -> None:
        self.name = name
        self.links = links
        self.node = str(uuid.uuid5(NODE_NS, name))
        self.datastore = shared["datastore"]
        self.index = shared["index"]
        self.encoder = shared["encoder"]
        self.auth = shared["auth"]
        self.users = shared["users"]
        self.guard = shared["guard"]
        self.bus = shared["bus"]
        self.link_ids = shared["link_ids"] or [f"{int(name[4:]):08x}-0000-4000-8000-{k:012x}" for k in range(links)]
        self.n = 0

    def now_ns(self) -> int:
        return time.time_ns()

    def data(self, data_type: int, principal=None) -> dict:
        self.n += 1
        n = self.n
        links = [{"qkdl_id": lid, "qkdl_status": "etsi-qkd-node-types:ACTIVE" if (n + k) % 7 else "etsi-qkd-node-types:DOWN",
                  "qkdl_performance": {"skr": 1000 + (n * 31 + k) % 5000, "eskr": 900 + (n * 17 + k) % 4000,
                                       "expected_consumption": 100 + (n + k) % 50,
                                       "phys_perf": [{"perf_type": "etsi-qkd-node-types:QBER",
                                                      "value": f"0.0{(n + k) % 90 + 10}"}]}}
                 for k, lid in enumerate(self.link_ids[:self.links])]
        return {"etsi-qkd-sdn-node:qkd_node": {"qkdn_id": self.node, "qkd_links": {"qkd_link": links}}}

    async def authenticate(self, metadata, peer):
        return await self.auth.authenticate(metadata, peer)


async def serve_targets(port: int, count: int, links: int, state_dir: Path, distinct: bool = False) -> None:
    """The target process: one gateway port, `count` synthetic agents named qkd-000..."""
    from qstrata.agents.access.guard import GuardOptions, LoginGuard
    from qstrata.agents.access.users import UserStore, add_user
    from qstrata.agents.events import EventBus
    from qstrata.agents.gnmi.auth import Authenticator
    from qstrata.agents.gnmi.server import start_gnmi_server
    from qstrata.agents.gnmi.service import GnmiService
    from qstrata.bindings.schema import get_schema
    from qstrata.bindings.schema_index import schema_index
    from qstrata.bindings.wire.gnmi_encoding import Encoder

    add_user(state_dir, USER, PASSWORD)
    schema = get_schema(("etsi-qkd-sdn-node",))
    users = UserStore(state_dir)
    guard = LoginGuard(GuardOptions(max_sessions=count + 10, max_sessions_per_user=None,
                                    max_unauthenticated=count + 10))

    class _Store:
        pass

    store = _Store()
    store.schema = schema
    shared = {"datastore": store, "index": schema_index(schema), "encoder": Encoder(schema), "users": users,
              "guard": guard, "auth": Authenticator(users, guard), "bus": EventBus(),
              "link_ids": None if distinct else [f"0000000a-0000-4000-8000-{k:012x}" for k in range(links)]}
    targets = {f"qkd-{i:03d}": SyntheticTarget(f"qkd-{i:03d}", links, shared) for i in range(count)}
    server = await start_gnmi_server(GnmiService(targets, gateway=True), "127.0.0.1", port, None)
    print(f"READY {server.port}", flush=True)
    await asyncio.Event().wait()


def proc_cpu(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def run_collector(cfg: Path, db: Path, prom_port: int, duration: float, warmup: float) -> dict:
    """The collector process: runs `warmup` s, then measures for `duration` s."""
    from qstrata.collectors.app import CollectOptions, Collector
    from qstrata.collectors.config import load

    c = Collector(CollectOptions(config=load(cfg), store=f"sqlite:{db}", prometheus=("127.0.0.1", prom_port),
                                 instance="bench"))
    pipeline = c.pipeline
    ingest_lag: list[float] = []
    store_lag: list[float] = []
    measuring = False
    ingest = pipeline.ingest

    def timed_ingest(updates):
        if measuring and updates:
            ingest_lag.append((time.time_ns() - updates[0].timestamp_ns) / 1e9)
        return ingest(updates)

    pipeline.ingest = timed_ingest
    sqlite_q = next(q for q in pipeline.queues if q.output.name == "sqlite")
    write = sqlite_q.output.write

    async def timed_write(batches):
        await write(batches)
        if measuring:
            now = time.time_ns()
            store_lag.extend((now - b.ts[0]) / 1e9 for b in batches if b.ts)

    sqlite_q.output.write = timed_write
    pauses: list[float] = []
    gc_start = [0.0]

    def gc_probe(phase: str, info: dict) -> None:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        elif measuring and info.get("generation") == 2:
            pauses.append(time.perf_counter() - gc_start[0])

    gc.callbacks.append(gc_probe)
    await c.start()
    try:
        await asyncio.sleep(warmup)
        measuring = True
        n0, cpu0, t0 = pipeline.ingested, proc_cpu(), time.monotonic()
        peak = rss_mb()
        end = t0 + duration
        while time.monotonic() < end:
            await asyncio.sleep(0.5)
            peak = max(peak, rss_mb())
        n1, cpu1, t1 = pipeline.ingested, proc_cpu(), time.monotonic()
        measuring = False
        health = c.health()
    finally:
        await c.stop()
    up = sum(1 for t in health["targets"].values() if t["synced"])
    return {"updates": n1 - n0, "seconds": t1 - t0, "cpu": cpu1 - cpu0, "rss_mb": rss_mb(), "rss_peak_mb": peak,
            "series": health["series"], "targets_synced": up,
            "dropped": sum(o["dropped"] for o in health["outputs"].values()),
            "ingest_lag_p50": percentile(ingest_lag, 50), "ingest_lag_p99": percentile(ingest_lag, 99),
            "lag_p50": percentile(store_lag, 50), "lag_p99": percentile(store_lag, 99),
            "lag_max": max(store_lag, default=float("nan")), "gc_full": len(pauses),
            "gc_full_max_s": max(pauses, default=0.0)}


def collector_config(path: Path, port: int, targets: int, interval: float) -> None:
    lines = ["targets:"]
    for i in range(targets):
        lines.append(f"  - {{name: qkd-{i:03d}, address: '127.0.0.1:{port}', username: {USER}, "
                     f"password: {PASSWORD}, insecure: true, subscriptions: [{{paths: [/etsi-qkd-sdn-node:qkd_node], "
                     f"mode: sample, sample-interval: {interval}s}}]}}")
    path.write_text("\n".join(lines) + "\n")


def phase(tmp: Path, name: str, port: int, args: argparse.Namespace, interval: float, duration: float) -> dict:
    import subprocess
    import threading
    import urllib.request

    cfg = tmp / f"{name}.yaml"
    collector_config(cfg, port, args.targets, interval)
    prom_port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--role", "collector", "--config", str(cfg),
                             "--db", str(tmp / f"{name}.db"), "--prom-port", str(prom_port), "--duration", str(duration),
                             "--warmup", str(args.warmup)], stdout=subprocess.PIPE, text=True)
    scrapes: list[float] = []
    stop = threading.Event()

    def scraper() -> None:  # a Prometheus server scraping every 10 s
        while not stop.wait(10):
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/metrics", timeout=30) as resp:
                    resp.read()
                scrapes.append(time.perf_counter() - t0)
            except OSError:
                pass

    thread = threading.Thread(target=scraper, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    stop.set()
    result = json.loads(out.strip().splitlines()[-1])
    result["scrape_s"] = max(scrapes, default=float("nan"))
    return result


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def e2e_main(args: argparse.Namespace) -> int:
    import subprocess
    import tempfile

    links = max(1, (args.leaves - 1) // 7)
    leaves = links * 7 + 1
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "targets").mkdir()
        targets = subprocess.Popen([sys.executable, __file__, "--role", "targets", "--targets", str(args.targets),
                                    "--links", str(links), "--state-dir", str(tmp / "targets"),
                                    *(["--distinct-links"] if args.distinct_links else [])],
                                   stdout=subprocess.PIPE, text=True)
        try:
            line = targets.stdout.readline()
            if not line.startswith("READY"):
                raise SystemExit(f"target process failed: {line}")
            port = int(line.split()[1])
            print(f"{args.targets} targets x {leaves} leaves on 127.0.0.1:{port} (one gateway process; "
                  f"{'each target its own link ids' if args.distinct_links else 'the same link ids on every target'})")
            offered = args.targets * leaves / args.interval
            print(f"\nphase 1, sustained: every {args.interval:g} s ({offered:,.0f} updates/s offered), "
                  f"{args.duration:g} s measured after {args.warmup:g} s")
            s = phase(tmp, "sustained", port, args, args.interval, args.duration)
            rate = s["updates"] / s["seconds"]
            print(f"  ingested {rate:,.0f} updates/s ({rate / offered:.2f} of offered), {s['targets_synced']} targets "
                  f"synced, {s['series']:,} series, dropped {s['dropped']}")
            print(f"  lag to ingest p50 {s['ingest_lag_p50']:.3f} s p99 {s['ingest_lag_p99']:.3f} s; to SQLite commit "
                  f"p50 {s['lag_p50']:.3f} s p99 {s['lag_p99']:.3f} s max {s['lag_max']:.3f} s")
            print(f"  collector RSS {s['rss_mb']:.0f} MB (peak {s['rss_peak_mb']:.0f} MB, goal < 300 MB); "
                  f"CPU {s['cpu'] / s['seconds']:.0%} of one core; "
                  f"Prometheus scrape {s['scrape_s']:.2f} s")
            print(f"  full garbage collections while measuring: {s['gc_full']}, longest {s['gc_full_max_s']:.2f} s")
            m = None
            if args.max_duration > 0:
                offered_max = args.targets * leaves / args.max_interval
                print(f"\nphase 2, maximum: every {args.max_interval:g} s ({offered_max:,.0f} updates/s asked of the "
                      f"target process)")
                m = phase(tmp, "max", port, args, args.max_interval, args.max_duration)
                mrate = m["updates"] / m["seconds"]
                per_core = m["updates"] / m["cpu"] if m["cpu"] else float("nan")
                print(f"  ingested {mrate:,.0f} updates/s using {m['cpu'] / m['seconds']:.0%} of a core -> "
                      f"{per_core:,.0f} updates per collector CPU-second (goal 100,000: {per_core / 1e5:.2f})")
                print(f"  lag to SQLite commit p99 {m['lag_p99']:.3f} s; RSS peak {m['rss_peak_mb']:.0f} MB; "
                      f"dropped {m['dropped']}")
        finally:
            targets.terminate()
            targets.wait(10)
    summary = {"targets": args.targets, "leaves": leaves, "distinct_links": args.distinct_links, "interval_s": args.interval,
               "sustained_updates_per_s": round(rate), "lag_p99_s": round(s["lag_p99"], 3),
               "ingest_lag_p99_s": round(s["ingest_lag_p99"], 3), "rss_mb": round(s["rss_peak_mb"]),
               "sustained_cpu_share": round(s["cpu"] / s["seconds"], 2), "dropped": s["dropped"]}
    if m is not None:
        summary.update({"max_updates_per_s": round(m["updates"] / m["seconds"]),
                        "updates_per_cpu_second": round(m["updates"] / m["cpu"]) if m["cpu"] else None,
                        "max_lag_p99_s": round(m["lag_p99"], 3)})
    print(json.dumps(summary))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stages", action="store_true", help="the in-process stage micro-benchmark instead")
    ap.add_argument("--targets", type=int, default=400)
    ap.add_argument("--leaves", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5, help="--stages: rounds")
    ap.add_argument("--interval", type=float, default=10.0, help="sample interval of the sustained phase (s)")
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds of the sustained phase")
    ap.add_argument("--warmup", type=float, default=15.0)
    ap.add_argument("--max-interval", type=float, default=1.0)
    ap.add_argument("--max-duration", type=float, default=20.0, help="0: skip the maximum phase")
    ap.add_argument("--distinct-links", action="store_true",
                    help="every target reports its own link ids (default: the same ids on every target, so that "
                         "their paths are the same)")
    ap.add_argument("--rss-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--role", choices=("targets", "collector"), help=argparse.SUPPRESS)
    ap.add_argument("--links", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--state-dir", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--prom-port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "targets":
        asyncio.run(serve_targets(0, args.targets, args.links, Path(args.state_dir), args.distinct_links))
        return 0
    if args.role == "collector":
        import logging

        logging.basicConfig(level=logging.WARNING, format="collector %(levelname)s %(message)s")
        result = asyncio.run(run_collector(Path(args.config), Path(args.db), args.prom_port, args.duration,
                                           args.warmup))
        print(json.dumps(result))
        return 0
    if args.stages:
        return stages_main(args)
    return e2e_main(args)


if __name__ == "__main__":
    sys.exit(main())
