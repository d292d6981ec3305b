"""Normalization, table-driven: agent leaves (as the twins produce them) -> qstrata-telemetry
series with node/link identities as labels; unknown paths kept raw; idempotent; deletions."""

from __future__ import annotations

import pytest
from qstrata.bindings.tree import DataTree
from qstrata.collectors.model import Batch, TargetStatus, Update
from qstrata.collectors.naming import name_and_labels, series_labels
from qstrata.collectors.normalize import Normalizer, resource_of
from qstrata.collectors.northbound import TelemetryTree

NODE = "82b81fe7-ec93-5286-bb8a-2941f6eeca1b"
QFS_NODE = "76758410-9639-5f76-bcd0-68eaffda2ce8"
LINK = "0000000a-0000-4000-8000-00000000000b"
ELINK = "0000000a-0000-4000-8000-0000000000e1"
QKD = "/etsi-qkd-sdn-node:qkd_node"
QKDL = f"{QKD}/qkd_links/qkd_link[qkdl_id='{LINK}']"
KS = f"/qstrata-ss:service-stratum/kme/key-stores/key-store[qkdl-id='{LINK}']"
QFS = "/qstrata-qfs:qfs-node"
TEL = "/qstrata-telemetry:telemetry"
TQKDL = f"{TEL}/qkd-links/qkd-link[node='{NODE}'][link-id='{LINK}']"
TQFSL = f"{TEL}/qfs-links/qfs-link[node='{QFS_NODE}'][link-id='{ELINK}']"
TMEM = f"{TEL}/memories/memory[node='{QFS_NODE}'][memory-id='mem0']"
APP_ID = "6ba3ee58-1c2d-4e5f-8a9b-0c1d2e3f4a02"
APP = f"{QKD}/qkd_applications/qkd_app[app_id='{APP_ID}']"
DELIVERY = f"{APP}/qstrata-ss:key-delivery"
HOP = f"/qstrata-ss:service-stratum/kme/key-relay/hop[qkdl-id='{LINK}']"
TAPP = f"{TEL}/key-delivery/application[node='{NODE}'][app-id='{APP_ID}']"
THOP = f"{TEL}/key-relay/hop[node='{NODE}'][link-id='{LINK}']"
KME_ID = "/qstrata-ss:service-stratum/kme/kme-id"
OTHER_KME = "5fe6aef4-1c2b-591d-9793-67309c672b9b"

