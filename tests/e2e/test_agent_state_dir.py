"""An agent's state directory as a careless user may hand it over: one another agent is running
on, or one another kind of agent left behind. Each is one line and exit 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent_processes import AgentProcess

QSTRATA = Path(sys.executable).with_name("qstrata")


def run_agent(cwd: Path, kind: str, state_dir: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(QSTRATA), "agent", "--kind", kind, "--name", "x", "--state-dir", state_dir,
                           "--netconf-port", "0"], cwd=cwd, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_a_running_agents_folder_and_another_kinds_folder_are_refused(tmp_path: Path) -> None:
    switch = AgentProcess("switch", "sw1", tmp_path / "st" / "sw1")
    switch.start()
    assert switch.process is not None
    try:
        second = run_agent(tmp_path, "switch", "st/sw1")
        assert second.returncode == 2, second.stdout + second.stderr
        assert second.stderr.strip().endswith(f"qstrata agent: st/sw1 is in use by another agent (pid "
                                              f"{switch.process.pid}): stop it first, or give another --state-dir")
        assert "Traceback" not in second.stderr
    finally:
        switch.stop()
    running = (tmp_path / "st" / "sw1" / "datastore").rglob("*")
    saved = {p: p.read_bytes() for p in running if p.is_file()}
    other = run_agent(tmp_path, "memory", "st/sw1")
    assert other.returncode == 2, other.stdout + other.stderr
    assert "qstrata agent: st/sw1: its saved configuration does not fit a memory agent" in other.stderr, other.stderr
    assert "another kind of agent?" in other.stderr and "Traceback" not in other.stderr
    assert {p: p.read_bytes() for p in saved} == saved
