"""The dashboard's data endpoints, over HTTP, against real collectors fed by real agents on 127.0.0.1:
`qstrata up` (agents, controller, the collector with its dashboard), and a second collector started
with `qstrata collect --targets endpoints.json --dashboard` against the same network.

What is checked: the topology is the network's; the state shows the QKD link ACTIVE with a non-zero
key rate from both ends, the agents' health and the switch's cross-connects; series come from the
store exactly as `StoreReader` (the reader of `qstrata query`) downsamples them, bounded in points;
the event stream sends a snapshot then deltas of what changed; bad requests get JSON errors."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from agent_processes import stop_process
from polling import wait_until
from qstrata.collectors.store import StoreReader
from up_process import start_up

LINK = "5b1f0c3e-9a39-4c55-8c0e-2d7f3a6b9e01"
ENT = "0e7a1c55-3b2d-4f6a-9d8e-1a2b3c4d5e6f"
QSTRATA = str(Path(sys.executable).with_name("qstrata"))

pytestmark = pytest.mark.timeout(180)


def _get(url: str, timeout: float = 10) -> tuple[int, str, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), json.loads(exc.read())


def _raw(host: str, port: int, data: bytes) -> bytes:
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    state = tmp_path_factory.mktemp("dash-up")
    proc, lines = start_up(state, "--speed", "10", "--dashboard-port", "0", "--quiet")
    endpoints = json.loads((state / "endpoints.json").read_text())
    url = endpoints["collector"]["dashboard"]
    yield {"state": state, "proc": proc, "lines": lines, "endpoints": endpoints, "url": url}
    stop_process(proc)


def _active_state(url: str):
    def ready():
        status, _, doc = _get(url + "api/state")
        rows = [r for r in doc["links"].values() if r["kind"] == "qkd" and r["link_id"] == LINK]
        ok = (status == 200 and len(rows) == 2 and all(r["status"] == "ACTIVE" and (r["rate"] or 0) > 0 for r in rows)
              and any(r["kind"] == "qfs" and r["status"] == "ACTIVE" for r in doc["links"].values()))
        return doc if ok else None
    doc = wait_until(ready, 60)
    assert doc, f"the QKD link never showed ACTIVE with a key rate: {_get(url + 'api/state')[2]['links']}"
    return doc


def test_up_prints_and_lists_the_dashboard(up):
    url = up["url"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/")
    assert any(line.startswith("dashboard  http://127.0.0.1:") for line in up["lines"]), up["lines"]
    with urllib.request.urlopen(url, timeout=10) as r:
        page = r.read().decode()
    assert r.headers["Content-Type"].startswith("text/html") and "/static/app.js" in page
    markup = re.sub(r'<script id="initial-state"[^>]*>.*?</script>', "", page, flags=re.S)  # data, not markup
    assert "http" not in markup.replace("http-equiv", "").split("<body>")[1]  # nothing fetched from elsewhere
    with urllib.request.urlopen(url + "static/app.js", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/javascript") and b"EventSource" in r.read()


def test_page_embeds_the_state_for_its_first_paint(up):
    """The page carries the state and topology, so it paints the network before any request."""
    _active_state(up["url"])
    with urllib.request.urlopen(up["url"], timeout=10) as r:
        page = r.read().decode()
    assert r.headers["Cache-Control"] == "no-store"
    found = re.findall(r'<script id="initial-state" type="application/json">(.*?)</script>', page, flags=re.S)
    assert len(found) == 1, page[:500]
    doc = json.loads(found[0])
    assert {n["name"] for n in doc["topology"]["nodes"]} == {"alice", "bob", "charlie", "sw1", "mem-a", "mem-b", "mem-c"}
    assert set(doc["state"]["agents"]) == {"alice", "bob", "charlie", "sw1", "mem-a", "mem-b", "mem-c"}
    assert any(row["link_id"] == LINK for row in doc["state"]["links"].values())
    assert "<" not in found[0]  # nothing in the data can close the script element
    assert found[0] and page.index("initial-state") < page.index("/static/app.js")  # there before the script runs


def test_topology_is_the_networks(up):
    status, ctype, doc = _get(up["url"] + "api/topology")
    assert status == 200 and ctype == "application/json"
    assert doc["name"] == "qstrata-network"
    assert {(n["name"], n["kind"]) for n in doc["nodes"]} == {
        ("alice", "qkd"), ("bob", "qkd"), ("charlie", "qkd"), ("sw1", "switch"), ("mem-a", "memory"),
        ("mem-b", "memory"), ("mem-c", "memory")}
    fibres = {f["id"]: f for f in doc["fibres"]}
    assert fibres["spool-25"]["length_km"] == 25 and fibres["spool-25"]["a"] == {"device": "sw1", "port": 9}


def test_state_shows_links_agents_switches(up):
    doc = _active_state(up["url"])
    rows = {r["agent"]: r for r in doc["links"].values() if r["link_id"] == LINK}
    assert set(rows) == {"alice", "bob"}
    for r in rows.values():
        assert 0 < r["qber"] < 0.2 and r["key_available"] is not None and r["updated_ns"] > 0
    ent = [r for r in doc["links"].values() if r["link_id"] == ENT]
    assert {r["agent"] for r in ent} == {"mem-a", "mem-b"} and all(0.5 < r["fidelity"] <= 1 for r in ent)
    assert set(doc["agents"]) == {"alice", "bob", "charlie", "sw1", "mem-a", "mem-b", "mem-c"}
    assert all(a["reachable"] and a["state"] == "subscribed" and a["updates_received"] > 0
               for a in doc["agents"].values())
    pairs = wait_until(lambda: _get(up["url"] + "api/state")[2]["switches"].get("sw1"), 20)
    assert pairs and pairs.get("5") == 6, pairs
    assert doc["collector"]["instance"] == "up-collector" and "sqlite" in doc["collector"]["outputs"]


def test_state_shows_entangled_pairs_delivered(up):
    """The memory node up's entangled-state application asks (mem-a) reports what its units got: pairs
    delivered, to mem-b directly and to mem-c swapped at mem-b, at or above the fidelity they asked (0.75
    and 0.6), never above a fresh NV pair's 0.9; the page has the panel that shows them."""
    def delivered():
        row = _get(up["url"] + "api/state")[2].get("pairs", {}).get("mem-a")
        return row if row and (row["pairs_delivered"] or 0) >= 4 else None

    row = wait_until(delivered, 60)
    assert row, _get(up["url"] + "api/state")[2].get("pairs")
    assert 0.6 <= row["last_fidelity"] <= 0.9 and 0.6 <= row["fidelity_mean"] <= 0.9, row
    assert row["admitted"] >= row["pairs_delivered"] and row["updated_ns"] > 0, row
    log = (up["state"] / "up.log").read_text()
    assert "pairs: mem-a -> mem-c: first unit of 1 pair(s) delivered through 1 repeater(s)" in log
    with urllib.request.urlopen(up["url"], timeout=10) as r:
        assert 'id="pairs"' in r.read().decode()


