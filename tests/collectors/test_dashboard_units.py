"""The dashboard's pure parts, table-driven: query parameters, the state delta, the topology graph,
the shared link view, and the store's downsampling that `/api/series` and `qstrata query --step` use."""

from __future__ import annotations

import json

import pytest
from qstrata.collectors.dashboard.api import delta, resolve_link
from qstrata.collectors.dashboard.graph import GraphError, graph_of, load_graph
from qstrata.collectors.dashboard.http import HttpError, Request, is_loopback_host, sse_event
from qstrata.collectors.dashboard.server import INITIAL_MARK, embed_json
from qstrata.collectors.model import Batch, Series
from qstrata.collectors.store import StoreReader, StoreWriter
from qstrata.collectors.views import cross_connects, link_rows


def test_query_parameters_and_repeats_refused():
    r = Request("GET", "/api/series", {"link": ["a b"], "kind": ["qkd"], "span": ["1m", "2m"]})
    assert r.param("link") == "a b" and r.param("kind") == "qkd" and r.param("absent", "d") == "d"
    with pytest.raises(HttpError) as exc:
        r.param("span")
    assert exc.value.status == 400


def test_embedded_state_cannot_end_its_script_element():
    doc = {"name": "</script><script>alert(1)</script>", "note": "<!-- x", "n": [1.5, None]}
    page = embed_json(b"<body>" + INITIAL_MARK + b"<script src=app.js></script></body>", doc)
    head, _, rest = page.partition(b'<script id="initial-state" type="application/json">')
    data, _, tail = rest.partition(b"</script>")
    assert head == b"<body>" and tail == b"<script src=app.js></script></body>"
    assert b"<" not in data and json.loads(data) == doc


def test_sse_event_is_one_line_of_json():
    raw = sse_event("delta", {"a": [1, "x\ny"]})
    assert raw.startswith(b"event: delta\ndata: ") and raw.endswith(b"\n\n") and raw.count(b"\n") == 3
    assert json.loads(raw.split(b"data: ")[1]) == {"a": [1, "x\ny"]}


def _state(links=None, agents=None, alarms=(), now=1):
    return {"now_ns": now, "links": links or {}, "agents": agents or {}, "alarms": list(alarms), "switches": {},
            "collector": {"ingested": 0}}


def test_delta_sends_only_what_changed():
    old = _state({"a": {"rate": 1}, "b": {"rate": 2}}, {"x": {"reachable": True}})
    assert delta(None, old) is old
    assert delta(old, _state({"a": {"rate": 1}, "b": {"rate": 2}}, {"x": {"reachable": True}}, now=2)) is None
    d = delta(old, _state({"a": {"rate": 5}, "c": {"rate": 0}}, {"x": {"reachable": True}}, [{"id": 1}], now=3))
    assert d == {"links": {"a": {"rate": 5}, "c": {"rate": 0}, "b": None}, "alarms": [{"id": 1}], "now_ns": 3}


IDS = {"5b1f0c3e-9a39-4c55-8c0e-2d7f3a6b9e01", "5b1f0c3e-0000-4c55-8c0e-2d7f3a6b9e01", "0e7a1c55-3b2d-4f6a-9d8e-1a2b3c4d5e6f",
       "5b1f"}


@pytest.mark.parametrize("given,found", [
    ("0e7a1c55-3b2d-4f6a-9d8e-1a2b3c4d5e6f", "0e7a1c55-3b2d-4f6a-9d8e-1a2b3c4d5e6f"),  # the id itself
    ("0e7a1c55", "0e7a1c55-3b2d-4f6a-9d8e-1a2b3c4d5e6f"),  # the short id the page shows
    ("0E7A", "0e7a1c55-3b2d-4f6a-9d8e-1a2b3c4d5e6f"),
    ("5b1f0c3e-9", "5b1f0c3e-9a39-4c55-8c0e-2d7f3a6b9e01"),
    ("5b1f", "5b1f"),  # an id that is also the start of others is still itself
    ("5b1f0c3e", (400, "is the start of 2 qkd link ids (5b1f0c3e-0000-")),
    ("ffff", (404, "no qkd link has the id 'ffff'")),
])
def test_link_id_or_a_unique_prefix(given, found):
    if isinstance(found, str):
        assert resolve_link(given, IDS, "qkd") == found
    else:
        with pytest.raises(HttpError) as exc:
            resolve_link(given, IDS, "qkd")
        assert exc.value.status == found[0] and found[1] in exc.value.message


