"""pygnmi, as telemetry users run it, against agents with their twins: capabilities, Get on the
ETSI 015, QFS and switch models, a Set that NETCONF then reads, Subscribe STREAM sampling a live
key rate and QBER, ON_CHANGE on qkdl_status when NETCONF disables the link, ONCE and POLL."""

from __future__ import annotations

import time

import pytest
from gnmi_helpers import QKD, World, link_config, wait_until
from lxml import etree

LINK = "5b1f0c3e-9a39-4c55-8c0e-2d7f3a6b9e02"
ETSI_NS = "urn:etsi:qkd:yang:etsi-qkd-node"
LINK_PATH = f"{QKD}/qkd_links/qkd_link[qkdl_id={LINK}]"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("gnmi-pygnmi"), ["alice", "bob", "sw1", "mem-a"], speed=20)
    yield w
    w.stop()


def _qkdn_id(world: World, name: str) -> str:
    with world.netconf(name) as m:
        reply = m.get_config("running", filter=("subtree", f'<qkd_node xmlns="{ETSI_NS}"><qkdn_id/></qkd_node>'))
        return etree.fromstring(reply.data_xml.encode()).findtext(f".//{{{ETSI_NS}}}qkdn_id")


@pytest.fixture(scope="module")
def active_link(world):
    """The Alice-Bob link configured over NETCONF, as a controller does, and ACTIVE."""
    ids = {n: _qkdn_id(world, n) for n in ("alice", "bob")}
    for name, other, role in (("alice", "bob", "TRANSMITTER"), ("bob", "alice", "RECEIVER")):
        with world.netconf(name) as m:
            m.edit_config(target="running", config=link_config(LINK, ids[name], ids[other], role))

    def active():
        with world.netconf("alice") as m:
            data = m.get(filter=("subtree", f'<qkd_node xmlns="{ETSI_NS}"><qkd_links/></qkd_node>')).data_xml
        return "ACTIVE" in data and data
    assert wait_until(active, 30), "the link did not come up"
    return ids


def _updates(responses: list) -> list[dict]:
    return [u for r in responses if isinstance(r, dict) for u in r.get("update", {}).get("update", [])]


def test_capabilities(world):
    [caps] = world.pygnmi("alice", [{"op": "capabilities"}])
    assert caps["gnmi_version"] == "0.10.0"
    models = {m["name"]: m for m in caps["supported_models"]}
    assert models["etsi-qkd-sdn-node"]["version"] == "2022-01-30"
    assert models["etsi-qkd-sdn-node"]["organization"]
    assert {"json", "json_ietf", "proto"} <= set(caps["supported_encodings"])


def test_get_on_etsi_qfs_and_switch_paths(world):
    [qkd] = world.pygnmi("alice", [{"op": "get", "path": [f"{QKD}/qkdn_id"]}])
    assert qkd["notification"][0]["update"][0]["val"] == _qkdn_id(world, "alice")
    [qfs] = world.pygnmi("mem-a", [{"op": "get", "path": ["qstrata-qfs:qfs-node/memories"]}])
    memories = qfs["notification"][0]["update"][0]["val"]
    assert memories["memory"] and "capacity" in memories["memory"][0]
    [switch] = world.pygnmi("sw1", [{"op": "get", "path": ["optical-switch:product-information"],
                                     "datatype": "state"}])
    info = switch["notification"][0]["update"][0]["val"]
    assert info["model-name"] == "twin-ofs-16"


def test_set_is_read_by_netconf_and_the_other_way_round(world):
    [result] = world.pygnmi("alice", [{"op": "set", "update": [[f"{QKD}/qkdn_location_id", "Lab A / rack 7"]]}])
    assert result["response"][0]["op"] == "UPDATE", result
    with world.netconf("alice") as m:
        data = m.get_config("running", filter=("subtree", f'<qkd_node xmlns="{ETSI_NS}"><qkdn_location_id/>'
                                                          "</qkd_node>")).data_xml
        assert "Lab A / rack 7" in data
        m.edit_config(target="running", config=f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
                      f'<qkd_node xmlns="{ETSI_NS}"><qkdn_location_id>Lab A / rack 8</qkdn_location_id>'
                      "</qkd_node></config>")
    [got] = world.pygnmi("alice", [{"op": "get", "path": [f"{QKD}/qkdn_location_id"]}])
    assert got["notification"][0]["update"][0]["val"] == "Lab A / rack 8"


