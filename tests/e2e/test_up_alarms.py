"""`qstrata up` watches its own agents: the collector it runs raises agent-unreachable (5 s, CRITICAL)
for any agent it cannot reach -- the built-in network lists the rule, and a topology whose collector
section has no unreachable rule gets it by default -- and clears it when the agent answers again.
Tested with a real agent process stopped (SIGSTOP: it keeps its port, answers nothing) and started
again (SIGCONT); the alarm says why (timed out), in the store and in up.log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from qstrata.agents.testbed.network import NETWORK_TOPOLOGY, UpOptions, check
from qstrata.agents.testbed.plan import DEFAULT_UNREACHABLE
from test_up import SPEED, start_up, stop, wait_for


def test_a_topology_without_an_unreachable_rule_gets_the_default(tmp_path):
    doc = yaml.safe_load(NETWORK_TOPOLOGY.read_text())
    doc["collector"]["alarms"] = [a for a in doc["collector"]["alarms"] if "unreachable-for" not in a]
    bare = tmp_path / "t.yaml"
    bare.write_text(yaml.safe_dump(doc))
    assert check(UpOptions(topology=bare))[2].collector.alarms[-1] == DEFAULT_UNREACHABLE
    del doc["collector"]
    bare.write_text(yaml.safe_dump(doc))
    assert check(UpOptions(topology=bare))[2].collector.alarms == (DEFAULT_UNREACHABLE,)
    own = {"name": "lost", "unreachable-for": "30s", "severity": "MINOR"}
    doc["collector"] = {"alarms": [own]}
    bare.write_text(yaml.safe_dump(doc))
    assert check(UpOptions(topology=bare))[2].collector.alarms == (own,)  # its own rule, no second one


def agent_pid(up: subprocess.Popen, name: str) -> int:
    """The process of one agent of `qstrata up --processes`."""
    for pid in subprocess.run(["pgrep", "-P", str(up.pid)], capture_output=True, text=True).stdout.split():
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if name.encode() in args:
            return int(pid)
    raise AssertionError(f"no process for agent {name}")


def test_a_stopped_agent_raises_agent_unreachable_and_its_return_clears_it(tmp_path):
    proc, _ = start_up(tmp_path, "--processes", "--bare", "--no-dashboard", "--speed", str(SPEED))
    pid = None
    try:
        store = json.loads((tmp_path / "endpoints.json").read_text())["collector"]["store"]
        def log() -> str:
            return (tmp_path / "up.log").read_text()

        assert wait_for(lambda: log().count("subscribed (") >= 5, 30), log()[-3000:]
        pid = agent_pid(proc, "mem-b")
        os.kill(pid, signal.SIGSTOP)
        stopped = time.monotonic()
        assert wait_for(lambda: "alarm raised: agent-unreachable on mem-b (CRITICAL)" in log(), 40), log()[-3000:]
        raised_after = time.monotonic() - stopped
        os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        assert wait_for(lambda: "alarm cleared: agent-unreachable on mem-b" in log(), 40), log()[-3000:]
        cleared_after = time.monotonic() - resumed

        def story() -> list[dict]:
            out = subprocess.run([str(Path(sys.executable).with_name("qstrata")), "query", "alarms", "--store",
                                  f"sqlite:{store}", "--log", "--format", "json"], capture_output=True, text=True,
                                 timeout=30)
            assert out.returncode == 0, out.stderr
            return [e for e in json.loads(out.stdout) if e["rule"] == "agent-unreachable"]

        events = wait_for(lambda: len(story()) == 2 and story(), 5) or story()
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
        assert stop(proc) == 0
    print(f"raised {raised_after:.1f} s after SIGSTOP, cleared {cleared_after:.1f} s after SIGCONT")
    assert [(e["event"], e["agent"]) for e in events] == [("raised", "mem-b"), ("cleared", "mem-b")], events
    raised, cleared = (e["detail"] for e in events)
    assert raised.startswith("agent-unreachable: mem-b unreachable for ") and "timed out" in raised, raised
    assert "client certificate" not in raised and "TLS" not in raised, raised
    assert cleared == "agent-unreachable: mem-b reachable again"
    assert all(e["agent"] == "mem-b" for e in events)  # nobody else was reported
