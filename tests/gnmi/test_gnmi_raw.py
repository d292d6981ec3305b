"""What pygnmi cannot send, with a raw gNMI client (gnmi-pb stubs) against an agent process:
union_replace, TARGET_DEFINED, heartbeat, suppress_redundant, a second SubscriptionList,
bad paths and encodings, a wrongly typed Set (INVALID_ARGUMENT, nothing changed), a wrong password, a
read-only user's Set, Get data types, the single-port gateway and plain text when asked."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from gnmi_helpers import QKD, World, get_value, leaf_values, path, subscribe_list
from gnmi_pb import gnmi_pb2
from qstrata.bindings.paths import gnmi_to_xpath

QSTRATA = Path(sys.executable).with_name("qstrata")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("gnmi-raw"), ["alice", "sw1"], speed=20)
    state = Path(w.ports["alice"]["state_dir"])
    subprocess.run([str(QSTRATA), "user", "add", "viewer", "--group", "read-only", "--password-stdin",
                    "--state-dir", str(state)], input="viewer-pass\n", text=True, check=True, capture_output=True)
    yield w
    w.stop()


def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def _first_responses(stub, md, request, count: int, timeout: float = 10) -> list:
    out = []
    stream = stub.Subscribe(iter([request]), metadata=md, timeout=timeout)
    for response in stream:
        out.append(response)
        if len(out) >= count:
            stream.cancel()
            break
    return out


def test_union_replace_merges_then_replaces(world):
    stub, md = world.stub("alice"), world.metadata("alice")
    target = f"{QKD}/qkdn_capabilities"
    upd = [gnmi_pb2.Update(path=path(target), val=gnmi_pb2.TypedValue(json_ietf_val=json.dumps(v).encode()))
           for v in ({"link_stats_support": False}, {"application_stats_support": False})]
    resp = stub.Set(gnmi_pb2.SetRequest(union_replace=upd), metadata=md, timeout=10)
    assert [r.op for r in resp.response] == [4, 4]  # UNION_REPLACE
    assert get_value(stub, md, f"{target}/link_stats_support") is False
    assert get_value(stub, md, f"{target}/application_stats_support") is False


def test_a_wrongly_typed_set_is_invalid_and_changes_nothing(world):
    stub, md = world.stub("alice"), world.metadata("alice")
    before = get_value(stub, md, f"{QKD}/qkdn_location_id", type=1) if _exists(stub, md) else None
    request = gnmi_pb2.SetRequest(update=[
        gnmi_pb2.Update(path=path(f"{QKD}/qkdn_location_id"), val=gnmi_pb2.TypedValue(string_val="changed")),
        gnmi_pb2.Update(path=path(f"{QKD}/qkdn_capabilities/link_stats_support"),
                        val=gnmi_pb2.TypedValue(string_val="maybe"))])
    code, details = _code(lambda: stub.Set(request, metadata=md, timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "maybe" in details, details  # specification 3.4.7
    after = get_value(stub, md, f"{QKD}/qkdn_location_id", type=1) if _exists(stub, md) else None
    assert after == before != "changed"


def _exists(stub, md) -> bool:
    try:
        get_value(stub, md, f"{QKD}/qkdn_location_id")
        return True
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
        return False


def test_bad_paths_encodings_and_credentials(world):
    stub, md = world.stub("alice"), world.metadata("alice")
    cases = [
        (gnmi_pb2.GetRequest(path=[path(f"{QKD}/no_such_leaf")]), grpc.StatusCode.INVALID_ARGUMENT, "no_such_leaf"),
        (gnmi_pb2.GetRequest(path=[path(f"{QKD}/qkdn_id[x=1]")]), grpc.StatusCode.INVALID_ARGUMENT, "not a list"),
        (gnmi_pb2.GetRequest(path=[path("/qkd_node", origin="openconfig")]), grpc.StatusCode.INVALID_ARGUMENT,
         "origin"),
        (gnmi_pb2.GetRequest(path=[path(f"{QKD}/qkdn_id")], encoding=3), grpc.StatusCode.UNIMPLEMENTED, "ASCII"),
        (gnmi_pb2.GetRequest(path=[path(f"{QKD}/qkdn_id")], encoding=42), grpc.StatusCode.INVALID_ARGUMENT,
         "encoding"),
        (gnmi_pb2.GetRequest(path=[path(f"{QKD}/qkd_links/qkd_link[qkdl_id=00000000-0000-4000-8000-000000000000]")]),
         grpc.StatusCode.NOT_FOUND, "no data"),
    ]
    for request, code, text in cases:
        got, details = _code(lambda r=request: stub.Get(r, metadata=md, timeout=10))
        assert (got, text in details) == (code, True), (request, got, details)
    got, details = _code(lambda: stub.Get(gnmi_pb2.GetRequest(path=[path(f"{QKD}/qkdn_id")]),
                                          metadata=world.metadata("alice", password="wrong"), timeout=10))
    assert got == grpc.StatusCode.UNAUTHENTICATED, details
    got, _ = _code(lambda: stub.Get(gnmi_pb2.GetRequest(path=[path(f"{QKD}/qkdn_id")]), timeout=10))
    assert got == grpc.StatusCode.UNAUTHENTICATED
    sub = subscribe_list(gnmi_pb2.Subscription(path=path(f"{QKD}/qkdn_id"), mode=2, sample_interval=10))
    got, details = _code(lambda: _first_responses(stub, md, sub, 1))
    assert got == grpc.StatusCode.INVALID_ARGUMENT and "sample_interval" in details


def test_read_only_user_may_get_but_not_set(world):
    stub = world.stub("alice")
    md = [("username", "viewer"), ("password", "viewer-pass")]
    assert get_value(stub, md, f"{QKD}/qkdn_id")
    request = gnmi_pb2.SetRequest(update=[gnmi_pb2.Update(path=path(f"{QKD}/qkdn_location_id"),
                                                          val=gnmi_pb2.TypedValue(string_val="mine"))])
    got, details = _code(lambda: stub.Set(request, metadata=md, timeout=10))
    assert got == grpc.StatusCode.PERMISSION_DENIED, details


def test_get_data_types_split_config_and_state(world):
    stub, md = world.stub("alice"), world.metadata("alice")
    config = get_value(stub, md, f"{QKD}/qkd_interfaces", type=1)
    state = get_value(stub, md, f"{QKD}/qkd_interfaces", type=2)
    entry_c, entry_s = config["qkd_interface"][0], state["qkd_interface"][0]
    assert "qkdi_status" not in entry_c and "qkdi_status" in entry_s
    assert "qkdi_att_point" not in entry_s or "qkdi_status" in entry_s


def test_a_second_subscription_list_is_invalid(world):
    stub, md = world.stub("alice"), world.metadata("alice")
    req = subscribe_list(gnmi_pb2.Subscription(path=path(f"{QKD}/qkdn_id"), mode=1))

    def requests():
        yield req
        time.sleep(0.3)
        yield req
        time.sleep(5)

    got, details = _code(lambda: list(stub.Subscribe(requests(), metadata=md, timeout=10)))
    assert got == grpc.StatusCode.INVALID_ARGUMENT and "one SubscriptionList" in details


def test_sample_suppress_redundant_and_heartbeat(world):
    stub, md = world.stub("alice"), world.metadata("alice")
    leaf = f"{QKD}/qkdn_id"
    quiet = subscribe_list(gnmi_pb2.Subscription(path=path(leaf), mode=2, sample_interval=50_000_000,
                                                 suppress_redundant=True))
    beat = subscribe_list(gnmi_pb2.Subscription(path=path(leaf), mode=2, sample_interval=50_000_000,
                                                suppress_redundant=True, heartbeat_interval=300_000_000))
    for request, expected in ((quiet, (1, 1)), (beat, (3, 6))):
        stream = stub.Subscribe(iter([request]), metadata=md, timeout=1.2)
        updates = 0
        try:
            for response in stream:
                updates += len(response.update.update)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        finally:
            stream.cancel()
        # an unchanging leaf: once (then nothing) without heartbeat, about every 300 ms with it
        if request is quiet:
            assert updates == 1, updates
        else:
            assert expected[0] <= updates <= expected[1], updates


def _sample_until(stub, md, request, seconds: float) -> list:
    out = []
    stream = stub.Subscribe(iter([request]), metadata=md, timeout=seconds)
    try:
        for response in stream:
            out.append(response)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    return out


def test_target_defined_samples_counters_and_reports_status_on_change(world):
    stub, md = world.stub("sw1"), world.metadata("sw1")
    request = subscribe_list(gnmi_pb2.Subscription(path=path("optical-switch:opm-power"), mode=0),
                             gnmi_pb2.Subscription(path=path("optical-switch:port-config/port[port-id=1]"), mode=0))
    responses = _sample_until(stub, md, request, 2.6)
    assert any(r.sync_response for r in responses)
    after_sync = responses[[r.sync_response for r in responses].index(True) + 1:]
    power = [k for r in after_sync for k in leaf_values(r) if k.endswith("/power")]
    status = [k for r in after_sync for k in leaf_values(r) if k.endswith("/status")]
    assert len(power) >= 2 * 16, len(power)  # sampled every second: at least two rounds of 16 ports
    assert not status  # a port whose status does not change is not sent again


def test_on_change_sends_updates_defaults_and_explicit_deletes(world):
    stub, md = world.stub("sw1"), world.metadata("sw1")
    label = "optical-switch:port-config/port[port-id=3]/label"
    entry = "optical-switch:opm-alarm-config/port[port-id=7]"
    stub.Set(gnmi_pb2.SetRequest(delete=[path(entry)]), metadata=md, timeout=10)
    request = subscribe_list(gnmi_pb2.Subscription(path=path("optical-switch:port-config/port[port-id=3]"), mode=1),
                             gnmi_pb2.Subscription(path=path(entry), mode=1), updates_only=True)
    stream = stub.Subscribe(iter([request]), metadata=md, timeout=4)
    seen = []

    def reader():
        try:
            for response in stream:
                seen.append(response)
        except grpc.RpcError:
            pass

    import threading
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    time.sleep(0.5)
    assert seen and seen[0].sync_response  # updates_only: sync first, no initial data

    def set_(**kw):
        stub.Set(gnmi_pb2.SetRequest(**kw), metadata=md, timeout=10)
        time.sleep(0.3)

    set_(update=[gnmi_pb2.Update(path=path(label), val=gnmi_pb2.TypedValue(string_val="to-bob"))])
    set_(delete=[path(label)])  # back to its default: an update, not a delete
    set_(update=[gnmi_pb2.Update(path=path(f"{entry}/mode"), val=gnmi_pb2.TypedValue(string_val="POWER_ALARM_ENABLED"))])
    set_(delete=[path(entry)])
    thread.join(6)
    label_path = "/optical-switch:port-config/port[port-id='3']/label"
    labels = [leaf_values(r)[label_path] for r in seen if label_path in leaf_values(r)]
    assert labels[:1] == ["to-bob"] and len(labels) == 2 and labels[1] != "to-bob", labels
    deletes = [gnmi_to_xpath(d) for r in seen for d in r.update.delete]
    assert deletes == ["/optical-switch:opm-alarm-config/port[port-id='7']"], seen


def test_gateway_routes_by_target_and_plain_text_only_when_asked(tmp_path):
    w = World(tmp_path, ["alice", "sw1"], extra={"gnmi_insecure": True})
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{w.ports['alice']['gnmi']}")
        from gnmi_pb import gnmi_pb2_grpc
        stub = gnmi_pb2_grpc.gNMIStub(channel)
        assert get_value(stub, w.metadata("alice"), f"{QKD}/qkdn_id")
        assert "ca" not in w.creds("alice")
    finally:
        w.stop()


def test_timestamps_are_wall_clock_even_when_the_twin_runs_faster(world):
    """The agents here simulate at 20x; a notification's timestamp is when its values were
    produced on the wall clock (the last tick or commit), not the simulated clock running ahead."""
    stub, md = world.stub("alice"), world.metadata("alice")
    time.sleep(2.0)  # 40 simulated seconds
    before = time.time_ns()
    resp = stub.Get(gnmi_pb2.GetRequest(path=[path(QKD)], encoding=4), metadata=md, timeout=10)
    after = time.time_ns()
    stamp = resp.notification[0].timestamp
    assert before - 3_000_000_000 <= stamp <= after  # at most one tick (50 ms of wall time here) old
    sampled = _first_responses(stub, md, subscribe_list(gnmi_pb2.Subscription(
        path=path(f"{QKD}/qkd_interfaces"), mode=2, sample_interval=100_000_000)), 1)
    stamps = [r.update.timestamp for r in sampled if r.HasField("update")]
    assert stamps and all(s <= time.time_ns() for s in stamps)