def test_stream_sample_sees_the_key_rate_and_qber_change(world, active_link):
    sub = {"mode": "stream", "encoding": "json_ietf", "subscription": [
        {"path": f"{LINK_PATH}/qkdl_performance/skr", "mode": "sample", "sample_interval": 200_000_000},
        {"path": f"{QKD}/qkd_interfaces/qkd_interface[qkdi_id=1]/qkdi_status", "mode": "sample",
         "sample_interval": 200_000_000},
    ]}
    [seen] = world.pygnmi("alice", [{"op": "subscribe", "subscribe": sub, "seconds": 4}])
    skr = [u["val"] for u in _updates(seen) if u["path"].endswith("skr")]
    assert len(skr) >= 5, seen[:3]
    assert all(int(v) > 0 for v in skr)
    assert len(set(skr)) >= 2, f"the key rate never changed: {skr}"
    qber_sub = {"mode": "stream", "encoding": "json_ietf", "subscription": [
        {"path": f"{LINK_PATH}/qkdl_performance/phys_perf[perf_type=etsi-qkd-node-types:QBER]/value",
         "mode": "sample", "sample_interval": 200_000_000}]}
    [seen] = world.pygnmi("alice", [{"op": "subscribe", "subscribe": qber_sub, "seconds": 3}])
    qber = [float(u["val"]) for u in _updates(seen)]
    assert qber and all(0 < q < 0.11 for q in qber), qber
    assert len(set(qber)) >= 2, qber


def test_on_change_reports_the_link_going_off_when_netconf_disables_it(world, active_link):
    sub = {"mode": "stream", "encoding": "json_ietf",
           "subscription": [{"path": f"{LINK_PATH}/qkdl_status", "mode": "on_change"}]}
    runner = world.pygnmi_start("alice", [{"op": "subscribe", "subscribe": sub, "seconds": 6}])
    time.sleep(2.5)  # pygnmi's start-up and the initial update
    ids = active_link
    try:
        with world.netconf("alice") as m:
            m.edit_config(target="running", config=link_config(LINK, ids["alice"], ids["bob"], "TRANSMITTER",
                                                               enable=False))
        import json
        [seen] = json.loads(runner.communicate(timeout=30)[0])
    finally:
        with world.netconf("alice") as m:
            m.edit_config(target="running", config=link_config(LINK, ids["alice"], ids["bob"], "TRANSMITTER"))
    statuses = [u["val"] for u in _updates(seen)]
    assert statuses[0].endswith("ACTIVE"), statuses
    assert statuses[-1].endswith("OFF"), statuses
    assert any(r.get("sync_response") for r in seen if isinstance(r, dict)), seen


def test_once_and_poll(world):
    sub = {"encoding": "json_ietf", "subscription": [{"path": f"{QKD}/qkdn_id"}]}
    once, poll = world.pygnmi("alice", [{"op": "once", "subscribe": {**sub, "mode": "once"}},
                                        {"op": "poll", "subscribe": {**sub, "mode": "poll"}, "polls": 2}])
    assert isinstance(once, list) and _updates(once), once
    assert _updates(once)[0]["val"] == _qkdn_id(world, "alice")
    assert isinstance(poll, list) and len(poll) == 2, poll
    assert all(_updates([p]) for p in poll), poll


def test_set_of_a_json_value_below_a_uint32_keyed_entry(world):
    """A JSON value inside `port[port-id=13]`: the entry built around it takes the key as its
    YANG type writes it (a uint32 is a JSON number; libyang refused the path's text "13")."""
    port = "optical-switch:port-config/port[port-id=13]"
    [result] = world.pygnmi("sw1", [{"op": "set", "update": [[port, {"label": "north-13"}]]}])
    assert result["response"][0]["op"] == "UPDATE", result
    [got] = world.pygnmi("sw1", [{"op": "get", "path": [f"{port}/label"]}])
    assert got["notification"][0]["update"][0]["val"] == "north-13"
    [result] = world.pygnmi("sw1", [{"op": "set", "replace": [[port, {"port-id": 13, "label": "south-13"}]]}])
    assert result["response"][0]["op"] == "REPLACE", result
    [got] = world.pygnmi("sw1", [{"op": "get", "path": [f"{port}/label"]}])
    assert got["notification"][0]["update"][0]["val"] == "south-13"
