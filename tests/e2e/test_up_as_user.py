"""`qstrata up` as a person runs it: from a working folder with the relative default-style state
directory, a second `up` started by mistake, a `kill -9`, a terminal (tmux) watching the table.

Each of these broke once while every other test passed (issue 17): the relative state directory
was resolved twice, a second `up` on the same folder rewrote the first one's endpoints.json, the
file was written before the collector served, and the table pushed a full frame per second into
the terminal's scrollback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

QSTRATA = Path(sys.executable).with_name("qstrata")
STATE = "state/net"  # relative, as the README's default state/up is


def start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(QSTRATA), "up", "--state-dir", STATE, "--dashboard-port", "0", *args], cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def connectable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def fetch(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status


def wait_file(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()


def run_demo(cwd: Path, state: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(QSTRATA), "demo", "--state-dir", state], cwd=cwd, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_one_network_per_state_directory(tmp_path):
    first = start(tmp_path)
    endpoints = tmp_path / STATE / "endpoints.json"
    try:
        # 1. the file appears once everything it lists serves: every entry answers at that moment
        wait_file(endpoints, first)
        doc = json.loads(endpoints.read_text())
        assert Path(doc["state_dir"]).is_absolute() and doc["pid"] == first.pid
        for agent in doc["agents"]:
            assert Path(agent["credentials"]).is_absolute()
            assert connectable(agent["netconf"]["host"], agent["netconf"]["port"]), agent
            assert connectable(agent["gnmi"]["host"], agent["gnmi"]["port"]), agent
        assert fetch(doc["collector"]["prometheus"]) == 200
        assert fetch(doc["collector"]["dashboard"] + "api/health") == 200
        written = endpoints.read_bytes()

        # 2. a second `up` on the same folder is refused at once, with the first one's pid
        began = time.monotonic()
        second = subprocess.run([str(QSTRATA), "up", "--state-dir", STATE, "--dashboard-port", "0"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert second.returncode == 2, second.stdout + second.stderr
        assert time.monotonic() - began < 10
        assert f"{STATE} is in use by another qstrata up (pid {first.pid})" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
        assert endpoints.read_bytes() == written, "the refused `up` touched the running network's endpoints.json"
        assert first.poll() is None

        # 2b. nor may a lone agent open one of its agents' folders: two writers on one KME journal
        # could hand a key_ID out twice
        journal = tmp_path / STATE / "alice" / "kme" / "kme.journal"
        before = journal.read_bytes() if journal.exists() else None
        lone = subprocess.run([str(QSTRATA), "agent", "--kind", "qkd", "--name", "alice", "--state-dir",
                               f"{STATE}/alice", "--netconf-port", "0"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        assert lone.returncode == 2, lone.stdout + lone.stderr
        assert f"{STATE}/alice is in use by another agent (pid {first.pid})" in lone.stderr, lone.stderr
        assert "Traceback" not in lone.stderr
        assert before is None or journal.read_bytes()[:len(before)] == before
        assert first.poll() is None

        # 3. `kill -9`: the lock goes with the process; the stale endpoints.json is not taken for a network
        first.kill()
        first.wait(10)
        assert endpoints.exists()
        demo = run_demo(tmp_path, STATE)
        assert demo.returncode == 2
        assert f"no network is running in {STATE}: start one with" in demo.stderr, demo.stderr

        # 4. the next `up` on that folder starts (no stale lock) and replaces the stale file
        third = start(tmp_path)
        try:
            deadline = time.monotonic() + 60
            while not (endpoints.exists() and json.loads(endpoints.read_text())["pid"] == third.pid):
                assert third.poll() is None, third.stdout.read()
                assert time.monotonic() < deadline, "the new network never wrote its endpoints.json"
                time.sleep(0.1)
            assert stop(third) == 0
            assert not endpoints.exists(), "endpoints.json outlived the network it lists"
        finally:
            if third.poll() is None:
                third.kill()
    finally:
        if first.poll() is None:
            first.kill()


def test_demo_without_a_network_says_how_to_start_one(tmp_path):
    proc = run_demo(tmp_path, "state/up")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("qstrata demo: no network is running in state/up: start one with "
                                   "`bash scripts/dev.sh run`")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is installed by scripts/dev.sh")
def test_status_table_keeps_to_its_window(tmp_path):
    """In tmux (a real terminal): the table stays on screen with the dashboard line under the
    title, the scrollback does not grow while it redraws, and Ctrl-C gives back the summary."""
    session = f"qstrata-{os.getpid()}"
    socket_name = f"qstrata-test-{os.getpid()}"
    tmux = ["tmux", "-L", socket_name]
    command = f"{QSTRATA} up --state-dir {STATE} --dashboard-port 0 --speed 5; echo EXIT=$?; sleep 60"
    subprocess.run(tmux + ["new-session", "-d", "-s", session, "-x", "110", "-y", "24", "-c", str(tmp_path),
                           command], check=True)

    def screen() -> str:
        return subprocess.run(tmux + ["capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    def history() -> int:
        return int(subprocess.run(tmux + ["display", "-p", "-t", session, "#{history_size}"], capture_output=True,
                                  text=True).stdout.strip() or 0)

    try:
        deadline = time.monotonic() + 60
        while "ACTIVE" not in screen():
            assert time.monotonic() < deadline, screen()
            time.sleep(0.5)
        at_start = history()
        time.sleep(6)  # six redraws or more
        lines = screen().splitlines()
        assert lines[0].startswith("qstrata up: "), lines[:3]
        assert lines[1].startswith("dashboard  http://127.0.0.1:"), lines[:3]
        assert any(line.startswith("endpoints  state/net/endpoints.json") for line in lines[:5]), lines[:5]
        assert any(line.startswith("AGENT ") and " KME " in line for line in lines), lines  # where the KMEs are
        assert any(line.startswith("KEY PAIR ") for line in lines), lines  # the built-in application's figures
        assert history() - at_start <= 1, f"the scrollback grew by {history() - at_start} lines in 6 s"
        assert len(lines) <= 24
        subprocess.run(tmux + ["send-keys", "-t", session, "C-c"], check=True)
        deadline = time.monotonic() + 15
        while "EXIT=" not in screen():
            assert time.monotonic() < deadline, screen()
            time.sleep(0.2)
        after = screen()
        assert "EXIT=0" in after and "qstrata up: stopped." in after, after
        assert "dashboard  http://127.0.0.1:" in after, "the start-up summary is gone from the screen"
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
