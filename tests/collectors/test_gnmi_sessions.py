"""The gNMI input against real agent processes, collector in the test's event loop: an agent killed
and restarted is resubscribed within 5 s and the gap in the store is the outage; bad target
entries (unreachable, wrong password, a CA that did not sign the agent's certificate, a path the
agent does not know) each end in a clear state and one log line, never a crash or a tight retry
loop, and a fixed entry is retried as soon as the file changes; and each reason says what happened."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from collector_servers import HOST, free_port
from qstrata.collectors.app import CollectOptions, Collector
from qstrata.collectors.config import load
from qstrata.collectors.session import RetryPolicy
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
    assert states["unreachable"][0] == "backoff" and "connection refused" in states["unreachable"][1]
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


def start_gateway(state: Path) -> tuple[subprocess.Popen, dict]:
    """`qstrata up --bare`: every agent behind one gNMI port, told apart by prefix.target."""
    proc = subprocess.Popen([str(Path(sys.executable).with_name("qstrata")), "up", "--bare", "--no-collector",
                             "--no-dashboard", "-q", "--state-dir", str(state)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (state / "endpoints.json").exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("qstrata up --bare did not start")
        time.sleep(0.1)
    endpoints = json.loads((state / "endpoints.json").read_text())
    return proc, next(a for a in endpoints["agents"] if a["name"] == "alice")


def test_the_reason_says_what_happened(tmp_path, agents):
    """Each way a target cannot be collected, against real agent processes, in its own words:
    nothing listening (refused), an agent that takes the connection but does not answer (stopped:
    timed out, on connecting and on an established stream), a stream dropped by a killed agent
    (lost, then refused), TLS against plain text and plain text against TLS (mismatch, and which
    side), a gateway that serves no such target (unknown target). The unreachable alarm carries
    the reason and clears when the agent answers again."""
    a = agents("mem-a", wait=False)
    b = agents("mem-b", insecure=True, wait=False)
    c = agents("mem-c", wait=False)
    gateway, alice = start_gateway(tmp_path / "up")
    for agent in (a, b, c):
        agent.wait_ready()
    os.kill(c.proc.pid, signal.SIGSTOP)  # takes connections (the kernel does), answers nothing
    qfs = "subscriptions: [{paths: [/qstrata-qfs:qfs-node], mode: sample, sample-interval: 1s}]"
    closed = free_port()
    entries = {
        "refused": f"{{name: refused, address: '{HOST}:{closed}', username: u, password: p, {qfs}}}",
        "stopped": f"{{name: stopped, address: '{HOST}:{c.port}', credentials-file: '{c.credentials}', {qfs}}}",
        "plain-to-tls": f"{{name: plain-to-tls, address: '{HOST}:{a.port}', credentials-file: '{a.credentials}', "
                        f"insecure: true, {qfs}}}",
        "tls-to-plain": f"{{name: tls-to-plain, address: '{HOST}:{b.port}', credentials-file: '{b.credentials}', "
                        f"tls-ca: '{a.state_dir / 'gnmi' / 'ca.pem'}', {qfs}}}",
        "unknown-target": f"{{name: unknown-target, address: '{HOST}:{alice['gnmi']['port']}', "
                          f"credentials-file: '{alice['credentials']}', tls-ca: '{alice['gnmi']['ca']}', "
                          f"gnmi-target: nobody, {qfs}}}",
    }
    cfg = tmp_path / "collector.yaml"
    cfg.write_text("targets:\n" + a.target_yaml("1s") + "".join(f"  - {e}\n" for e in entries.values())
                   + "alarms: [{name: agent-unreachable, unreachable-for: 1s, severity: CRITICAL, targets: [mem-a]}]\n")
    policy = RetryPolicy(connect_timeout=1.0, keepalive=1.0, keepalive_timeout=1.0, maximum=1.0)

    async def main() -> tuple[dict, list[str], list]:
        c1 = Collector(CollectOptions(config=load(cfg), store=None, instance="c1", retry=policy))
        reasons: list[str] = []  # every status mem-a reported, in order
        report = c1.pipeline.target_status

        def record(status):
            if status.target == "mem-a" and (not reasons or reasons[-1] != status.reason):
                reasons.append(status.reason)
            report(status)

        c1.pipeline.target_status = record
        await c1.start()
        status = c1.pipeline.targets
        try:
            await until(lambda: all(n in status and status[n].reason for n in entries), 15, "every reason")
            await until(lambda: "mem-a" in status and status["mem-a"].synced, 10, "mem-a subscribed")
            first = {n: status[n].reason for n in entries}
            os.kill(a.proc.pid, signal.SIGSTOP)
            await until(lambda: c1.pipeline.active_alarms, 15, "agent-unreachable raised for the stopped mem-a")
            (alarm,) = c1.pipeline.active_alarms.values()
            os.kill(a.proc.pid, signal.SIGCONT)
            await until(lambda: not c1.pipeline.active_alarms, 15, "agent-unreachable cleared")
            await until(lambda: status["mem-a"].synced, 10, "mem-a back")
            a.kill()
            await until(lambda: reasons[-1].startswith("connection refused"), 10, "mem-a refused after the kill")
            return first, reasons, [alarm, *(e for _, e in c1.pipeline.events_since(0))]
        finally:
            for agent in (a, c):
                if agent.proc.poll() is None:
                    os.kill(agent.proc.pid, signal.SIGCONT)
            await c1.stop()

    try:
        first, reasons, alarms = asyncio.run(main())
    finally:
        gateway.terminate()
        gateway.wait(30)
    print(first, reasons, sep="\n")
    assert first["refused"] == f"connection refused: nothing listens on {HOST}:{closed} (is the agent running?)"
    assert first["stopped"] == (f"timed out: {HOST}:{c.port} took the connection but did not answer within 1 s "
                                "(is the agent stopped or overloaded?)")
    assert first["plain-to-tls"].startswith("TLS mismatch: the collector speaks plain text, the target serves TLS "
                                            "on this port")
    assert first["tls-to-plain"].startswith("TLS mismatch: the collector speaks TLS, the target does not speak TLS")
    assert first["unknown-target"] == (f"unknown target 'nobody' at {HOST}:{alice['gnmi']['port']} "
                                       "(it serves other targets: check gnmi-target)")
    for reason in first.values():  # nothing is a client certificate problem here
        assert "client certificate" not in reason
    raised, *events = alarms
    assert raised.text.startswith("agent-unreachable: mem-a unreachable for ")
    assert "timed out: " in raised.text, raised.text
    assert [(e.rule, e.state) for e in events] == [("agent-unreachable", "raised"), ("agent-unreachable", "cleared")]
    stop = reasons.index(next(r for r in reasons if r.startswith("timed out: the agent stopped answering")))
    kill = reasons.index(next(r for r in reasons[stop + 1:] if r.startswith("connection lost")))
    assert reasons[-1].startswith("connection refused") and kill < len(reasons) - 1, reasons
    assert not any("client certificate" in r or "TLS" in r for r in reasons), reasons
