"""The embedded store: WAL, batched writes off the loop, idempotent samples and alarms, rollups and
retention, a clean shutdown loses nothing, and `qstrata query` reads it (table and JSON, label
filters, time ranges)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from qstrata.collectors.model import Alarm, Update, alarm_id
from qstrata.collectors.normalize import Normalizer
from qstrata.collectors.outputs.sqlite import SqliteOutput
from qstrata.collectors.pipeline import Pipeline
from qstrata.collectors.store import Retention, StoreReader, StoreWriter

QSTRATA = Path(sys.executable).with_name("qstrata")
NS = 1_000_000_000
T0 = 1_750_000_000 * NS
NODE = "82b81fe7-ec93-5286-bb8a-2941f6eeca1b"
LINK_A, LINK_B = "0000000a-0000-4000-8000-00000000000b", "0000000a-0000-4000-8000-00000000000c"
QKD = "/etsi-qkd-sdn-node:qkd_node"


def qber(link: str) -> str:
    return f"{QKD}/qkd_links/qkd_link[qkdl_id='{link}']/qkdl_performance/phys_perf[perf_type='etsi-qkd-node-types:QBER']/value"


def telemetry(n: int, t0: int = T0, step: int = NS) -> list[list[Update]]:
    """n rounds of alice's identity, two links' QBER and one raw string leaf."""
    rounds = []
    for i in range(n):
        ts = t0 + i * step
        rounds.append([Update("alice", f"{QKD}/qkdn_id", NODE, ts), Update("alice", qber(LINK_A), round(0.01 + i / 1000, 3), ts),
                       Update("alice", qber(LINK_B), 0.05, ts), Update("alice", f"{QKD}/qkdn_status", "up", ts)])
    return rounds


def run_pipeline(path: Path, rounds: list[list[Update]], alarms: list[Alarm] = ()) -> Pipeline:
    async def main():
        pipeline = Pipeline([SqliteOutput(path)])
        await pipeline.start()
        for updates in rounds:
            pipeline.ingest(updates)
        if alarms:
            pipeline.ingest_alarms(alarms)
        await pipeline.stop()  # clean shutdown: everything queued is written
        return pipeline
    return asyncio.run(main())


def query(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(QSTRATA), "query", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def store(tmp_path) -> Path:
    path = tmp_path / "c.db"
    raised = Alarm(alarm_id("alice", "qber-high", "r"), "alice", "r", "etsi-qkd-node-types:MAJOR", T0 + 2 * NS, None,
                   "QBER 0.13 above 0.11", "qber-high")
    cleared = Alarm(raised.alarm_id, "alice", "r", raised.severity, raised.raised_ns, T0 + 5 * NS, "cleared", "qber-high")
    run_pipeline(path, telemetry(10), [raised, cleared])
    return path


def test_clean_shutdown_keeps_every_sample_in_a_wal_store(store):
    conn = sqlite3.connect(store)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] == 40
    assert conn.execute("SELECT count(*) FROM series").fetchone()[0] == 4
    (alarm,) = StoreReader(store).alarms()
    assert alarm.cleared_ns == T0 + 5 * NS and alarm.rule == "qber-high"


def test_samples_delivered_twice_are_stored_once(store):
    run_pipeline(store, telemetry(10))  # a replay (NATS redelivery): same series, same timestamps
    assert sqlite3.connect(store).execute("SELECT count(*) FROM samples").fetchone()[0] == 40


def test_query_samples_table_and_json_with_label_filter_and_range(store):
    start = "2025-06-15T15:06:42Z"  # T0 + 2 s
    end = "2025-06-15T15:06:44Z"
    out = query("samples", "--store", f"sqlite:{store}", "--name", "*qkd_link_qber", "--label", f"link_id={LINK_A}",
                "--from", start, "--to", end, "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["time"], r["value"]) for r in rows] == [("2025-06-15T15:06:42.000Z", 0.012),
                                                       ("2025-06-15T15:06:43.000Z", 0.013),
                                                       ("2025-06-15T15:06:44.000Z", 0.014)]
    assert rows[0]["labels"] == {"node": NODE, "link_id": LINK_A} and rows[0]["source"] == "alice"
    table = query("samples", "--store", str(store), "--name", "*qber", "--from", start, "--to", start)
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["time", "source", "name", "labels", "value"]
    assert len(lines) == 3 and all("telemetry_qkd_links_qkd_link_qber" in line for line in lines[1:])
    last = json.loads(query("samples", "--store", str(store), "--name", "*qber", "--from", "2025-06-15T00:00:00Z",
                            "--last", "--format", "json").stdout)
    assert sorted(r["value"] for r in last) == [0.019, 0.05]


def test_query_samples_step_averages_per_step(store):
    """`--step`: one average per step, as the dashboard's /api/series downsamples (same reader)."""
    out = query("samples", "--store", str(store), "--name", "*qkd_link_qber", "--label", f"link_id={LINK_A}",
                "--from", "2025-06-15T15:06:40Z", "--to", "2025-06-15T15:06:49Z", "--step", "5s", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["time"] for r in rows] == ["2025-06-15T15:06:40.000Z", "2025-06-15T15:06:45.000Z"]
    assert [round(r["value"], 4) for r in rows] == [0.012, 0.017]
    bad = query("samples", "--store", str(store), "--step", "0s")
    assert bad.returncode == 2 and "--step must be positive" in bad.stderr


