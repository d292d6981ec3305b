"""`qstrata collect --targets FILE` as a process: serves Prometheus and northbound gNMI, reports an
unreachable gNMI target and backs off, follows edits of its file, stops cleanly on SIGTERM with
its store closed."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from collector_servers import HOST, free_port

QSTRATA = Path(sys.executable).with_name("qstrata")


@contextlib.contextmanager
def collector(log: Path, *args: str, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """`qstrata collect ARGS`, its output in `log`; SIGTERM and waited for when the block ends."""
    with open(log, "w") as out:
        proc = subprocess.Popen([str(QSTRATA), "collect", *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def wait_for_line(log: Path, text: str, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while text not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)


def test_collect_runs_follows_its_file_and_stops_cleanly(tmp_path):
    cfg = tmp_path / "collector.yaml"
    cfg.write_text("targets:\n  - {name: alice, address: '127.0.0.1:9', kind: qkd}\n"
                   "alarms:\n  - {name: down, unreachable-for: 30s}\n")
    port, gnmi_port = free_port(), free_port()
    log = tmp_path / "collect.log"
    with collector(log, "--targets", str(cfg), "--store", f"sqlite:{tmp_path}/c.db", "--prometheus", f"{HOST}:{port}",
                   "--gnmi-port", str(gnmi_port), "--state-dir", str(tmp_path / "cst"), "--instance", "c1") as proc:
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=2) as resp:
                    text = resp.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert 'qstrata_collector_series{source="c1"}' in text
        time.sleep(0.3)
        cfg.write_text("targets:\n  - {name: alice, address: '127.0.0.1:9', kind: qkd}\n"
                       "  - {name: bob, address: '127.0.0.1:10', kind: qkd}\n")
        wait_for_line(log, "target bob", proc, 10)
    output = log.read_text()
    assert proc.returncode == 0, output
    assert "target alice: connection refused: nothing listens on 127.0.0.1:9" in output and "retrying in" in output
    assert "target bob: connection refused: nothing listens on 127.0.0.1:10" in output
    assert f"northbound gNMI on 127.0.0.1:{gnmi_port}" in output
    assert (tmp_path / "cst" / "credentials.json").exists()
    assert "configuration reloaded" in output and "Traceback" not in output
    q = subprocess.run([str(QSTRATA), "query", "series", "--store", f"sqlite:{tmp_path}/c.db"], capture_output=True,
                       text=True)
    assert q.returncode == 0 and q.stdout.startswith("name")


def test_a_file_with_no_target_is_said_and_followed(tmp_path):
    """An empty collector file starts (it is watched: targets may come), but says it collects nothing."""
    cfg = tmp_path / "collector.yaml"
    cfg.write_text("")
    log = tmp_path / "collect.log"
    with collector(log, "--targets", "collector.yaml", "--store", "none", cwd=tmp_path) as proc:
        wait_for_line(log, "names no target", proc, 20)
        cfg.write_text("targets:\n  - {name: alice, address: '127.0.0.1:9', kind: qkd}\n")
        wait_for_line(log, "target alice: connection refused", proc, 20)
    output = log.read_text()
    assert proc.returncode == 0, output
    assert ("collector.yaml names no target: nothing is collected until targets are added to it (it is watched)"
            in output), output
    assert "target alice: connection refused" in output and "Traceback" not in output


def test_sigterm_with_nats_unreachable_is_clean_and_counts_what_was_not_published(tmp_path, nats_server, agents):
    """NATS goes away while the collector publishes an agent's updates (every 0.2 s) to it;
    SIGTERM then ends the collector within seconds, exit 0, no traceback, one line saying how many
    messages could not be published."""
    agent = agents("mem-a", insecure=True)
    cfg = tmp_path / "collector.yaml"
    cfg.write_text("targets:\n" + agent.target_yaml("200ms"))
    log = tmp_path / "collect.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(QSTRATA), "collect", "--targets", str(cfg), "--store", "none",
                                 "--nats", nats_server.url, "--instance", "c1"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while "target mem-a: subscribed" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "nats: publishing to" in log.read_text(), log.read_text()
        nats_server.stop(signal.SIGKILL)
        time.sleep(2.5)  # the agent's updates keep coming: messages queue up
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    output = log.read_text()
    assert proc.returncode == 0, output
    assert "Traceback" not in output and "RuntimeError" not in output, output
    (line,) = [x for x in output.splitlines() if "could not be published" in x]
    assert int(line.split("nats: ", 1)[1].split()[0]) > 0, line
    assert took < 10, (took, output)
    # each connection says once which it is when NATS goes; closing them is no outage to report
    for purpose in ("output", "leases"):
        said = [x for x in output.splitlines() if f"NATS {nats_server.url} ({purpose}): disconnected" in x]
        assert len(said) == 1, (purpose, output)
