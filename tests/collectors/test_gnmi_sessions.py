"""The gNMI input against real agent processes, collector in the test's event loop: an agent killed
and restarted is resubscribed within 5 s and the gap in the store is the outage; bad target
entries (unreachable, wrong password, a CA that did not sign the agent's certificate, a path the
agent does not know) each end in a clear state and one log line, never a crash or a tight retry
loop, and a fixed entry is retried as soon as the file changes."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from collector_servers import HOST, free_port
from qstrata.collectors.app import CollectOptions, Collector
from qstrata.collectors.config import load
from qstrata.collectors.store import StoreReader

NS = 1_000_000_000


async def until(predicate, timeout: float, what: str) -> float:
    """Poll `predicate` every 20 ms; returns time.monotonic() when it held."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic()


def occupancy_stamps(db: Path, source: str) -> list[int]:
    reader = StoreReader(db)
    try:
        rows = reader.series(name="*memories_memory_occupancy", source=source)
        assert rows, "no occupancy series stored"
        return sorted(ts for _, ts, _ in reader.samples(rows[:1], 0, 2**63 - 1))
    finally:
        reader.close()


def test_agent_killed_and_restarted_is_resubscribed_and_the_gap_is_the_outage(tmp_path, agents):
    agent = agents("mem-a")
    cfg = tmp_path / "collector.yaml"
    cfg.write_text("targets:\n" + agent.target_yaml("500ms"))
    db = tmp_path / "c.db"

    async def main() -> dict:
        c = Collector(CollectOptions(config=load(cfg), store=f"sqlite:{db}", instance="c1"))
        await c.start()
        status = c.pipeline.targets
        try:
            await until(lambda: "mem-a" in status and status["mem-a"].synced, 15, "first sync")
            await asyncio.sleep(2.0)
            kill_ns = time.time_ns()
            agent.kill()
            lost = await until(lambda: not status["mem-a"].reachable, 5, "loss noticed")
            lost_reason = status["mem-a"].reason
            await asyncio.sleep(2.0)
            down_reason = status["mem-a"].reason
            agent.start(wait=False)
            ready = await asyncio.to_thread(agent.wait_ready)
            back = await until(lambda: status["mem-a"].synced, 10, "resubscribed")
            back_ns = time.time_ns()
            await asyncio.sleep(2.0)
            s = status["mem-a"]
            return {"noticed": lost, "ready": ready, "back": back, "kill_ns": kill_ns, "back_ns": back_ns,
                    "reconnects": s.reconnects, "state": s.state, "lost": lost_reason, "down": down_reason}
        finally:
            await c.stop()

    r = asyncio.run(main())
    assert r["back"] - r["ready"] < 5.0, r          # resubscribed within 5 s of the agent serving again
    assert r["reconnects"] == 1 and r["state"] == "subscribed"
    # a stream that was up and is cut is a lost connection, and then a refused one: not TLS (issue 17)
    assert r["lost"].startswith("connection lost") and "TLS" not in r["lost"], r["lost"]
    assert "refused" in r["down"].lower() and "TLS" not in r["down"], r["down"]
    stamps = occupancy_stamps(db, "mem-a")
    gaps = [(b - a) / NS for a, b in zip(stamps, stamps[1:], strict=False)]
    outage = (r["back_ns"] - r["kill_ns"]) / NS
    biggest = max(gaps)
    # one gap, as long as the outage (within one tick of the twin's clock, which stamps samples in
    # whole simulated seconds); every other gap is one tick
    assert abs(biggest - outage) <= 1.05, (biggest, outage, gaps)
    assert sorted(gaps)[-2] < 1.05, gaps
    print(f"outage {outage:.2f} s, gap in the store {biggest:.2f} s, resubscribed {r['back'] - r['ready']:.2f} s "
          f"after the agent served again")


def test_bad_targets_fail_clearly_without_a_tight_loop(tmp_path, agents, caplog):
    a = agents("mem-a", wait=False)
    b = agents("mem-b", wait=False)
    a.wait_ready()
    b.wait_ready()
    ca_a = a.state_dir / "gnmi" / "ca.pem"
    qfs = "subscriptions: [{paths: [/qstrata-qfs:qfs-node], mode: sample, sample-interval: 1s}]"
    good = a.target_yaml("1s")
    wrong = (f"  - {{name: wrong-password, address: '{HOST}:{a.port}', username: admin, password: nope, "
             f"tls-ca: '{ca_a}', {qfs}}}\n")
    entries = {
        "unreachable": f"  - {{name: unreachable, address: '{HOST}:{free_port()}', username: u, password: p, {qfs}}}\n",
        "bad-ca": f"  - {{name: bad-ca, address: '{HOST}:{b.port}', credentials-file: '{b.credentials}', "
                  f"tls-ca: '{ca_a}', {qfs}}}\n",
        "unknown-path": f"  - {{name: unknown-path, address: '{HOST}:{a.port}', credentials-file: '{a.credentials}', "
                        f"subscriptions: [/qstrata-qfs:qfs-node/no-such-leaf]}}\n",
    }
    cfg = tmp_path / "collector.yaml"
    cfg.write_text("targets:\n" + good + wrong + "".join(entries.values()))
    caplog.set_level(logging.INFO, logger="qstrata.collectors")

    async def main() -> tuple[dict, dict, float]:
        c = Collector(CollectOptions(config=load(cfg), store=None, instance="c1"))
        await c.start()
        status = c.pipeline.targets
        try:
            names = ("mem-a", "wrong-password", *entries)
            await until(lambda: all(n in status and status[n].state != "connecting" for n in names), 15, "states")
            await until(lambda: status["mem-a"].synced, 10, "the good target syncs")
            await asyncio.sleep(4.0)  # time for a tight loop to show
            states = {n: (status[n].state, status[n].reason, c.target_input.sessions[n].attempts) for n in names}
            # fix the password in the file: retried at once, not after the 60 s failed wait
            password = __import__("json").loads(a.credentials.read_text())["password"]
            t0 = time.monotonic()
            cfg.write_text("targets:\n" + good + wrong.replace("password: nope", f"password: '{password}'")
                           + "".join(entries.values()))
            fixed = await until(lambda: status["wrong-password"].synced, 10, "fixed entry subscribed") - t0
            health = c.health()
        finally:
            await c.stop()
        return states, health, fixed

    states, health, fixed = asyncio.run(main())
    assert states["mem-a"][0] == "subscribed"
    assert states["unreachable"][0] == "backoff" and "unreachable" in states["unreachable"][1]
    assert 2 <= states["unreachable"][2] <= 12, states          # backing off, not spinning
    assert states["wrong-password"][:2] == ("failed", "login refused: wrong username or password")
    assert states["bad-ca"][0] == "failed" and "TLS handshake failed" in states["bad-ca"][1]
    assert states["unknown-path"][0] == "failed" and "INVALID_ARGUMENT" in states["unknown-path"][1]
    for name in ("wrong-password", "bad-ca", "unknown-path"):
        assert states[name][2] == 1, states                       # failed: not retried within 60 s
    assert fixed < 3.0
    assert health["targets"]["wrong-password"]["reachable"] is True
    text = caplog.text
    for name in ("wrong-password", "bad-ca", "unknown-path"):
        assert f"target {name}: " in text and "not retried for 60 s" in text
    assert "Traceback" not in text
    print({n: s[1] for n, s in states.items()})
