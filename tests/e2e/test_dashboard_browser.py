"""The dashboard in a real browser: `qstrata up` runs the built-in network, Debian's chromium (headless,
fresh profile, no network beyond 127.0.0.1) loads the page from the collector, and the test waits on
the page's own DOM until the plots hold data and the QKD link shows ACTIVE with a non-zero key rate;
then it saves a screenshot under the test's output directory (pytest's tmp_path).

chromium is driven over the DevTools protocol on a pipe (`chromium_cdp.py`): a fixed
--virtual-time-budget never elapses while the page's event stream is open."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chromium_cdp import Browser, find_chromium

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(find_chromium() is None,
                                 reason="chromium is not installed (bash scripts/dev.sh setup installs it)")]

READY = """(() => {
  if (!document.getElementById('live')) return null;  // still loading
  const q = document.querySelector('#links tr[data-kind="qkd"]');
  const series = [...document.querySelectorAll('#plots path.series')];
  return JSON.stringify({
    live: document.getElementById('live').dataset.state,
    status: q ? q.querySelector('[data-status]').dataset.status : null,
    rate: q ? Number(q.querySelector('[data-rate]').dataset.rate || 0) : 0,
    plots: series.map(p => [p.dataset.metric, p.dataset.agent, Number(p.dataset.points)]),
    arcs: [...document.querySelectorAll('#topology path.link')].map(p => p.dataset.status),
    nodes: [...document.querySelectorAll('#topology [data-node]')].map(g => g.dataset.node),
    agents: document.querySelectorAll('#agents .badge.subscribed').length,
  });
})()"""


def _ready(doc: dict) -> bool:
    skr = [p for p in doc["plots"] if p[0] == "secret-key-rate"]
    return (doc["live"] == "live" and doc["status"] == "ACTIVE" and doc["rate"] > 0 and len(skr) == 2
            and all(p[2] >= 2 for p in doc["plots"]) and doc["agents"] == 5)


def test_dashboard_shows_the_live_network(tmp_path):
    qstrata = Path(sys.executable).with_name("qstrata")
    state = tmp_path / "up"
    proc = subprocess.Popen([str(qstrata), "up", "--state-dir", str(state), "--speed", "10", "--dashboard-port", "0",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or line.startswith(("Ctrl-C stops", "running for")):
                break
        url = json.loads((state / "endpoints.json").read_text())["collector"]["dashboard"]
        with Browser(url, width=1400, height=1000) as browser:
            last: dict = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                found = browser.evaluate(READY)
                last = json.loads(found) if found else {}
                if last and _ready(last):
                    break
                time.sleep(0.5)
            shot = browser.screenshot(tmp_path / "dashboard.png")
        assert last and _ready(last), f"the page never showed the live network: {last} (screenshot {shot})"
        assert "ACTIVE" in last["arcs"] and {"alice", "bob", "sw1", "mem-a", "mem-b"} <= set(last["nodes"])
        assert {p[0] for p in last["plots"]} == {"secret-key-rate", "effective-key-rate", "qber", "key-available",
                                                 "generation-rate", "fidelity"}
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
        print(f"screenshot: {shot}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