# (target, identity leaf, agent path, value) -> (normalized path, value, name, labels, counter, resource)
CASES = [
    ("alice", f"{QKD}/qkdn_id", NODE, f"{QKDL}/qkdl_status", "etsi-qkd-node-types:ACTIVE",
     f"{TQKDL}/status", "telemetry_qkd_links_qkd_link_status", False, QKDL),
    ("alice", f"{QKD}/qkdn_id", NODE, f"{QKDL}/qkdl_performance/skr", 4389643,
     f"{TQKDL}/secret-key-rate", "telemetry_qkd_links_qkd_link_secret_key_rate", False, QKDL),
    ("alice", f"{QKD}/qkdn_id", NODE, f"{QKDL}/qkdl_performance/eskr", 4389000,
     f"{TQKDL}/effective-key-rate", "telemetry_qkd_links_qkd_link_effective_key_rate", False, QKDL),
    ("alice", f"{QKD}/qkdn_id", NODE, f"{QKDL}/qkdl_performance/expected_consumption", 643,
     f"{TQKDL}/consumption-rate", "telemetry_qkd_links_qkd_link_consumption_rate", False, QKDL),
    ("alice", f"{QKD}/qkdn_id", NODE,
     f"{QKDL}/qkdl_performance/phys_perf[perf_type='etsi-qkd-node-types:QBER']/value", 0.0123,
     f"{TQKDL}/qber", "telemetry_qkd_links_qkd_link_qber", False, QKDL),
    ("alice", "/qstrata-ss:service-stratum/kme/kme-id", NODE, f"{KS}/stored-bits", 21947956,
     f"{TQKDL}/key-available", "telemetry_qkd_links_qkd_link_key_available", False, KS),
    ("alice", "/qstrata-ss:service-stratum/kme/kme-id", NODE, f"{KS}/capacity-bits", 10**9,
     f"{TQKDL}/store-capacity", "telemetry_qkd_links_qkd_link_store_capacity", False, KS),
    ("mem-a", f"{QFS}/uuid", QFS_NODE, f"{QFS}/entanglement-links/link[link-id='{ELINK}']/generation-rate", 12.5,
     f"{TQFSL}/generation-rate", "telemetry_qfs_links_qfs_link_generation_rate", False,
     f"{QFS}/entanglement-links/link[link-id='{ELINK}']"),
    ("mem-a", f"{QFS}/uuid", QFS_NODE, f"{QFS}/entanglement-links/link[link-id='{ELINK}']/delivered-fidelity", 0.87,
     f"{TQFSL}/fidelity", "telemetry_qfs_links_qfs_link_fidelity", False,
     f"{QFS}/entanglement-links/link[link-id='{ELINK}']"),
    ("mem-a", f"{QFS}/uuid", QFS_NODE, f"{QFS}/entanglement-links/link[link-id='{ELINK}']/status",
     "etsi-qkd-node-types:PASSIVE", f"{TQFSL}/status", "telemetry_qfs_links_qfs_link_status", False,
     f"{QFS}/entanglement-links/link[link-id='{ELINK}']"),
    ("mem-a", f"{QFS}/uuid", QFS_NODE, f"{QFS}/memories/memory[memory-id='mem0']/occupancy", 3,
     f"{TMEM}/occupancy", "telemetry_memories_memory_occupancy", False, f"{QFS}/memories/memory[memory-id='mem0']"),
    ("mem-a", f"{QFS}/uuid", QFS_NODE, f"{QFS}/memories/memory[memory-id='mem0']/capacity", 4,
     f"{TMEM}/capacity", "telemetry_memories_memory_capacity", False, f"{QFS}/memories/memory[memory-id='mem0']"),
    ("sw1", None, None, "/optical-switch:opm-power/port[port-id='9']/power", -25.0,
     f"{TEL}/switch-ports/switch-port[device='sw1'][port-id='9']/optical-power",
     "telemetry_switch_ports_switch_port_optical_power", False, "/optical-switch:opm-power/port[port-id='9']"),
    ("alice", KME_ID, NODE, f"{KS}/filled-bits", 297301760,
     f"{TQKDL}/store-filled-bits", "telemetry_qkd_links_qkd_link_store_filled_bits", True, KS),
    ("alice", KME_ID, NODE, f"{KS}/drained-bits", 235426560,
     f"{TQKDL}/store-drained-bits", "telemetry_qkd_links_qkd_link_store_drained_bits", True, KS),
    # ETSI GS QKD 014 key delivery (qstrata-ss figures of the KME): per application, per relay hop
    ("alice", f"{QKD}/qkdn_id", NODE, f"{APP}/server_app_id", "sae-alice",
     f"{TAPP}/master-sae", "telemetry_key_delivery_application_master_sae", False, APP),
    ("alice", f"{QKD}/qkdn_id", NODE, f"{DELIVERY}/requests", 9203,
     f"{TAPP}/requests", "telemetry_key_delivery_application_requests", True, APP),
    ("alice", f"{QKD}/qkdn_id", NODE, f"{DELIVERY}/keys-delivered", 14370,
     f"{TAPP}/delivered-keys", "telemetry_key_delivery_application_delivered_keys", True, APP),
    ("alice", f"{QKD}/qkdn_id", NODE, f"{DELIVERY}/bits-delivered", 117719040,
     f"{TAPP}/delivered-bits", "telemetry_key_delivery_application_delivered_bits", True, APP),
    ("alice", f"{QKD}/qkdn_id", NODE, f"{DELIVERY}/refused[reason='not-enough-key']/count", 12,
     f"{TEL}/key-delivery/refused[node='{NODE}'][app-id='{APP_ID}'][reason='not-enough-key']/requests",
     "telemetry_key_delivery_refused_requests", True, APP),
    ("alice", KME_ID, NODE, f"{HOP}/next-hop-kme", OTHER_KME,
     f"{THOP}/next-hop", "telemetry_key_relay_hop_next_hop", False, HOP),
    ("alice", KME_ID, NODE, f"{HOP}/keys", 14370,
     f"{THOP}/relayed-keys", "telemetry_key_relay_hop_relayed_keys", True, HOP),
    ("alice", KME_ID, NODE, f"{HOP}/consumed-bits", 117719040,
     f"{THOP}/consumed-bits", "telemetry_key_relay_hop_consumed_bits", True, HOP),
    # unknown to the rules: kept raw, under the agent's own path; counters from the YANG type
    ("mem-a", None, None, f"{QFS}/entanglement-links/link[link-id='{ELINK}']/attempts", 15384,
     f"{QFS}/entanglement-links/link[link-id='{ELINK}']/attempts", "qfs_node_entanglement_links_link_attempts", True,
     f"{QFS}/entanglement-links/link[link-id='{ELINK}']"),
    ("alice", None, None, f"{QKDL}/qkdl_performance/phys_perf[perf_type='etsi-qkd-node-types:SNR']/value", 12.0,
     f"{QKDL}/qkdl_performance/phys_perf[perf_type='etsi-qkd-node-types:SNR']/value",
     "qkd_node_qkd_links_qkd_link_qkdl_performance_phys_perf_value", False,
     f"{QKDL}/qkdl_performance/phys_perf[perf_type='etsi-qkd-node-types:SNR']"),
    ("x", None, None, "/vendor-x:box/fan[id='2']/rpm", 5000, "/vendor-x:box/fan[id='2']/rpm", "box_fan_rpm", False,
     "/vendor-x:box/fan[id='2']"),
]