def test_query_series_and_alarms(store):
    series = json.loads(query("series", "--store", str(store), "--source", "alice", "--format", "json").stdout)
    assert {s["name"] for s in series} == {"telemetry_qkd_links_qkd_link_qber", "qkd_node_qkdn_id", "qkd_node_qkdn_status"}
    alarms = query("alarms", "--store", str(store), "--from", "2025-06-01T00:00:00Z")
    assert alarms.returncode == 0 and "qber-high" in alarms.stdout and "cleared" in alarms.stdout
    active = json.loads(query("alarms", "--store", str(store), "--from", "2025-06-01T00:00:00Z", "--state", "raised",
                              "--format", "json").stdout)
    assert active == []


@pytest.mark.parametrize("args,message", [
    (["samples", "--store", "sqlite:/nonexistent/x.db"], "no such store"),
    (["samples", "--label", "novalue"], "--label wants K=V"),
    (["samples", "--from", "yesterday-ish"], "not a time"),
    (["samples", "--from", "now", "--to", "1h"], "is after"),
    (["samples", "--last", "--step", "10s"], "--last is the latest sample of each series: it does not go with --step"),
    (["samples", "--last", "--rollups"], "it does not go with --rollups"),
])
def test_query_bad_input_is_one_line(store, args, message):
    if "--store" not in args:
        args = [*args, "--store", str(store)]
    out = query(*args)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_rollups_and_retention(tmp_path):
    path = tmp_path / "r.db"
    writer = StoreWriter(path, Retention(raw=600, bucket=60, rollups=3600))
    norm = Normalizer()
    # 20 minutes of one sample every 10 s, ending now-ish
    now = T0 - T0 % (60 * NS) + 3600 * NS  # on a bucket boundary
    for i in range(120):
        writer.write([norm.normalize([Update("x", "/vendor-x:box/temp", float(i), now - (1200 - i * 10) * NS)])])
    result = writer.maintain(now)
    assert result["raw_deleted"] == 60  # older than 10 minutes
    assert result["rolled_up"] == 19  # one-minute buckets of the 20 minutes; the last may still get late data
    rows = writer.conn.execute("SELECT count, min, max, sum FROM rollups ORDER BY bucket").fetchall()
    assert all(c == 6 for c, *_ in rows)
    assert rows[0][1:] == (0.0, 5.0, 15.0)
    again = writer.maintain(now)  # nothing new to roll up
    assert again["rolled_up"] == 0
    writer.maintain(now + 7200 * NS)  # rollups past their retention go too
    assert writer.conn.execute("SELECT count(*) FROM rollups").fetchone()[0] == 0
    writer.close()


def test_writes_happen_off_the_event_loop(tmp_path):
    """While the writer commits a large batch, the loop keeps turning."""
    async def main():
        out = SqliteOutput(tmp_path / "big.db")
        pipeline = Pipeline([out])
        await pipeline.start()
        pipeline.ingest([Update("x", f"/vendor-x:box/sensor[id='{i}']/value", i, T0) for i in range(50_000)])
        turns = 0
        while pipeline.queues[0].queued:
            await asyncio.sleep(0)
            turns += 1
        await pipeline.stop()
        return turns, out.health()["samples_written"]

    turns, written = asyncio.run(main())
    assert written == 50_000
    assert turns > 10
