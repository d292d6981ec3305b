"""One `qstrata agent --restconf-port` process for a test module: the qkd agent alice with her
twin, started and waited for until its RESTCONF port accepts connections; `agent.restconf` is
its base URL. (A plain module: each test file's folder is on sys.path.)"""

from __future__ import annotations

import time
from pathlib import Path

from agent_processes import AgentProcess, free_port, port_open


def start(state_dir: Path, *extra_args: str) -> AgentProcess:
    port = free_port()
    agent = AgentProcess("qkd", "alice", state_dir, extra_args=("--restconf-port", str(port), *extra_args))
    agent.start()
    wait(agent, port)
    agent.restconf = f"https://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return agent


def wait(agent: AgentProcess, port: int | None = None, timeout: float = 20) -> None:
    """Until the RESTCONF port accepts connections (it opens after NETCONF's)."""
    port = port or int(agent.restconf.rsplit(":", 1)[1])  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.02)
