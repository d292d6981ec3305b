"""Dashboard endpoints at 400 targets, in process (no gRPC): a pipeline with the SQLite store and the
dashboard output, fed synthetic qstrata-telemetry updates -- 400 agents, 200 QKD links (each reported
by both ends: secret and effective key rate, QBER, key available, status) plus `--raw` other leaves
per agent -- one round per second of agent time for `--minutes`. Then, over HTTP on 127.0.0.1:
`/api/state` (latency, size), one event-stream delta (size), `/api/series` for a link with 15 min /
300 points and 1 h / 300 points (latency), and the page itself (which embeds the state and topology).

    .venv/bin/python scripts/bench_dashboard.py [--targets 400] [--raw 100] [--minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from qstrata.collectors.model import TargetStatus, Update
from qstrata.collectors.outputs import create
from qstrata.collectors.pipeline import Pipeline

TEL = "/qstrata-telemetry:telemetry"
NS = 1_000_000_000


async def get(port: int, path: str) -> tuple[float, bytes]:
    t = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    return (time.perf_counter() - t) * 1000, data


async def first_delta(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /api/events HTTP/1.0\r\nHost: localhost\r\n\r\n")  # 1.0: the events unframed
    buf = b""
    while buf.count(b"event: delta") < 1 or not buf.endswith(b"\n\n"):
        buf += await reader.read(1 << 20)
    writer.close()
    return buf.split(b"event: delta", 1)[1]


def round_updates(targets: int, raw: int, ts: int, i: int, first: bool) -> list[Update]:
    out = []
    for t in range(targets):
        name, link = f"node{t:03d}", f"link-{t // 2:03d}"
        p = f"{TEL}/qkd-links/qkd-link[node='{name}'][link-id='{link}']"
        skr = 1e6 + 1e4 * ((i + t) % 17)
        out += [Update(name, p + "/secret-key-rate", skr, ts), Update(name, p + "/effective-key-rate", skr * 0.9, ts),
                Update(name, p + "/qber", 0.01 + 0.001 * (i % 5), ts), Update(name, p + "/key-available", 1e6 * i, ts)]
        if first:
            out.append(Update(name, p + "/status", "etsi-qkd-node-types:ACTIVE", ts))
            out += [Update(name, f"/qstrata-bench:raw/leaf[id='{k}']/value", k, ts) for k in range(raw)]
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=400)
    ap.add_argument("--raw", type=int, default=100)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--serve", type=float, default=0, help="then keep serving (and ingesting) this many seconds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.db"
        dashboard = create("dashboard", host="127.0.0.1", port=0, store=store)
        pipeline = Pipeline([create("sqlite", path=store), dashboard])
        await pipeline.start()
        start = time.time_ns() - int(args.minutes * 60 * NS)
        rounds = int(args.minutes * 60)
        for t in range(args.targets):
            pipeline.target_status(TargetStatus(f"node{t:03d}", True, "subscribed", synced=True,
                                                timestamp_ns=time.time_ns()))
        t0 = time.perf_counter()
        for i in range(rounds):
            pipeline.ingest(round_updates(args.targets, args.raw, start + i * NS, i, i == 0))
            if i % 50 == 0:
                await pipeline.drained()
        await pipeline.drained()
        print(f"{args.targets} targets, {len(pipeline.registry):,} series, {rounds} rounds of link samples stored "
              f"in {time.perf_counter() - t0:.1f} s")
        port = dashboard.port
        for path, label in (("/api/state", "state (every link and agent)"),
                            ("/api/series?kind=qkd&link=link-100&span=15m&points=300", "series: 1 link, 15 min, 300 points"),
                            ("/api/series?kind=qkd&link=link-100&span=1h&points=300", "series: 1 link, 1 h, 300 points"),
                            ("/api/topology", "topology"), ("/", "page (state and topology embedded)"),
                            ("/static/app.js", "page script")):
            times, size = [], 0
            for _ in range(20):
                ms, data = await get(port, path)
                times.append(ms)
                size = len(data)
            print(f"{label:40s} median {statistics.median(times):6.1f} ms  max {max(times):6.1f} ms  {size / 1024:7.1f} KiB")
        task = asyncio.create_task(first_delta(port))
        await asyncio.sleep(0.2)
        pipeline.ingest(round_updates(args.targets, 0, start + rounds * NS, rounds, False))
        t = time.perf_counter()
        d = await asyncio.wait_for(task, 5)
        print(f"{'event-stream delta after one round':40s} {len(d) / 1024:.1f} KiB, within {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        for _ in range(20):
            dashboard.server.data.state()
        print(f"{'state() in the event loop':40s} {(time.perf_counter() - t) / 20 * 1000:.1f} ms")
        if args.serve:
            print(f"serving {dashboard.url} for {args.serve:g} s", flush=True)
            for i in range(int(args.serve)):
                pipeline.ingest(round_updates(args.targets, 0, start + (rounds + 1 + i) * NS, rounds + 1 + i, False))
                await asyncio.sleep(1)
        await pipeline.stop()


if __name__ == "__main__":
    asyncio.run(main())