def test_series_are_the_stores_downsampled_and_bounded(up):
    _active_state(up["url"])
    url = up["url"] + f"api/series?kind=qkd&link={LINK}&span=10m&points=20"
    doc = wait_until(lambda: (d := _get(url)[2]) and all(len(s["points"]) >= 2 for s in d["series"])
                and len(d["series"]) == 8 and d, 30)
    assert doc, _get(url)[2]
    assert {(s["metric"], s["agent"]) for s in doc["series"]} == {
        (m, a) for m in ("secret-key-rate", "effective-key-rate", "qber", "key-available") for a in ("alice", "bob")}
    assert doc["step_ns"] == 30 * 10**9  # 10 min / 20 points
    for s in doc["series"]:
        assert len(s["points"]) <= 21
        assert [p[0] for p in s["points"]] == sorted(p[0] for p in s["points"])
    # the same numbers as the store's reader (`qstrata query samples --step 30s`)
    reader = StoreReader(up["state"] / "collector.db")
    try:
        row = next(r for r in reader.series(name="telemetry_qkd_links_qkd_link_qber", labels={"link_id": LINK})
                   if r.source == "alice")
        stored = [[ts // 10**6, v] for _, ts, v in reader.samples([row], doc["from_ns"], doc["to_ns"],
                                                                 step_ns=doc["step_ns"], limit=21)]
    finally:
        reader.close()
    served = next(s["points"] for s in doc["series"] if s["metric"] == "qber" and s["agent"] == "alice")
    n = min(len(served), len(stored)) - 1  # the newest step may have grown in between
    assert n >= 1 and served[:n] == stored[:n]
    qfs = _get(up["url"] + f"api/series?kind=qfs&link={ENT}&span=5m&points=10")[2]
    assert {s["metric"] for s in qfs["series"]} == {"generation-rate", "fidelity"}