@pytest.mark.parametrize("target,id_path,id_value,path,value,want_path,want_name,counter,resource", CASES)
def test_leaf_maps_to_telemetry(target, id_path, id_value, path, value, want_path, want_name, counter, resource):
    norm = Normalizer()
    updates = [Update(target, path, value, 7)]
    if id_path:  # the identity leaf after the value, in the same batch: found by the pre-scan
        updates.append(Update(target, id_path, id_value, 7))
    batch = norm.normalize(updates)
    series = batch.series[0]
    assert (series.path, batch.values[0], batch.ts[0]) == (want_path, value, 7)
    assert series.target == target and series.name == want_name
    assert series.counter is counter
    assert resource_of(series) == resource
    assert series.value == value and series.ts == 7


def test_labels_are_the_list_keys_named_after_the_key():
    norm = Normalizer()
    batch = norm.normalize([Update("alice", f"{QKD}/qkdn_id", NODE, 1),
                            Update("alice", f"{QKDL}/qkdl_performance/skr", 5, 1)])
    skr = batch.series[1]
    assert dict(skr.labels) == {"node": NODE, "link_id": LINK}


def test_same_key_name_twice_and_source_never_taken():
    labels = series_labels([("m:a", {"name": "x"}), ("b", {"name": "y", "source": "z"}), ("c", {"b_name": "w"})])
    assert labels == (("name", "x"), ("b_name", "y"), ("b_source", "z"), ("c_b_name", "w"))
    assert series_labels([("a", {"k": "1"}), ("a", {"k": "2"}), ("a", {"k": "3"})]) == (("k", "1"), ("a_k", "2"), ("a_k_2", "3"))
    name, labels = name_and_labels("/m:ports/port[name='1/1']/lane[name='2']/power-dbm")
    assert name == "ports_port_lane_power_dbm"
    assert labels == (("name", "1/1"), ("lane_name", "2"))


def test_identity_unknown_keeps_the_value_raw_until_it_arrives():
    norm = Normalizer()
    path = f"{QKDL}/qkdl_performance/skr"
    first = norm.normalize([Update("alice", path, 10, 1)])
    assert first.series[0].path == path  # kept, not dropped
    norm.normalize([Update("alice", f"{QKD}/qkdn_id", NODE, 2)])
    later = norm.normalize([Update("alice", path, 11, 3)])
    assert later.series[0].path == f"{TQKDL}/secret-key-rate"