def test_graph_from_a_topology_document_and_its_errors(tmp_path):
    g = graph_of({"name": "n", "nodes": [{"name": "a", "kind": "qkd", "location": "Lab"}, {"name": "s", "kind": "switch"}],
                  "fibres": [{"id": "f", "length_km": 2, "a": {"device": "a", "port": 1},
                              "b": {"device": "s", "port": 3}}]}, "t.yaml")
    assert [n.name for n in g.nodes] == ["a", "s"] and g.fibres[0].length_km == 2.0
    assert g.to_json()["fibres"][0]["b"] == {"device": "s", "port": 3}
    with pytest.raises(GraphError, match=r"t.yaml: fibres\[0\].a.port: wants an integer"):
        graph_of({"fibres": [{"id": "f", "a": {"device": "a", "port": "x"}, "b": {"device": "s", "port": 1}}]}, "t.yaml")
    with pytest.raises(GraphError, match="not a topology"):
        graph_of(["x"], "t.yaml")
    (tmp_path / "bad.yaml").write_text("nodes: [")
    with pytest.raises(GraphError, match="bad.yaml: not JSON/YAML"):
        load_graph(tmp_path / "bad.yaml")
    with pytest.raises(GraphError, match="missing.yaml"):
        load_graph(tmp_path / "missing.yaml")


def test_graph_from_an_endpoints_file_follows_its_topology(tmp_path):
    (tmp_path / "topo.yaml").write_text("name: lab\nnodes: [{name: a, kind: qkd}]\nfibres: []\n")
    (tmp_path / "endpoints.json").write_text(json.dumps({"network": "lab", "topology": "topo.yaml", "agents": []}))
    assert [n.name for n in load_graph(tmp_path / "endpoints.json").nodes] == ["a"]
    (tmp_path / "none.json").write_text(json.dumps({"agents": []}))
    with pytest.raises(GraphError, match="names no topology"):
        load_graph(tmp_path / "none.json")


class _S:
    def __init__(self, target, path, value, ts=5):
        self.target, self.path, self.value, self.ts = target, path, value, ts


TEL = "/qstrata-telemetry:telemetry"


def test_link_rows_and_cross_connects_from_series():
    q = f"{TEL}/qkd-links/qkd-link[node='n1'][link-id='L']"
    rows = link_rows([
        _S("alice", q + "/status", "etsi-qkd-node-types:ACTIVE", 7), _S("alice", q + "/secret-key-rate", 1000, 9),
        _S("alice", q + "/qber", 0.01), _S("alice", q + "/unknown-leaf", 3),
        _S("mem-a", f"{TEL}/qfs-links/qfs-link[node='m'][link-id='E']/fidelity", 0.9),
        _S("sw1", "/optical-switch:cross-connects/pair[ingress='1']/egress", 9),
    ])
    assert [(r.kind, r.link_id, r.agent) for r in rows] == [("qfs", "E", "mem-a"), ("qkd", "L", "alice")]
    qkd = rows[1]
    assert (qkd.status, qkd.rate, qkd.qber, qkd.node, qkd.updated_ns) == ("ACTIVE", 1000.0, 0.01, "n1", 9)
    assert cross_connects([_S("sw1", "/optical-switch:cross-connects/pair[ingress='1']/egress", 9),
                           _S("sw1", "/optical-switch:cross-connects/pair[ingress='2']/egress", None)]) == {"sw1": {1: 9}}