def test_series_accept_the_short_link_id_the_page_shows(up):
    """The page and `qstrata up`'s table show a link's first 8 hex digits: that prefix, unique,
    names the link; a prefix of nothing is a JSON 404."""
    _active_state(up["url"])
    full = wait_until(lambda: (d := _get(up["url"] + f"api/series?kind=qkd&link={LINK}&span=10m&points=20")[2])
                 and all(s["points"] for s in d["series"]) and d, 30)
    assert full and len(full["series"]) == 8
    status, _, short = _get(up["url"] + f"api/series?kind=qkd&link={LINK[:8]}&span=10m&points=20")
    assert status == 200 and short["link"] == LINK
    assert {(s["metric"], s["agent"]) for s in short["series"]} == {(s["metric"], s["agent"]) for s in full["series"]}
    assert all(s["points"] for s in short["series"])
    status, _, qfs = _get(up["url"] + f"api/series?kind=qfs&link={ENT[:8].upper()}&span=5m&points=10")
    assert status == 200 and qfs["link"] == ENT and {s["metric"] for s in qfs["series"]} == {"generation-rate", "fidelity"}
    for query in ("kind=qkd&link=ffffffff", f"kind=qfs&link={LINK[:8]}"):  # a QKD link is no entanglement link
        status, ctype, err = _get(up["url"] + "api/series?" + query)
        assert status == 404 and ctype == "application/json" and "no q" in err["message"], err


def test_alarms_and_health(up):
    status, _, doc = _get(up["url"] + "api/alarms?span=1h")
    assert status == 200 and isinstance(doc["alarms"], list)
    for a in doc["alarms"]:
        assert {"alarm-id", "severity", "raised-time", "state", "rule"} <= set(a)
    status, _, health = _get(up["url"] + "api/health")
    assert status == 200 and set(health["targets"]) == {"alice", "bob", "charlie", "sw1", "mem-a", "mem-b", "mem-c"}
    assert health["outputs"]["dashboard"]["endpoint"] == up["url"]
    # the collector's whole view, as it logs it: what it collects and its configuration's state
    assert set(health["collecting"]) == set(health["targets"]) and health["config"]["error"] is None


def test_event_stream_sends_a_snapshot_then_deltas(up):
    request = urllib.request.Request(up["url"] + "api/events", headers={"Accept": "text/event-stream"})
    with urllib.request.urlopen(request, timeout=10) as resp:  # HTTP/1.1, chunked: urllib takes the framing off
        assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
        body, started = b"", time.monotonic()
        while (body.count(b"event: delta") < 2 or not body.endswith(b"\n\n")) and time.monotonic() - started < 10:
            body += resp.readline()
    events = [e for e in body.decode().split("\n\n") if e.startswith("event:")]
    assert events[0].startswith("event: snapshot")
    snapshot = json.loads(events[0].split("data: ", 1)[1])
    assert {"links", "apps", "pairs", "agents", "alarms", "switches", "collector", "now_ns"} <= set(snapshot)
    deltas = [json.loads(e.split("data: ", 1)[1]) for e in events[1:] if e.startswith("event: delta")]
    assert len(deltas) >= 2, body[:500]
    assert time.monotonic() - started >= 1.0  # at most one a second
    for d in deltas:  # only what changed: rows are whole, unchanged rows absent
        assert set(d) <= {"links", "apps", "pairs", "agents", "alarms", "switches", "collector", "now_ns"}
        for row in d.get("links", {}).values():
            assert row is None or {"status", "rate", "updated_ns"} <= set(row)


