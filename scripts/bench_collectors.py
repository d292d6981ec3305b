"""Collector micro-benchmark: leaf updates/s through normalize, the pipeline (alarms, store queue,
Prometheus), the SQLite writer and a Prometheus scrape, against a baseline run on the same records
in the same process (a bare loop that keeps the latest value of each leaf in a dict). Ratios, not
absolute times, are the point: they travel between machines.

Workload (the issue's sizing test): TARGETS QKD nodes x LEAVES leaves (100 links x status, skr,
eskr, expected_consumption, QBER), ROUNDS rounds, one ingest call per target per round (a gNMI
Notification's worth), every value changing every round. Also reports the collector's RSS with
all series live, the store queue and the Prometheus endpoint on.

    .venv/bin/python scripts/bench_collectors.py [--targets 400] [--leaves 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import sys
import tempfile
import time
import urllib.request
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
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{prom.port}/metrics", timeout=120) as resp:
        body = resp.read()
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=400)
    ap.add_argument("--leaves", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rss-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
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

    live = subprocess.run([sys.executable, __file__, "--rss-only", "--targets", str(args.targets), "--leaves",
                           str(args.leaves), "--rounds", str(args.rounds)], capture_output=True, text=True, check=True)
    end, peak, nseries = live.stdout.split()
    print(f"RSS of a collector process (store + Prometheus on, rounds made and dropped as a live input would): "
          f"{float(end):.0f} MB after {args.rounds} rounds, peak {float(peak):.0f} MB, {int(nseries):,} series "
          f"(this process, holding all {args.rounds} rounds of input records: {r['rss_end']:.0f} MB)")
    print(f"store: {db_mb:.0f} MB for {per_round * args.rounds:,} samples; dropped {r['dropped']:.0f}")
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
