"""`qstrata agent --kme-port` as a user starts it: an agent with an empty device (`--no-twin`) has
no key source and says so (503) for every key request; only QKD agents have a KME."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from agent_processes import AgentProcess, free_port, port_open
from kme_net import KmeNetwork

QSTRATA = Path(sys.executable).with_name("qstrata")


def test_an_empty_device_has_no_key_source(tmp_path: Path) -> None:
    port = free_port()
    agent = AgentProcess("qkd", "lonely", tmp_path / "lonely", extra_args=("--no-twin", "--kme-port", str(port)))
    agent.start()
    try:
        deadline = time.monotonic() + 20
        while not port_open("127.0.0.1", port):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        net = KmeNetwork(tmp_path, names=("lonely",))
        net.agents["lonely"], net.kme_ports["lonely"] = agent, port
        sae = net.sae("lonely", "sae-x")
        for path in ("/api/v1/keys/sae-y/status", "/api/v1/keys/sae-y/enc_keys?number=1",
                     "/api/v1/keys/sae-y/dec_keys?key_ID=3f1c2b9e-0d4a-4c1e-9b7a-2a9f3e5d7c10"):
            status, body = net.curl("lonely", sae, path)
            assert status == 503 and body["message"].startswith("no key source"), (path, status, body)
    finally:
        agent.stop()


def test_only_qkd_agents_have_a_kme(tmp_path: Path) -> None:
    done = subprocess.run([str(QSTRATA), "agent", "--kind", "switch", "--name", "sw", "--state-dir", "sw",
                           "--kme-port", "0"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--kme-port" in done.stderr
    assert not (tmp_path / "sw").exists(), "nothing is written"