@pytest.mark.parametrize("query,fragment", [
    ("api/series?kind=bogus&link=x", "kind must be one of"),
    ("api/series?kind=qkd", "link"),
    (f"api/series?link={LINK}&points=5", "points must be between"),
    (f"api/series?link={LINK}&points=abc", "not an integer"),
    (f"api/series?link={LINK}&span=forever", "not a duration"),
    (f"api/series?link={LINK}&span=1s&span=2s", "given 2 times"),
    ("api/alarms?state=open", "raised or cleared"),
    # a span the store cannot count was a 500 (OverflowError in SQLite): the same bound as series
    ("api/alarms?span=999999999999999999999d", "span must be between 1s and 400d"),
    ("api/alarms?span=401d", "span must be between 1s and 400d"),
    (f"api/series?link={LINK}&span=9" + "9" * 400 + "s", "not a duration"),
])
def test_bad_parameters_are_400_with_a_message(up, query, fragment):
    status, ctype, doc = _get(up["url"] + query)
    assert status == 400 and ctype == "application/json"
    assert doc["status"] == 400 and fragment in doc["message"]


def test_unknown_paths_and_bad_requests_are_json_errors(up):
    for path in ("api/nope", "static/../collector.db", "static/nothing.js", "favicon.ico"):
        status, ctype, doc = _get(up["url"] + path)
        assert status == 404 and ctype == "application/json" and doc["message"], path
    host, port = up["url"][len("http://"):].rstrip("/").split(":")
    close = b"Connection: close\r\n"
    for request, code, as_json in ((b"POST /api/state HTTP/1.1\r\nHost: localhost\r\n" + close + b"\r\n", b"405",
                                    True),
                                   (b"GET /api/state HTTP/1.1\r\nHost: rebound.example.com\r\n" + close + b"\r\n",
                                    b"403", True),
                                   # refused by aiohttp's parser before any route: its own 400, no traceback
                                   (b"garbage\r\n\r\n", b"400", False),
                                   (b"GET /api/state HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", b"400", False)):
        reply = _raw(host, int(port), request)
        assert reply.startswith(b"HTTP/1.") and reply.split(b" ", 2)[1] == code, reply[:200]
        assert b"Traceback" not in reply and (b'"message"' in reply or not as_json), reply[:300]
    assert _get(up["url"] + "api/state")[0] == 200  # still serving


def test_collect_cli_serves_a_dashboard_with_the_endpoints_topology(up, tmp_path):
    """`qstrata collect --targets endpoints.json --dashboard 127.0.0.1:0 --store none`: the topology
    comes from the file endpoints.json names; without a store, history is a clear 503."""
    proc = subprocess.Popen([QSTRATA, "collect", "--targets", str(up["state"] / "endpoints.json"), "--store", "none",
                             "--dashboard", "127.0.0.1:0", "--instance", "dash-cli"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            if " started" in line and "dashboard http://" in line:
                url = line.split("dashboard ", 1)[1].split()[0]
        assert url and url.startswith("http://127.0.0.1:"), "no dashboard URL in the collector's log"
        topo = _get(url + "api/topology")[2]
        assert topo["name"] == "qstrata-network" and len(topo["fibres"]) == 9
        doc = wait_until(lambda: (d := _get(url + "api/state")[2]) and len(d["agents"]) == 7
                    and all(a["reachable"] for a in d["agents"].values()) and d, 20)
        assert doc and doc["collector"]["instance"] == "dash-cli"
        status, _, err = _get(url + f"api/series?link={LINK}")
        assert status == 503 and "no store" in err["message"]
    finally:
        stop_process(proc, 20)


@pytest.mark.parametrize("args,message", [
    (["--dashboard", "localhost"], "--dashboard wants HOST:PORT"),
    (["--dashboard", "127.0.0.1:0", "--topology", "/nonexistent/topology.yaml"], "/nonexistent/topology.yaml"),
])
def test_collect_cli_rejects_bad_dashboard_options(tmp_path, args, message):
    targets = tmp_path / "targets.yaml"
    targets.write_text("targets: []\n")
    result = subprocess.run([QSTRATA, "collect", "--targets", str(targets), "--store", "none", *args],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