def test_normalizing_twice_changes_nothing():
    norm = Normalizer()
    once = norm.normalize([Update("alice", f"{QKD}/qkdn_id", NODE, 1),
                           Update("alice", f"{QKDL}/qkdl_performance/skr", 5, 1),
                           Update("x", "/vendor-x:box/temp", 40, 1)])
    again = Normalizer().normalize([Update(s.target, s.path, v, t) for s, v, t in zip(once.series, once.values, once.ts, strict=True)])
    assert [(s.target, s.path, s.name, s.labels, v) for s, v in zip(again.series, again.values, strict=True)] == \
        [(s.target, s.path, s.name, s.labels, v) for s, v in zip(once.series, once.values, strict=True)]


def test_one_series_per_target_and_path_values_in_place():
    norm = Normalizer()
    a = norm.normalize([Update("x", "/vendor-x:box/temp", 40, 1)]).series[0]
    b = norm.normalize([Update("x", "/vendor-x:box/temp", 41, 2)]).series[0]
    c = norm.normalize([Update("y", "/vendor-x:box/temp", 42, 2)]).series[0]
    assert a is b and a is not c
    assert (a.value, a.ts, c.value) == (41, 2, 42)
    assert len(norm.registry) == 2


def test_deleted_leaf_and_deleted_list_entry():
    norm = Normalizer()
    link2 = f"{QKD}/qkd_links/qkd_link[qkdl_id='0000000a-0000-4000-8000-00000000000c']"
    norm.normalize([Update("alice", f"{QKD}/qkdn_id", NODE, 1), Update("alice", f"{QKDL}/qkdl_performance/skr", 5, 1),
                    Update("alice", f"{QKDL}/qkdl_performance/eskr", 4, 1),
                    Update("alice", f"{link2}/qkdl_performance/skr", 9, 1)])
    assert len(norm.registry) == 4
    gone = norm.normalize([Update("alice", f"{QKDL}/qkdl_performance/skr", None, 2)])
    assert [(s.path, v) for s, v in zip(gone.series, gone.values, strict=True)] == [(f"{TQKDL}/secret-key-rate", None)]
    entry = norm.normalize([Update("alice", QKDL, None, 3)])  # the whole list entry
    assert [(s.path, v) for s, v in zip(entry.series, entry.values, strict=True)] == [(f"{TQKDL}/effective-key-rate", None)]
    assert len(norm.registry) == 2  # identity + the other link
    assert norm.normalize([Update("alice", "/nothing:here", None, 4)]).series == []


def test_service_units_counted_by_state():
    norm = Normalizer()
    unit = "/qstrata-ss:service-stratum/service-units/service-unit[unit-id='{}']/state"
    kme = "/qstrata-ss:service-stratum/kme/kme-id"
    count = f"{TEL}/service-units/service-unit-state[node='{NODE}'][state='{{}}']/count"

    def counts(batch: Batch) -> dict[str, int]:
        return {s.path: v for s, v in zip(batch.series, batch.values, strict=True) if s.path.endswith("/count")}

    first = norm.normalize([Update("alice", unit.format("u1"), "requested", 1), Update("alice", unit.format("u2"), "ready", 1),
                            Update("alice", kme, NODE, 1)])
    assert counts(first) == {count.format("requested"): 1, count.format("ready"): 1}
    moved = norm.normalize([Update("alice", unit.format("u1"), "ready", 2)])
    assert counts(moved) == {count.format("requested"): 0, count.format("ready"): 2}
    assert all(s.path.startswith(TEL) for s in moved.series)  # a unit is never a series of its own
    kind = norm.normalize([Update("alice", unit.format("u1").replace("/state", "/content/memory-slot[node='n']"
                                                                      "[memory='m']/slot"), 3, 2)])
    assert kind.series == [] and all("service-unit[" not in s.path for s in norm.registry)
    gone = norm.normalize([Update("alice", "/qstrata-ss:service-stratum/service-units/service-unit[unit-id='u2']", None, 3)])
    assert counts(gone) == {count.format("ready"): 1}