def test_store_downsamples_to_one_average_per_step(tmp_path):
    path = tmp_path / "s.db"
    writer = StoreWriter(path)
    s = Series(1, "alice", f"{TEL}/x", "/x", "x", (), counter=False, numeric=True, resource="")
    t = Series(2, "alice", f"{TEL}/y", "/y", "y", (), counter=False, numeric=False, resource="")
    batch = Batch()
    for i in range(10):  # 0..9 s, values 0..9
        batch.add(s, float(i), i * 10**9)
        batch.add(t, "text", i * 10**9)
    writer.write([batch])
    writer.close()
    reader = StoreReader(path)
    try:
        rows = reader.series(name="x")
        got = [(ts, v) for _, ts, v in reader.samples(rows, 0, 10 * 10**9, step_ns=4 * 10**9)]
        assert got == [(0, 1.5), (4 * 10**9, 5.5), (8 * 10**9, 8.5)]
        assert list(reader.samples(reader.series(name="y"), 0, 10**10, step_ns=10**9)) == []  # numbers only
        assert len(list(reader.samples(rows, 0, 10**10, step_ns=10**9, limit=3))) == 3
    finally:
        reader.close()


@pytest.mark.parametrize("host,ok", [
    ("localhost:8765", True), ("127.0.0.1:8765", True), ("127.0.0.1", True), ("[::1]:8765", True),
    ("app.localhost", True), ("evil.example:8765", False), ("10.0.0.1:8765", False), ("", False),
    ("127.0.0.1.evil.example:8765", False), ("127.attacker.example", False), ("127.0.0.2", True),
    ("localhost.evil.example", False), ("[::ffff:10.0.0.1]", False),
])
def test_loopback_host_header(host, ok):
    assert is_loopback_host(host) is ok


KME_A, KME_B, KME_C = ("aaaaaaaa-0000-4000-8000-00000000000a", "bbbbbbbb-0000-4000-8000-00000000000b",
                       "cccccccc-0000-4000-8000-00000000000c")
L_AB, L_BC = "11111111-0000-4000-8000-0000000000ab", "11111111-0000-4000-8000-0000000000bc"
RELAYED = "6ba3ee58-1c2d-4e5f-8a9b-0c1d2e3f4a02"


def _kme_updates(t: int, start: int = 0) -> list:
    """What alice (the master's KME), bob (the trusted node) and charlie (the slave's) report at
    second `t` (after `start`, Unix seconds) of a relayed application delivering 100 keys of 256
    bits a second."""
    from qstrata.collectors.model import Update

    qkd, ss = "/etsi-qkd-sdn-node:qkd_node", "/qstrata-ss:service-stratum/kme"
    app = f"{qkd}/qkd_applications/qkd_app[app_id='{RELAYED}']"
    ts, keys = (start + t) * 1_000_000_000, 100 * t
    out = []
    for agent, kme in (("alice", KME_A), ("bob", KME_B), ("charlie", KME_C)):
        out.append(Update(agent, f"{qkd}/qkdn_id", kme, ts))
    for agent in ("alice", "charlie"):
        out += [Update(agent, f"{app}/server_app_id", "sae-alice", ts),
                Update(agent, f"{app}/client_app_id", '["sae-charlie"]', ts),
                Update(agent, f"{app}/qstrata-ss:key-delivery/keys-delivered", keys, ts),
                Update(agent, f"{app}/qstrata-ss:key-delivery/bits-delivered", keys * 256, ts),
                Update(agent, f"{app}/qstrata-ss:key-delivery/requests", 10 * t, ts),
                Update(agent, f"{app}/qstrata-ss:key-delivery/latency-sum", 20_000 * t, ts)]
    out.append(Update("alice", f"{qkd}/qkd_applications/qkd_app[app_id='{L_AB}']/server_app_id", "vpn", ts))  # no 014
    out += [Update("alice", f"{app}/qstrata-ss:key-delivery/route", json.dumps([KME_A, KME_B, KME_C]), ts),
            Update("alice", f"{app}/qstrata-ss:key-delivery/refused[reason='rate-limited']/count", 2, ts),
            Update("charlie", f"{app}/qstrata-ss:key-delivery/refused[reason='rate-limited']/count", 1, ts),
            Update("charlie", f"{app}/qstrata-ss:key-delivery/refused[reason='unauthorized']/count", 4, ts),
            Update("alice", f"{ss}/key-relay/hop[qkdl-id='{L_AB}']/next-hop-kme", KME_B, ts),
            Update("bob", f"{ss}/key-relay/hop[qkdl-id='{L_BC}']/next-hop-kme", KME_C, ts)]
    for agent, link, skr in (("alice", L_AB, 4_000_000), ("bob", L_AB, 4_000_100), ("bob", L_BC, 900_000),
                             ("charlie", L_BC, 900_100)):
        out.append(Update(agent, f"{qkd}/qkd_links/qkd_link[qkdl_id='{link}']/qkdl_performance/skr", skr, ts))
    return out


