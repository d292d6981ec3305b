"""Target leases across a NATS outage (real nats-server, real agent): a restart of NATS does not
stop collection for good (the lease buckets come back and collection goes on, one INFO line says
so), and while NATS is unreachable, even for longer than a lease's TTL, the targets this instance
held are still collected and the health says the leases cannot be renewed."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from collector_servers import HOST, free_port
from qstrata.collectors.app import CollectOptions, Collector
from test_leases import Recorder, config, until

QSTRATA = Path(sys.executable).with_name("qstrata")
NAMES = [f"qkd-{i:02d}" for i in range(4)]


def metrics(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=2) as resp:
            return resp.read().decode()
    except OSError:
        return ""


def series_count(text: str) -> float:
    m = re.search(r'^qstrata_collector_series\{[^}]*\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else -1


def wait_collecting(port: int, agent: str, timeout: float) -> str:
    """Until the exposition has live series and the agent's reachable series; returns it."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = metrics(port)
        if series_count(text) > 0 and re.search(rf'agent_reachable{{name="{agent}"[^}}]*}} 1', text):
            return text
        time.sleep(0.2)
    raise AssertionError(f"not collecting within {timeout} s: series {series_count(text)}, "
                         f"{[ln for ln in text.splitlines() if 'reachable' in ln]}")


def test_nats_restart_keeps_collection_going(tmp_path, nats_server, agents):
    """The tester's scenario: `qstrata collect --nats` (sharing), NATS stopped for 3 s and started
    again; collection goes on (or resumes within seconds), said in an INFO line, no traceback,
    SIGTERM clean."""
    agent = agents("mem-a", insecure=True)
    cfg = tmp_path / "collector.yaml"
    cfg.write_text("targets:\n" + agent.target_yaml("200ms"))
    port = free_port()
    log = tmp_path / "collect.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(QSTRATA), "collect", "--targets", str(cfg), "--store", "none", "--nats",
                                 nats_server.url, "--prometheus", f"{HOST}:{port}", "--instance", "n4"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_collecting(port, agent.name, 20)
        nats_server.stop()
        time.sleep(3)
        nats_server.start()
        deadline = time.monotonic() + 8
        while "leases: NATS answers again" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(6)  # past a lease TTL (5 s) after the restart: nothing is dropped later either
        text = wait_collecting(port, agent.name, 5)
        assert series_count(text) > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    output = log.read_text()
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert "no longer collected here" not in output and "lost mem-a" not in output, output
    assert len(re.findall(r"INFO leases: NATS answers again", output)) == 1, output


def test_nats_down_longer_than_a_lease_ttl_keeps_collecting_what_was_held(nats_server):
    """One instance, lease TTL 1 s, NATS down for 8 s: every target it held is still collected
    throughout, the health says the leases cannot be renewed; once NATS is back the leases are
    renewed (the entries expired meanwhile: taken again) and the health is ok."""
    async def main():
        rec = Recorder()
        c = Collector(CollectOptions(config=config(NAMES), store=None, nats=nats_server.url, instance="solo",
                                     lease_ttl=1.0), target_input=rec)
        await c.start()
        await until(lambda: rec.active == set(NAMES), 10)
        await asyncio.to_thread(nats_server.stop)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 8:  # a lease request in flight times out after 5 s: well past that too
            assert rec.active == set(NAMES), rec.events
            await asyncio.sleep(0.1)
        down = c.health()["leases"]
        await asyncio.to_thread(nats_server.start)
        await until(lambda: c.health()["leases"]["state"] == "ok", 10)
        for _ in range(20):  # two TTLs after the return: the leases are renewed, not lost
            assert rec.active == set(NAMES), rec.events
            await asyncio.sleep(0.1)
        after = c.health()["leases"]
        await c.stop()
        return down, after, rec.events

    down, after, events = asyncio.run(main())
    assert ("remove", NAMES[0]) not in events[:-len(NAMES)]  # only the final stop removed targets
    assert down["state"] == "failing" and down["held"] == len(NAMES) and "NATS" in down["error"]
    assert after["state"] == "ok" and after["held"] == len(NAMES)


def test_lease_buckets_lost_in_a_restart_are_created_again(nats_server):
    """Memory buckets (as an older version made them) do not survive a NATS restart: the next
    round creates them again (file-backed now) and the leases are taken again, collection going on."""
    async def main():
        import nats
        from nats.js.api import KeyValueConfig, StorageType
        from qstrata.collectors.leases import LEASES, MEMBERS

        nc = await nats.connect(nats_server.url)
        for name in (MEMBERS, LEASES):
            await nc.jetstream().create_key_value(KeyValueConfig(bucket=name, history=1, ttl=5.0,
                                                                 storage=StorageType.MEMORY))
        await nc.close()
        rec = Recorder()
        c = Collector(CollectOptions(config=config(NAMES), store=None, nats=nats_server.url, instance="solo"),
                      target_input=rec)
        await c.start()
        await until(lambda: rec.active == set(NAMES), 10)
        await asyncio.to_thread(nats_server.restart)
        await until(lambda: c.health()["leases"]["state"] == "failing", 5)
        await until(lambda: c.health()["leases"]["state"] == "ok", 10)
        nc = await nats.connect(nats_server.url)
        kv = await nc.jetstream().key_value(LEASES)
        holders = {name: (await kv.get(name)).value for name in NAMES}
        storage = (await kv.status()).stream_info.config.storage
        await nc.close()
        active = set(rec.active)
        await c.stop()
        return active, holders, storage, rec.events

    active, holders, storage, events = asyncio.run(main())
    assert active == set(NAMES) and ("remove", NAMES[0]) not in events[:-len(NAMES)]
    assert holders == dict.fromkeys(NAMES, b"solo")
    assert storage == "file"