def test_unparsable_path_is_counted_not_raised():
    norm = Normalizer()
    batch = norm.normalize([Update("x", "relative/path", 1, 1), Update("x", "/a[unterminated", 1, 1)])
    assert batch.series == [] and norm.rejected == 2


def test_agent_status_series_belong_to_the_collector():
    norm = Normalizer()
    norm.normalize([Update("alice", "/vendor-x:box/temp", 40, 1)] * 3)
    batch = Batch()
    norm.status(TargetStatus("alice", reachable=False, state="backoff", reason="refused", timestamp_ns=5), batch)
    got = {s.path.rsplit("/", 1)[1]: (s.target, v) for s, v in zip(batch.series, batch.values, strict=True)}
    assert got == {"reachable": ("", False), "subscription-state": ("", "backoff"), "updates-received": ("", 3)}


def test_normalized_values_validate_against_qstrata_telemetry():
    """Every normalized leaf is a valid instance of the model (types, ranges, key formats)."""
    norm = Normalizer()
    updates = [Update(t, i, iv, 1) for t, i, iv, *_ in CASES if i] + [Update(t, p, v, 1) for t, _, _, p, v, *_ in CASES]
    batch = norm.normalize(updates)
    tree = DataTree()
    agents = {s.target for s in batch.series}
    for name in agents:
        tree.set(f"{TEL}/agents/agent[name='{name}']/reachable", "true")
    for s, v in zip(batch.series, batch.values, strict=True):
        if s.path.startswith(TEL):
            tree.set(s.path, str(v))
    tree.validate()
    assert len(tree.find(f"{TEL}/qkd-links/qkd-link")) == 1


def _values(batch: Batch, leaf: str) -> list:
    return [v for s, v in zip(batch.series, batch.values, strict=True) if s.path == f"{TAPP}/{leaf}"]


def test_key_delivery_rates_and_latency_from_the_kmes_counters():
    """Keys and bits per second from the counters' last two readings (agent timestamps); the mean
    latency in seconds from the latency sum (microseconds) over the requests between readings."""
    norm = Normalizer()
    s = 1_000_000_000

    def reading(t: float, keys: int, latency_us: int, requests: int) -> Batch:
        ts = int(t * s)
        return norm.normalize([Update("alice", f"{DELIVERY}/keys-delivered", keys, ts),
                               Update("alice", f"{DELIVERY}/bits-delivered", keys * 256, ts),
                               Update("alice", f"{DELIVERY}/latency-sum", latency_us, ts),
                               Update("alice", f"{DELIVERY}/requests", requests, ts),
                               Update("alice", f"{QKD}/qkdn_id", NODE, ts)])

    first = reading(100, 1000, 50_000, 100)
    assert _values(first, "delivered-keys-per-second") == [] and _values(first, "latency-seconds") == []
    second = reading(102, 1400, 90_000, 150)  # 400 keys in 2 s; 40 ms over 50 requests
    assert _values(second, "delivered-keys-per-second") == [200.0]
    assert _values(second, "delivered-bits-per-second") == [51200]
    assert _values(second, "latency-seconds") == [0.0008]
    same_stamp = reading(102, 1500, 99_000, 160)  # stamped as the last one: no interval, the base stays
    assert _values(same_stamp, "delivered-keys-per-second") == [] and _values(same_stamp, "latency-seconds") == []
    later = reading(103, 1600, 99_000, 160)  # since t=102 (the older reading is the base): 200 keys, 9 ms over 10 requests
    assert _values(later, "delivered-keys-per-second") == [200.0] and _values(later, "latency-seconds") == [0.0009]
    idle = reading(104, 1600, 99_000, 160)  # no request: a rate of 0, and no new latency
    assert _values(idle, "delivered-keys-per-second") == [0.0] and _values(idle, "latency-seconds") == []
    restarted = reading(105, 10, 2_000, 1)  # the KME restarted (its counters went down): a new base
    assert _values(restarted, "delivered-keys-per-second") == [] and _values(restarted, "latency-seconds") == []
    assert _values(reading(106, 30, 5_000, 3), "delivered-keys-per-second") == [20.0]
    # the latency sum is not a telemetry leaf (microseconds): the agent's leaf is kept raw
    assert any(p.path == f"{DELIVERY}/latency-sum" for p in norm.registry)


