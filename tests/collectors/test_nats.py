"""NATS JetStream against a real nats-server: at-least-once publishing that survives a server
restart under load, duplicates recognised by Nats-Msg-Id, and `qstrata collect --from-nats`
building a store from the stream (the pipeline end to end without gNMI), also across a SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy
from qstrata.collectors.model import Alarm, TargetStatus, Update, alarm_id
from qstrata.collectors.natsutil import MSG_ID, STREAM
from qstrata.collectors.outputs.nats import NatsOutput
from qstrata.collectors.pipeline import Pipeline
from qstrata.collectors.store import StoreReader

QSTRATA = Path(sys.executable).with_name("qstrata")
NODE = "82b81fe7-ec93-5286-bb8a-2941f6eeca1b"
QKD = "/etsi-qkd-sdn-node:qkd_node"
SKR = f"{QKD}/qkd_links/qkd_link[qkdl_id='0000000a-0000-4000-8000-00000000000b']/qkdl_performance/skr"


def sensor_round(k: int, n: int = 200, target: str = "x") -> list[Update]:
    return [Update(target, f"/vendor-x:box/sensor[id='{i}']/value", k * n + i, 1_000_000 + k) for i in range(n)]


async def read_stream(url: str) -> list[tuple[str, dict, bytes]]:
    """Every message in the stream, through a fresh ordered push consumer."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    info = await js.stream_info(STREAM)
    out = []
    sub = await js.subscribe(">", stream=STREAM, ordered_consumer=True,
                             config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
    while len(out) < info.state.messages:
        msg = await sub.next_msg(timeout=5)
        out.append((msg.subject, msg.headers or {}, msg.data))
    await nc.close()
    return out


def test_server_restarted_under_load_loses_no_acknowledged_update(nats_server):
    async def main():
        out = NatsOutput(nats_server.url, ack_timeout=1.0)
        pipeline = Pipeline([out], instance="c1")
        await pipeline.start()
        restart = None
        for k in range(60):  # 12,000 updates over ~3 s; the server restarts a third of the way in
            pipeline.ingest(sensor_round(k))
            if k == 20:
                restart = asyncio.create_task(asyncio.to_thread(nats_server.restart))
            await asyncio.sleep(0.05)
        await restart
        await asyncio.wait_for(pipeline.drained(), 60)
        health = pipeline.health()["outputs"]["nats"]
        await pipeline.stop()
        return health

    health = asyncio.run(main())
    assert health["dropped"] == 0 and health["acked_updates"] == 12_000
    assert health["reconnects"] >= 1  # the restart was felt (publishes in flight then were retried or buffered)
    messages = asyncio.run(read_stream(nats_server.url))
    ids = [h[MSG_ID] for _, h, _ in messages]
    assert len(ids) == len(set(ids))  # retries of one message were stored once
    seen = set()
    for _, _, data in messages:
        body = json.loads(data)
        seen.update((p, v, t) for p, v, t in body["updates"])
    expected = {(u.path, u.value, u.timestamp_ns) for k in range(60) for u in sensor_round(k)}
    assert seen == expected


def test_a_retried_message_is_stored_once(nats_server):
    async def main():
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        await js.add_stream(name="T", subjects=["t.>"])
        first = await js.publish("t.a", b"1", headers={MSG_ID: "c1.boot.7"})
        again = await js.publish("t.a", b"1", headers={MSG_ID: "c1.boot.7"})
        info = await js.stream_info("T")
        await nc.close()
        return first.duplicate, again.duplicate, info.state.messages

    first, again, stored = asyncio.run(main())
    assert not first and again is True and stored == 1


def publish_fixture(url: str, rounds: int = 25) -> tuple[int, Alarm]:
    """Telemetry of alice (identity + skr) and a raw sensor set, an alarm and a status."""
    async def main():
        out = NatsOutput(url)
        pipeline = Pipeline([out], instance="edge-1")
        await pipeline.start()
        for k in range(rounds):
            pipeline.ingest([Update("alice", f"{QKD}/qkdn_id", NODE, 1_000 + k), Update("alice", SKR, 5000 + k, 1_000 + k)]
                            + sensor_round(k))
        alarm = Alarm(alarm_id("alice", "qber-high", "r"), "alice", "r", "etsi-qkd-node-types:MAJOR", 2_000, None,
                      "qber-high: qber 0.13 above 0.11 on r", "qber-high")
        pipeline.ingest_alarms([alarm])
        pipeline.target_status(TargetStatus("alice", reachable=False, state="backoff", reason="refused"))
        await asyncio.wait_for(pipeline.drained(), 30)
        await pipeline.stop()
        return alarm
    return rounds * 202, asyncio.run(main())


def start_from_nats(url: str, store: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([str(QSTRATA), "collect", "--from-nats", url, "--store", f"sqlite:{store}", "--instance",
                             "central", *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_samples(store: Path, want: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        if store.exists():
            try:
                reader = StoreReader(store)
                n = reader.conn.execute("SELECT count(*) FROM samples s JOIN series r ON r.id = s.series_id "
                                        "WHERE r.source != ''").fetchone()[0]
                reader.close()
            except Exception:
                n = 0
            if n >= want:
                return n
        if time.monotonic() >= deadline:
            return n
        time.sleep(0.1)


def test_collect_from_nats_builds_a_store(nats_server, tmp_path):
    total, alarm = publish_fixture(nats_server.url)
    store = tmp_path / "central.db"
    proc = start_from_nats(nats_server.url, store)
    try:
        assert wait_samples(store, total) == total
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    q = subprocess.run([str(QSTRATA), "query", "samples", "--store", str(store), "--name", "*secret_key_rate",
                        "--from", "1970-01-01T00:00:00Z", "--last", "--format", "json"], capture_output=True, text=True)
    (skr,) = json.loads(q.stdout)
    assert (skr["source"], skr["value"], skr["labels"]["node"]) == ("alice", 5024, NODE)
    (stored,) = StoreReader(store).alarms(start_ns=0)
    assert (stored.alarm_id, stored.rule, stored.text) == (alarm.alarm_id, "qber-high", alarm.text)
    reach = subprocess.run([str(QSTRATA), "query", "samples", "--store", str(store), "--name", "*agent_reachable",
                            "--from", "1970-01-01T00:00:00Z", "--format", "json"], capture_output=True, text=True)
    assert [r["value"] for r in json.loads(reach.stdout)] == [0]  # the status message made it too


def test_from_nats_consumer_killed_and_restarted_loses_nothing(nats_server, tmp_path):
    total, _ = publish_fixture(nats_server.url, rounds=200)
    store = tmp_path / "central.db"
    proc = start_from_nats(nats_server.url, store)
    at_kill = wait_samples(store, 1, timeout=30)
    proc.send_signal(signal.SIGKILL)  # a crash, most likely in the middle of the stream
    proc.wait(10)
    assert 0 < at_kill <= total
    proc = start_from_nats(nats_server.url, store)
    try:
        assert wait_samples(store, total) == total  # the rest, redelivered; the duplicates ignored
        time.sleep(0.5)
        assert wait_samples(store, total, timeout=0) == total
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def test_unreachable_nats_is_one_line_and_exit_2(tmp_path):
    out = subprocess.run([str(QSTRATA), "collect", "--from-nats", "nats://127.0.0.1:1", "--store", f"sqlite:{tmp_path}/x.db"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["qstrata collect: cannot reach NATS at nats://127.0.0.1:1 within 5 s: "
                                               "[Errno 111] Connection refused"] or \
        (len(out.stderr.strip().splitlines()) == 1 and "cannot reach NATS" in out.stderr)


@pytest.mark.parametrize("flag", ["--nats", "--from-nats"])
def test_nats_without_jetstream_is_a_clear_error(tmp_path, flag):
    from collector_servers import NatsServer

    server = NatsServer(tmp_path / "plain")
    server.workdir.mkdir(parents=True)
    with open(server.log, "ab") as log:
        server.proc = subprocess.Popen([server.binary, "-a", "127.0.0.1", "-p", str(server.port)], stdout=log,
                                       stderr=subprocess.STDOUT)
    try:
        from collector_servers import wait_port

        wait_port(server.port)
        cfg = tmp_path / "c.yaml"
        cfg.write_text("targets: []\n")
        args = ["--from-nats", server.url] if flag == "--from-nats" else ["--targets", str(cfg), "--nats", server.url]
        out = subprocess.run([str(QSTRATA), "collect", *args, "--store", "none"], capture_output=True, text=True,
                             timeout=30)
    finally:
        server.stop()
    assert out.returncode == 2
    assert out.stderr.strip() == "qstrata collect: the NATS server does not have JetStream enabled (start it with -js)"


def test_nats_down_shows_in_the_health_view_and_nothing_waits(nats_server):
    async def main():
        out = NatsOutput(nats_server.url, ack_timeout=0.5)
        pipeline = Pipeline([out], instance="c1", queue_items=1000)
        await pipeline.start()
        await asyncio.to_thread(nats_server.stop)
        t0 = time.perf_counter()
        for k in range(20):
            pipeline.ingest(sensor_round(k))
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        health = pipeline.health()["outputs"]["nats"]
        await asyncio.to_thread(nats_server.start)
        await asyncio.wait_for(pipeline.drained(), 30)
        after = pipeline.health()["outputs"]["nats"]
        await pipeline.stop()
        return elapsed, health, after

    elapsed, down, after = asyncio.run(main())
    assert elapsed < 2.5  # 20 rounds at 50 ms: ingestion did not wait for NATS
    assert down["state"] == "failing" and down["connected"] is False
    assert down["dropped"] >= 2000  # 4,000 updates into a 1,000-item queue: the oldest went, counted
    assert after["state"] == "ok" and after["acked_updates"] + after["dropped"] == 4000