def test_delivery_rows_and_history_of_an_application(tmp_path):
    """One row per application a KME serves (an ETSI application without key delivery has none):
    the master's KME's figures (it reports the route), refusals of every KME, the route by agent
    name, its hops' links, and key made = the smallest secret key rate on it; `/api/delivery` reads
    the delivered bit rate and each hop's secret key rate from the store."""
    import asyncio
    import time

    from qstrata.collectors.dashboard.api import DashboardData
    from qstrata.collectors.outputs.sqlite import SqliteOutput
    from qstrata.collectors.pipeline import Pipeline
    from qstrata.collectors.views import delivery_rows

    store = tmp_path / "c.db"

    async def main():
        pipeline = Pipeline([SqliteOutput(store)])
        await pipeline.start()
        start = int(time.time()) - 60
        for t in range(1, 6):
            pipeline.ingest(_kme_updates(t, start))
        (row,) = delivery_rows(pipeline.registry)
        assert (row.app_id, row.master, row.slaves, row.agent) == (RELAYED, "sae-alice", ["sae-charlie"], "alice")
        assert row.route == ["alice", "bob", "charlie"] and row.hops == [["alice", L_AB], ["bob", L_BC]]
        assert (row.keys_per_s, row.bits_per_s, row.latency_s) == (100.0, 25600.0, 0.002)
        assert (row.delivered_keys, row.requests) == (500.0, 50.0)
        assert row.refused == {"rate-limited": 3.0, "unauthorized": 4.0} and row.key_rate == 900_000
        data = DashboardData(pipeline, store, None)
        assert data.state()["apps"][RELAYED]["route"] == ["alice", "bob", "charlie"]
        await pipeline.stop()
        request = Request("GET", "/api/delivery", {"app": [RELAYED[:8]], "span": ["5m"], "points": ["300"]})
        doc = await data.delivery(request)
        bad = [Request("GET", "/api/delivery", q) for q in ({}, {"app": ["ffff"]})]
        errors = []
        for r in bad:
            try:
                await data.delivery(r)
            except HttpError as exc:
                errors.append((exc.status, exc.message))
        data.close()
        return doc, errors

    doc, errors = asyncio.run(main())
    lines = {(s["metric"], s["agent"], s["link"]): [v for _, v in s["points"]] for s in doc["series"]}
    assert doc["app"] == RELAYED
    assert lines == {("delivered-bits-per-second", "alice", None): [25600] * 4,
                     ("secret-key-rate", "alice", L_AB): [4_000_000] * 5,
                     ("secret-key-rate", "bob", L_BC): [900_000] * 5}
    assert errors == [(400, "app: give the application's id (?app=ID)"),
                      (404, "app: no application has the id 'ffff' or an id starting with it")]