def test_leaf_lists_become_one_string_and_the_agent_leaf_stays_raw():
    norm = Normalizer()
    batch = norm.normalize([Update("alice", f"{QKD}/qkdn_id", NODE, 1),
                            Update("alice", f"{APP}/client_app_id", '["sae-bob","sae-charlie"]', 1),
                            Update("alice", f"{DELIVERY}/route", f'["{NODE}","{OTHER_KME}"]', 1)])
    got = {s.path: v for s, v in zip(batch.series, batch.values, strict=True)}
    assert got[f"{TAPP}/slave-saes"] == "sae-bob sae-charlie"
    assert got[f"{TAPP}/route"] == f"{NODE} {OTHER_KME}"
    assert got[f"{DELIVERY}/route"] == f'["{NODE}","{OTHER_KME}"]'  # raw, as the agent said it


def test_a_deleted_application_takes_its_derived_series_with_it():
    norm = Normalizer()
    for t, keys in ((1, 10), (2, 30)):
        norm.normalize([Update("alice", f"{QKD}/qkdn_id", NODE, t), Update("alice", f"{DELIVERY}/keys-delivered", keys, t),
                        Update("alice", f"{DELIVERY}/requests", keys, t), Update("alice", f"{DELIVERY}/latency-sum", keys, t),
                        Update("alice", f"{APP}/client_app_id", '["sae-bob"]', t)])
    assert {s.path for s in norm.registry if s.path.startswith(TAPP)} == {
        f"{TAPP}/{leaf}" for leaf in ("delivered-keys", "delivered-keys-per-second", "requests", "latency-seconds",
                                      "slave-saes")}
    gone = norm.normalize([Update("alice", APP, None, 3)])
    assert {s.path for s, v in zip(gone.series, gone.values, strict=True) if v is None} >= {
        f"{TAPP}/delivered-keys-per-second", f"{TAPP}/latency-seconds", f"{TAPP}/slave-saes", f"{TAPP}/requests"}
    assert not [s for s in norm.registry if s.path.startswith(TAPP) or s.path.startswith(APP)]


def test_key_delivery_telemetry_validates_against_qstrata_telemetry():
    norm = Normalizer()
    for t, keys in ((1, 10), (2, 30)):
        norm.normalize([Update("alice", f"{QKD}/qkdn_id", NODE, t * 10**9),
                        Update("alice", f"{DELIVERY}/keys-delivered", keys, t * 10**9),
                        Update("alice", f"{DELIVERY}/bits-delivered", keys * 256, t * 10**9),
                        Update("alice", f"{DELIVERY}/requests", keys, t * 10**9),
                        Update("alice", f"{DELIVERY}/latency-sum", keys * 1234, t * 10**9),
                        Update("alice", f"{APP}/client_app_id", '["sae-bob"]', t * 10**9),
                        Update("alice", f"{DELIVERY}/route", f'["{NODE}","{OTHER_KME}"]', t * 10**9)])
    norm.status(TargetStatus("alice", reachable=True, state="subscribed", timestamp_ns=3 * 10**9), Batch())
    doc = TelemetryTree().build(norm.registry, [])  # as the northbound gNMI target serves it

    def ietf(value):  # its encoder writes numbers as the leaf's type says (64-bit ones as strings)
        if isinstance(value, dict):
            return {k: ietf(v) for k, v in value.items()}
        if isinstance(value, list):
            return [ietf(v) for v in value]
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    DataTree.from_python(ietf(doc)).validate()
    (app,) = doc["qstrata-telemetry:telemetry"]["key-delivery"]["application"]
    assert app["agent"] == "alice" and app["route"] == f"{NODE} {OTHER_KME}" and app["delivered-bits-per-second"] == 5120
    assert app["last-update"].startswith("1970-01-01T00:00:02")
