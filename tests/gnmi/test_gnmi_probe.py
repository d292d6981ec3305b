"""The corners an independent gNMI probe found (issue 21 section 2), each against a real agent
process at real time (speed 1) with a raw gNMI client: updates_only with ONCE and POLL, the
heartbeat of a suppressed sample, an empty SetRequest, an invalid value's code and keyed path,
a subscriber that goes away mid-write, and the deletes of stored pairs that disappear."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import grpc
import pytest
from gnmi_helpers import QKD, World, get_value, path, subscribe_list
from gnmi_pb import gnmi_pb2
from qstrata.bindings.paths import gnmi_to_xpath

QFS = "qstrata-qfs:qfs-node"
ELINK = "0000000a-0000-4000-8000-0000000000e1"
STORED = f"{QFS}/memories/memory[memory-id=mem0]/stored-pairs"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("gnmi-probe"), ["alice", "sw1", "mem-a", "mem-b"], speed=1,
              extra={"log_level": "INFO"})
    for here, there in (("mem-a", "mem-b"), ("mem-b", "mem-a")):
        remote = get_value(w.stub(there), w.metadata(there), f"{QFS}/uuid")
        link = {"link": [{"link-id": ELINK, "local-memory": "mem0", "remote-node": remote, "remote-memory": "mem0",
                          "generation-scheme": "qstrata-qfs:BARRETT-KOK", "length": "25.000",
                          "cutoff-time": "2000000000"}]}  # pairs discarded 2 s after heralding
        w.stub(here).Set(gnmi_pb2.SetRequest(update=[gnmi_pb2.Update(
            path=path(f"{QFS}/entanglement-links"), val=gnmi_pb2.TypedValue(json_ietf_val=json.dumps(link).encode()))]),
            metadata=w.metadata(here), timeout=10)
    yield w
    w.stop()


def _collect(stream, seconds: float) -> list:
    """Responses of `stream` for `seconds` (read in a thread; the stream is cancelled after)."""
    out: queue.Queue = queue.Queue()

    def reader():
        try:
            for response in stream:
                out.put((time.monotonic(), response))
        except grpc.RpcError:
            pass

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    time.sleep(seconds)
    stream.cancel()
    thread.join(5)
    return list(out.queue)


def test_updates_only_once_and_poll_send_only_the_sync(world):
    stub, md = world.stub("alice"), world.metadata("alice")
    sub = gnmi_pb2.Subscription(path=path(f"{QKD}/qkdn_id"))
    once = list(stub.Subscribe(iter([subscribe_list(sub, mode=1, updates_only=True)]), metadata=md, timeout=10))
    assert [r.WhichOneof("response") for r in once] == ["sync_response"], once

    polls: queue.Queue = queue.Queue()
    polls.put(subscribe_list(sub, mode=2, updates_only=True))

    def requests():
        while True:
            item = polls.get()
            if item is None:
                return
            yield item

    stream = stub.Subscribe(requests(), metadata=md, timeout=10)
    first = next(stream)
    assert first.WhichOneof("response") == "sync_response", first  # no initial updates
    polls.put(gnmi_pb2.SubscribeRequest(poll=gnmi_pb2.Poll()))
    answer = next(stream)
    assert answer.update.update, answer  # a poll is answered with the data, then a sync
    assert next(stream).sync_response
    polls.put(None)
    stream.cancel()


@pytest.mark.parametrize("interval_ms", [100, 0])
def test_a_heartbeat_resends_what_suppress_redundant_held_back(world, interval_ms):
    """An unchanging leaf with suppress_redundant: sent once, then again every heartbeat (here
    500 ms), whether the sample interval is 100 ms or 0 (as fast as the target can)."""
    stub, md = world.stub("alice"), world.metadata("alice")
    request = subscribe_list(gnmi_pb2.Subscription(
        path=path(f"{QKD}/qkdn_id"), mode=2, sample_interval=interval_ms * 1_000_000, suppress_redundant=True,
        heartbeat_interval=500_000_000))
    got = _collect(stub.Subscribe(iter([request]), metadata=md), 2.3)
    stamps = [t for t, r in got if r.update.update]
    assert 4 <= len(stamps) <= 6, [round(t - got[0][0], 2) for t in stamps]  # at 0, 0.5, 1, 1.5, 2 s


def test_an_empty_set_request_is_not_an_error(world):
    """gNMI 3.4.1: an empty SetRequest must not be treated as an error."""
    response = world.stub("sw1").Set(gnmi_pb2.SetRequest(), metadata=world.metadata("sw1"), timeout=10)
    assert list(response.response) == [] and response.timestamp > 0


def test_an_invalid_value_is_invalid_argument_with_its_keyed_path(world):
    stub, md = world.stub("sw1"), world.metadata("sw1")
    leaf = "optical-switch:opm-alarm-config/port[port-id=7]/mode"
    request = gnmi_pb2.SetRequest(update=[gnmi_pb2.Update(path=path(leaf), val=gnmi_pb2.TypedValue(string_val="loud"))])
    with pytest.raises(grpc.RpcError) as info:
        stub.Set(request, metadata=md, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert "port[port-id='7']/mode" in info.value.details() and "loud" in info.value.details(), info.value.details()


CLIENT = r'''
import sys, grpc
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc
from qstrata.bindings.paths import gnmi_string_to_path
port, ca, user, password = sys.argv[1:5]
channel = grpc.secure_channel("127.0.0.1:" + port, grpc.ssl_channel_credentials(open(ca, "rb").read()))
request = gnmi_pb2.SubscribeRequest(subscribe=gnmi_pb2.SubscriptionList(encoding=2, subscription=[
    gnmi_pb2.Subscription(path=gnmi_string_to_path("/etsi-qkd-sdn-node:qkd_node"), mode=2, sample_interval=0)]))
stream = gnmi_pb2_grpc.gNMIStub(channel).Subscribe(iter([request]),
                                                   metadata=[("username", user), ("password", password)])
next(stream)
print("reading", flush=True)
sys.stdin.read()
'''


def test_a_subscriber_that_goes_away_is_one_info_line(world):
    """A client killed while the agent streams to it as fast as it can: no traceback, one INFO
    line naming the peer, the target and the reason."""
    creds = world.creds("alice")
    log = world.state / "agents.log"
    start = log.stat().st_size
    for _ in range(3):
        client = subprocess.Popen([sys.executable, "-c", CLIENT, str(world.ports["alice"]["gnmi"]), creds["ca"],
                                   creds["username"], creds["password"]], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        assert client.stdout.readline().strip() == "reading"
        time.sleep(0.3)  # the agent's writes fill the client's window
        os.kill(client.pid, signal.SIGKILL)
        client.wait(10)
    time.sleep(1.0)
    with open(log, encoding="utf-8", errors="replace") as f:
        f.seek(start)
        text = f.read()
    assert "Traceback" not in text and "subscribe failed" not in text, text[-3000:]
    left = [line for line in text.splitlines() if "left" in line and "alice" in line and "INFO" in line]
    assert len(left) == 3, text[-3000:]
    assert all("127.0.0.1" in line or "ipv4" in line for line in left), left


def test_stored_pairs_that_disappear_are_deletes_on_change_and_sample(world):
    """The memory's pairs are replaced every few seconds: each pair that goes is a delete of its
    list entry, in ON_CHANGE and in SAMPLE."""
    stub, md = world.stub("mem-a"), world.metadata("mem-a")
    on_change = subscribe_list(gnmi_pb2.Subscription(path=path(STORED), mode=1))
    sample = subscribe_list(gnmi_pb2.Subscription(path=path(STORED), mode=2, sample_interval=500_000_000))
    results: dict[str, list] = {}
    threads = [threading.Thread(target=lambda k=k, r=r: results.__setitem__(k, _collect(
        stub.Subscribe(iter([r]), metadata=md), 9.0))) for k, r in (("on_change", on_change), ("sample", sample))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    problems = {}
    for mode, got in sorted(results.items()):
        updates = [gnmi_to_xpath(u.path) for _, r in got for u in r.update.update]
        deletes = [gnmi_to_xpath(d) for _, r in got for d in r.update.delete]
        added = {p.rpartition("/")[0] for p in updates if "/pair[" in p}
        if len(added) < 2 or not deletes:
            problems[mode] = f"{len(added)} pairs seen, deletes {deletes}"
        elif not all(d.rsplit("/", 1)[-1].startswith("pair[pair-id=") for d in deletes) or not set(deletes) <= added:
            problems[mode] = f"deletes {deletes} are not entries seen before ({sorted(added)})"
    assert not problems, problems
